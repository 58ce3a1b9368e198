"""Hostile sheets built in memory (shared by the regression tests, the fuzz targets and
benchmarks/bench_sheet_bombs.py)."""

from __future__ import annotations

import io
import zipfile

from openpyxl import Workbook


def small_xlsx(rows: list[list[str]] | None = None) -> bytes:
    wb = Workbook()
    ws = wb.active
    for row in rows or [["name", "sha256"], ["Example Model", "ab" * 32]]:
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def replace_members(xlsx: bytes, replacements: dict[str, bytes], *, level: int = 9) -> bytes:
    """The workbook with some members' contents replaced (deflated at `level`)."""
    src = zipfile.ZipFile(io.BytesIO(xlsx))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, replacements.get(info.filename, src.read(info.filename)))
    return out.getvalue()


def _sheet_xml(rows: bytes) -> bytes:
    return (b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns='
            b'"http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>' + rows
            + b"</sheetData></worksheet>")


def xlsx_cell_bomb(uncompressed_mb: int) -> bytes:
    """A small XLSX whose first sheet's XML expands to about `uncompressed_mb` MB of cells."""
    row = b'<row><c t="inlineStr"><is><t>x</t></is></c><c t="inlineStr"><is><t>y</t></is></c></row>'
    n = uncompressed_mb * 1024**2 // len(row)
    header = b'<row><c t="inlineStr"><is><t>name</t></is></c><c t="inlineStr"><is><t>notes</t></is></c></row>'
    return replace_members(small_xlsx(), {"xl/worksheets/sheet1.xml": _sheet_xml(header + row * n)})


def xlsx_one_cell_bomb(uncompressed_mb: int) -> bytes:
    """A small XLSX whose one cell holds `uncompressed_mb` MB of text."""
    cell = b'<row><c t="inlineStr"><is><t>' + b"a" * (uncompressed_mb * 1024**2) + b"</t></is></c></row>"
    header = b'<row><c t="inlineStr"><is><t>name</t></is></c></row>'
    return replace_members(small_xlsx(), {"xl/worksheets/sheet1.xml": _sheet_xml(header + cell)})


def xlsx_entity_bomb() -> bytes:
    lol = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
           + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
                      for i in range(1, 10))
           + b']><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
             b'<row><c t="inlineStr"><is><t>&lol9;</t></is></c></row></sheetData></worksheet>')
    return replace_members(small_xlsx(), {"xl/worksheets/sheet1.xml": lol})


def xlsx_malformed_xml() -> bytes:
    return replace_members(small_xlsx(), {"xl/worksheets/sheet1.xml": b"<worksheet><sheetData><row><c"})


def xlsx_without_worksheet() -> bytes:
    src = zipfile.ZipFile(io.BytesIO(small_xlsx()))
    wb = src.read("xl/workbook.xml")
    start, end = wb.index(b"<sheets>"), wb.index(b"</sheets>") + len(b"</sheets>")
    return replace_members(small_xlsx(), {"xl/workbook.xml": wb[:start] + b"<sheets/>" + wb[end:]})


def csv_one_line(mb: int) -> bytes:
    return b"name," + b"a" * (mb * 1024**2) + b"\n"


def csv_many_rows(mb: int) -> bytes:
    return b"name\n" + b"ab\n" * (mb * 1024**2 // 3)


def json_many_keys(n: int) -> bytes:
    return b"[" + b",".join(b'{"name": "m", "k%d": 1}' % i for i in range(n)) + b"]"


def xlsx_distinct_cells(uncompressed_mb: int) -> bytes:
    """An XLSX of distinct short cells that compresses like a real sheet (passes the ratio check)."""
    import random

    rnd = random.Random(13)
    rows = [b'<row><c t="inlineStr"><is><t>name</t></is></c><c t="inlineStr"><is><t>notes</t></is></c></row>']
    size = 0
    while size < uncompressed_mb * 1024**2:
        a, b = rnd.getrandbits(40), rnd.getrandbits(40)
        row = b'<row><c t="inlineStr"><is><t>m%x</t></is></c><c t="inlineStr"><is><t>%x</t></is></c></row>' % (a, b)
        rows.append(row)
        size += len(row)
    return replace_members(small_xlsx(), {"xl/worksheets/sheet1.xml": _sheet_xml(b"".join(rows))}, level=1)


def csv_wide_rows(mb: int) -> bytes:
    return b"name\n" + (b"a," * 500 + b"\n") * (mb * 1024**2 // 1001)


def json_rows(n: int) -> bytes:
    return b"[" + b",".join(b'{"name": "model %d"}' % i for i in range(n)) + b"]"


def csv_named_rows(n: int) -> bytes:
    return b"name\n" + b"".join(b"model %d\n" % i for i in range(n))
