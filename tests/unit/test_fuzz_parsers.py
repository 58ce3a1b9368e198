"""Fuzz targets, one per parser of untrusted input (issue 13): safetensors header and metadata, every
sheet format (CSV, TSV, XLSX, JSON) and the Civitai JSON shapes. The property: any input gives a
parsed result or the project's typed error (MirrorwatchError) with a message — never any other
exception. The malformed cases the audit found are explicit examples.

CI runs each target for a bounded time (MIRRORWATCH_FUZZ_EXAMPLES examples, default 120; a few
seconds each). Longer on demand:

    MIRRORWATCH_FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest -q tests/test_fuzz_parsers.py
"""

from __future__ import annotations

import json
import os
import struct

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import sheet_bombs as bombs
from mirrorwatch.bank.civitai import civitai_records
from mirrorwatch.bank.importer import records_from_sheet
from mirrorwatch.bank.sheets import SheetLimits, parse_sheet
from mirrorwatch.bank.urls import parse_civitai_url
from mirrorwatch.errors import MirrorwatchError, SheetError
from mirrorwatch.formats.kinds import guess_kind
from mirrorwatch.formats.safetensors import header_length, metadata_json, parse_header
from mirrorwatch.match.header import header_signals

# CI runs a fixed, reproducible set of examples (derandomized: a red CI is a regression, never a dice
# roll); an on-demand run with MIRRORWATCH_FUZZ_EXAMPLES=N explores new random inputs.
ON_DEMAND = os.environ.get("MIRRORWATCH_FUZZ_EXAMPLES")
EXAMPLES = int(ON_DEMAND or "120")
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=ON_DEMAND is None)
# Small limits so that the bounds themselves are exercised, not just the happy path.
SMALL = SheetLimits(max_rows=50, max_columns=20, max_cells=500, max_cell_chars=200, max_line_chars=2000,
                    max_json_bytes=200_000, max_json_values=2000, max_json_depth=8,
                    max_xml_run_bytes=4096, max_shared_strings=100)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**40), max_value=10**40) | st.floats()
    | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)


def expect_typed(fn, *args, **kwargs):
    """Call fn; a MirrorwatchError must carry a one-line message; anything else fails the test."""
    try:
        return fn(*args, **kwargs)
    except MirrorwatchError as exc:
        assert str(exc).strip(), "typed errors carry a message"
        return None


# --- safetensors -----------------------------------------------------------------------------------

def _inspect_header(blob: bytes) -> None:
    n = header_length(blob[:8], file_size=len(blob))
    header = parse_header(blob[8 : 8 + n], header_len=n, file_size=len(blob))
    guess_kind(header)
    header_signals(header)


def _file(header_json: bytes) -> bytes:
    return struct.pack("<Q", len(header_json)) + header_json + b"\0" * 64


@FUZZ
@given(st.binary(max_size=300))
@example(_file(b"[" * 100_000))
@example(_file(b'{"a": 1' + b"1" * 5000 + b"}"))
@example(_file(b'{"t": {"dtype": ' + b"[" * 900 + b"]" * 900 + b"}}"))
@example(_file(b"\xff\xfe{}"))
def test_fuzz_safetensors_header_bytes(blob):
    expect_typed(_inspect_header, blob)


@FUZZ
@given(st.dictionaries(st.text(max_size=20), json_values, max_size=6))
def test_fuzz_safetensors_header_json(raw):
    expect_typed(_inspect_header, _file(json.dumps(raw).encode()))


_META_KEYS = st.sampled_from(["ss_network_args", "ss_tag_frequency", "ss_dataset_dirs", "ss_network_module",
                              "ss_base_model_version", "modelspec.architecture", "sshs_model_hash",
                              "sshs_legacy_hash", "ss_output_name", "modelspec.title", "ss_datasets"])
_META_VALUES = st.text(max_size=40) | json_values.map(json.dumps)


@FUZZ
@given(st.dictionaries(_META_KEYS, _META_VALUES, max_size=8))
@example({"ss_network_args": "[" * 100_000 + "]" * 100_000, "sshs_model_hash": "ab" * 32})
@example({"ss_tag_frequency": '{"a":' * 50_000 + "1" + "}" * 50_000})
@example({"ss_network_args": '{"algo": 1' + "1" * 5000 + "}"})
@example({"ss_dataset_dirs": "[" * 900 + "]" * 900})
def test_fuzz_safetensors_metadata(metadata):
    blob = _file(json.dumps({"__metadata__": metadata, "lora_unet_x.lora_down.weight":
                             {"dtype": "F16", "shape": [2, 2], "data_offsets": [0, 8]}}).encode())
    _inspect_header(blob)  # metadata values are strings: nothing in them may make the header unusable
    for value in metadata.values():
        metadata_json(value)


# --- sheets ----------------------------------------------------------------------------------------

def _parse_and_validate(data: bytes, name: str, limits: SheetLimits | None = None) -> None:
    sheet = parse_sheet(data, name=name, **({"limits": limits} if limits else {}))
    records, problems, _ = records_from_sheet(sheet, "import:fuzz")
    for number, reason in problems:
        assert isinstance(number, int) and isinstance(reason, str)


_CELLS = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12) | st.sampled_from(
    ["name", "Model Name", "sha256", "hash", "url", "model id", "version id", "https://civitai.com/models/12",
     "civitai:5@6", "ab" * 32, "0899CD856F", "99999999999999999999", "\u00b2", "-1", "=1+1", "\x00"])


@FUZZ
@given(st.lists(st.lists(_CELLS, max_size=6), max_size=12), st.sampled_from([",", "\t", ";", "|"]),
       st.sampled_from(["utf-8", "utf-16", "cp1252"]), st.sampled_from(["s.csv", "s.tsv", "s.txt"]))
def test_fuzz_delimited_structured(rows, delimiter, encoding, name):
    text = "\n".join(delimiter.join(r) for r in rows)
    data = text.encode(encoding, errors="replace")
    if encoding == "utf-16":
        data = data[: len(data) - (len(rows) % 2)]  # odd lengths too
    expect_typed(_parse_and_validate, data, name)
    expect_typed(_parse_and_validate, data, name, SMALL)


@FUZZ
@given(st.binary(max_size=400), st.sampled_from(["s.csv", "s.tsv", "s.txt", "s.json", "s.xlsx"]))
@example(b"\xff\xfe" + "name\nx".encode("utf-16-le") + b"a", "odd.csv")
@example(b"[" * 100_000, "deep.json")
@example(b'[{"name": 1' + b"1" * 5000 + b"}]", "digits.json")
@example(bombs.csv_one_line(2), "line.csv")
def test_fuzz_sheet_bytes(data, name):
    expect_typed(_parse_and_validate, data, name)
    expect_typed(_parse_and_validate, data, name, SMALL)


@FUZZ
@given(json_values)
@example([{"name": "x", **{f"k{i}": i for i in range(30)}}])
def test_fuzz_json_sheet(doc):
    data = json.dumps(doc).encode()
    expect_typed(_parse_and_validate, data, "s.json")
    expect_typed(_parse_and_validate, data, "s.json", SMALL)


_XLSX = bombs.small_xlsx()
_SHEET_XML = st.sampled_from([
    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>',
    b"<row>", b'<row r="1048576">', b'<row r="-1">', b'<row r="x">', b"</row>", b'<c t="inlineStr">',
    b'<c r="XFD1">', b'<c r="ZZZZ9">', b'<c t="s">', b'<c t="n">', b'<c t="b">', b'<c t="e">', b"<v>",
    b"</v>", b"<is><t>", b"</t></is>", b"</c>", b"1", b"99999999999999999999999", b"abc", b"NaN",
    b"</sheetData></worksheet>", b'<dimension ref="A1:XFD1048576"/>', b"&amp;", b"&#0;", b"\x00",
    b'<!DOCTYPE x [<!ENTITY a "b">]>', b"<",
])


@FUZZ
@given(st.lists(_SHEET_XML, max_size=25))
@example([])
def test_fuzz_xlsx_sheet_xml(parts):
    data = bombs.replace_members(_XLSX, {"xl/worksheets/sheet1.xml": b"".join(parts)}, level=1)
    expect_typed(_parse_and_validate, data, "s.xlsx")
    expect_typed(_parse_and_validate, data, "s.xlsx", SMALL)


@FUZZ
@given(st.integers(min_value=0, max_value=len(_XLSX) - 1), st.binary(min_size=1, max_size=8))
@example(0, b"")
def test_fuzz_xlsx_bytes(offset, patch):
    data = _XLSX[:offset] + patch + _XLSX[offset + len(patch):]
    expect_typed(_parse_and_validate, data, "s.xlsx")


def test_xlsx_with_an_encrypted_member_is_refused_clearly():
    """Found by the fuzz target above: the "encrypted" bit of a member's general-purpose flags in the
    central directory made zipfile raise a bare RuntimeError ("password required for extraction")."""
    data = bytearray(_XLSX)
    at = 0
    while (at := data.find(b"PK\x01\x02", at)) != -1:
        data[at + 8] |= 0x01  # central directory header: general-purpose flags at offset 8
        at += 4
    with pytest.raises(SheetError, match="encrypted"):
        _parse_and_validate(bytes(data), "s.xlsx")


@FUZZ
@given(st.sampled_from(["workbook", "styles", "strings", "rels"]), st.binary(max_size=200))
def test_fuzz_xlsx_other_members(which, content):
    member = {"workbook": "xl/workbook.xml", "styles": "xl/styles.xml", "strings": "xl/sharedStrings.xml",
              "rels": "xl/_rels/workbook.xml.rels"}[which]
    data = bombs.replace_members(_XLSX, {member: content}, level=1)
    expect_typed(_parse_and_validate, data, "s.xlsx")


# --- Civitai JSON ----------------------------------------------------------------------------------

_ANY = json_values
_IDS = st.integers(min_value=-(10**30), max_value=10**30) | st.booleans() | st.text(max_size=5) | st.none() | st.floats()


def _civitai_version():
    file = st.fixed_dictionaries({}, optional={
        "type": st.sampled_from(["Model", "Pruned Model", "Config"]) | _ANY,
        "name": st.text(max_size=20) | _ANY,
        "hashes": st.dictionaries(st.sampled_from(["SHA256", "AutoV2", "AutoV3", "CRC32", "BLAKE3", "x"]),
                                  st.text(alphabet="0123456789abcdefABCDEF", max_size=70) | _ANY, max_size=4) | _ANY,
    })
    return st.fixed_dictionaries({"id": _IDS}, optional={
        "modelId": _IDS, "name": st.text(max_size=10) | _ANY, "model": st.fixed_dictionaries(
            {}, optional={"name": _ANY, "type": _ANY}) | _ANY,
        "files": st.lists(file, max_size=3) | _ANY, "trainedWords": st.lists(_ANY, max_size=3) | _ANY,
        "baseModel": _ANY, "publishedAt": _ANY, "createdAt": _ANY,
    })


_CIVITAI = _civitai_version() | st.fixed_dictionaries(
    {"id": _IDS, "modelVersions": st.lists(_civitai_version(), max_size=3) | _ANY},
    optional={"name": _ANY, "type": _ANY})


@FUZZ
@given(st.lists(_CIVITAI | st.dictionaries(st.text(max_size=8), _ANY, max_size=3), min_size=1, max_size=4))
@example([{"id": 10**30, "modelId": 1, "files": []}])
@example([{"id": True, "modelId": 1, "files": []}])
@example([{"id": -5, "modelId": 1, "files": []}])
@example([{"id": 5, "modelId": 1, "model": "a string", "files": [], "trainedWords": 7}])
@example([{"id": 5, "modelId": 1, "model": {"type": {"an": "object"}}, "files": []}])
def test_fuzz_civitai_json(items):
    records, problems = civitai_records(items)
    for rec in records:
        assert isinstance(rec.version_id, int) and 0 < rec.version_id < 2**53
        assert rec.model_id is None or (isinstance(rec.model_id, int) and not isinstance(rec.model_id, bool))
        assert rec.kind is None or isinstance(rec.kind, str)
        assert isinstance(rec.name, str)
    expect_typed(_parse_and_validate, json.dumps(items).encode(), "civitai.json")


# --- Civitai URLs (sheet cells, lookups) -----------------------------------------------------------

@FUZZ
@given(st.text(max_size=60) | st.builds(lambda a, b: f"https://civitai.com/models/{a}?modelVersionId={b}",
                                        st.text(max_size=8), st.text(max_size=8)))
@example("https://civitai.com/models/" + "9" * 5000)
@example("https://civitai.com/models/5?modelVersionId=\u00b2")
@example("civitai.com/models/\u0663")
@example("civitai:" + "1" * 5000)
def test_fuzz_civitai_urls(text):
    ref = expect_typed(parse_civitai_url, text)
    if ref is not None:
        for value in (ref.model_id, ref.version_id):
            assert value is None or 0 < value < 2**53


# --- hash lists users have (issue 8): cache.json, model lists, CivArchive, sha256sum --------------

_LIST_SHAPES = st.one_of(
    st.dictionaries(st.sampled_from(["hashes", "hashes-addnet", "safetensors-metadata"]),
                    st.dictionaries(st.text(max_size=20), json_values | st.fixed_dictionaries(
                        {"mtime": json_values, "sha256": json_values | st.just("ab" * 32)}), max_size=4),
                    max_size=3),
    st.fixed_dictionaries({"models": st.lists(st.dictionaries(st.sampled_from(
        ["name", "type", "filename", "save_path", "url", "reference", "sha256", "size", "file_md5"]),
        json_values | st.sampled_from(["https://civitai.com/api/download/models/9", "ab" * 32])), max_size=4)}),
    st.fixed_dictionaries({"data": json_values | st.fixed_dictionaries({"version": st.dictionaries(
        st.sampled_from(["id", "modelId", "civitai_model_version_id", "name", "files", "trigger"]),
        json_values | st.lists(st.dictionaries(st.sampled_from(["sha256", "mirrors", "name", "hashes"]),
                                               json_values, max_size=4), max_size=3), max_size=6)})}),
)


@FUZZ
@given(_LIST_SHAPES)
def test_fuzz_hash_list_json(doc):
    data = json.dumps(doc).encode()
    expect_typed(_parse_and_validate, data, "cache.json")
    expect_typed(_parse_and_validate, data, "cache.json", SMALL)


_SUM_LINES = st.sampled_from([
    "ab" * 32 + "  m.safetensors", "ab" * 32 + " *m.safetensors", "\\" + "ab" * 32 + "  a\\\\b\\nc",
    "SHA256 (m.safetensors) = " + "ab" * 32, "ab" * 32, "d41d8cd98f00b204e9800998ecf8427e  x", "# note", "",
    "not a line", "ab" * 31 + "zz  x", "SHA256 () = " + "ab" * 32]) | st.text(max_size=40)


@FUZZ
@given(st.lists(_SUM_LINES, max_size=12), st.sampled_from(["\n", "\r\n"]),
       st.sampled_from(["SHA256SUMS", "m.safetensors.sha256", "list.txt"]))
def test_fuzz_sha256sum(lines, end, name):
    data = end.join(lines).encode("utf-8", errors="replace")
    expect_typed(_parse_and_validate, data, name)
    expect_typed(_parse_and_validate, data, name, SMALL)
