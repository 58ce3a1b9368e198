"""Hostile sheets (issue 13, defects 1, 2 and 9): decompression and size bombs, quadratic JSON
column discovery and malformed input are refused with a SheetError, quickly, never a raw exception.
Memory and time figures for the full-size bombs: benchmarks/bench_sheet_bombs.py."""

from __future__ import annotations

import dataclasses
import time

import pytest

import sheet_bombs as bombs
from mirrorwatch.bank.sheets import DEFAULT_LIMITS, SheetLimits, parse_sheet, read_sheet
from mirrorwatch.errors import SheetError


def refused(data: bytes, name: str, match: str, **kw) -> None:
    start = time.monotonic()
    with pytest.raises(SheetError, match=match):
        parse_sheet(data, name=name, **kw)
    assert time.monotonic() - start < 10  # refused while streaming, not after parsing everything


def test_limits_live_in_one_documented_place():
    assert isinstance(DEFAULT_LIMITS, SheetLimits)
    for f in dataclasses.fields(SheetLimits):
        assert isinstance(getattr(DEFAULT_LIMITS, f.name), int) and getattr(DEFAULT_LIMITS, f.name) > 0


def test_xlsx_decompression_bomb_is_refused_from_the_zip_directory():
    refused(bombs.xlsx_cell_bomb(40), "bomb.xlsx", "decompression bomb")


def test_xlsx_uncompressed_total_and_one_huge_cell_are_refused():
    data = bombs.xlsx_one_cell_bomb(3)
    refused(data, "cell.xlsx", "expands", limits=SheetLimits(max_xlsx_ratio=10_000, max_xlsx_bytes=2 * 1024**2))
    refused(data, "cell.xlsx", "text or tag over", limits=SheetLimits(max_xlsx_ratio=10_000))


def test_xlsx_cells_and_rows_are_bounded_while_streaming():
    rows = [["name"]] + [[f"model {i}"] for i in range(300)]
    data = bombs.small_xlsx(rows)
    assert parse_sheet(data, name="ok.xlsx").row_count == 300
    refused(data, "rows.xlsx", "over 100 rows", limits=SheetLimits(max_rows=100))
    refused(data, "cells.xlsx", "over 50 cells", limits=SheetLimits(max_cells=50))
    wide = bombs.small_xlsx([["name"] + ["x"] * 30])
    refused(wide, "wide.xlsx", "31 columns", limits=SheetLimits(max_columns=20))
    long_cell = bombs.small_xlsx([["name"], ["n" * 200]])
    refused(long_cell, "long.xlsx", "longer than 100 characters", limits=SheetLimits(max_cell_chars=100))


def test_one_line_csv_is_refused_without_splitting_it():
    refused(bombs.csv_one_line(47), "line.csv", "line 1 is longer than")
    refused(b"name\n" + b"a," * 600_000 + b"\n", "commas.csv", "line 2 is longer than")


def test_csv_rows_cells_and_cell_length_are_bounded(tmp_path):
    data = bombs.csv_many_rows(1)
    refused(data, "rows.csv", "over 1,000 rows", limits=SheetLimits(max_rows=1000))
    refused(data, "cells.csv", "over 5,000 cells", limits=SheetLimits(max_cells=5000))
    refused(b'name\n"' + b"x\n" * 50_000 + b'"\n', "quoted.csv", "longer than 32,767 characters")
    path = tmp_path / "big.csv"
    path.write_bytes(data)
    with pytest.raises(SheetError, match="over 1,000 rows"):
        read_sheet(path, limits=SheetLimits(max_rows=1000))
    with pytest.raises(SheetError, match="refused"):
        read_sheet(path, limits=SheetLimits(max_file_bytes=1000))


def test_csv_reading_is_unchanged_for_ordinary_sheets():
    sheet = parse_sheet(b"Model Name,SHA256\r\nfirst," + b"ab" * 32 + b"\r\n\r\nsecond,\r\n", name="s.csv")
    assert [(n, v["name"]) for n, v in sheet.rows] == [(2, "first"), (4, "second")]
    mac = parse_sheet(b"name\rfirst\rsecond\r", name="mac.csv")
    assert [v["name"] for _, v in mac.rows] == ["first", "second"]
    crlf_across_chunks = b"name\r\n" + b"m\r\n" * 400_000
    assert parse_sheet(crlf_across_chunks, name="c.csv").row_count == 400_000


def test_nul_bytes_after_the_first_64_kib_are_dropped():
    data = b"name,notes\n" + b"model,fine\n" * 7000 + b"late\x00model,n\x00ote\n"
    rows = list(parse_sheet(data, name="nul.csv").rows)
    assert rows[-1][1] == {"name": "latemodel", "notes": "note"}


def test_json_column_discovery_is_linear_and_capped():
    refused(bombs.json_many_keys(60_000), "keys.json", "over 1,000 distinct keys")
    start = time.monotonic()
    sheet = parse_sheet(bombs.json_many_keys(900), name="ok.json")
    assert sheet.row_count == 900 and len(sheet.columns) == 901
    assert time.monotonic() - start < 5


@pytest.mark.parametrize(("data", "name", "match"), [
    (b"\xff\xfe" + "name\nmodel".encode("utf-16-le") + b"a", "odd.csv", "utf-16"),
    (b"\xff\xfe" + '[{"name": "x"}]'.encode("utf-16-le") + b"a", "odd.json", "utf-16"),
    (b"[" * 100_000, "deep.json", "nested"),
    (b'[{"name": ' + b"[" * 70 + b"]" * 70 + b"}]", "deep2.json", "nested more than 64"),
    (b'[{"name": 1' + b"1" * 5000 + b"}]", "digits.json", "digits"),
    (b"name\nab\xffcd\n", "latin.csv", "not UTF-8"),
    (bombs.xlsx_without_worksheet(), "empty.xlsx", "no worksheet"),
    (bombs.xlsx_malformed_xml(), "broken.xlsx", "not a readable XLSX"),
    (bombs.xlsx_entity_bomb(), "lol.xlsx", "DTD"),
    (b"PK\x03\x04garbage", "zip.xlsx", "not a readable XLSX"),
])
def test_malformed_sheets_get_a_sheet_error(data, name, match):
    refused(data, name, match)


def test_uploads_are_parsed_within_the_upload_limits(db):
    from mirrorwatch.bank.sheets import UPLOAD_LIMITS
    from mirrorwatch.services.banks import create_bank
    from mirrorwatch.services.imports import preview_import

    create_bank(db, "up")
    rows = UPLOAD_LIMITS.max_rows + 1
    assert rows <= DEFAULT_LIMITS.max_rows  # the CLI takes this sheet; the browser refuses it
    data = bombs.csv_named_rows(rows)
    with pytest.raises(SheetError, match=f"over {UPLOAD_LIMITS.max_rows:,} rows"):
        preview_import(db, "up", "big.csv", data)
    assert preview_import(db, "up", "small.csv", bombs.csv_named_rows(10)).rows == 10
