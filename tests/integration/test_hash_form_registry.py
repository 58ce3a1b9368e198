"""The hash-form registry is the only list of forms: every consumer follows it, and a form registered
here (in the test only) shows up in classification, lookup, sheets, Civitai JSON, exports, the hash
engine's result and exact matching without any other module changing."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from mirrorwatch.bank.civitai import civitai_records
from mirrorwatch.bank.sheets import fields, header_aliases, parse_map
from mirrorwatch.errors import InvalidHash
from mirrorwatch.hashing import forms as registry
from mirrorwatch.hashing.engine import hash_bytes
from mirrorwatch.hashing.forms import (
    FORMS,
    HashForm,
    candidate_forms,
    civitai_forms,
    civitai_hashes,
    derived_forms,
    describe_lengths,
    normalise_hash,
    register,
    unregister,
)
from mirrorwatch.match.exact import file_forms, score_agreement
from mirrorwatch.services.banks import create_bank
from mirrorwatch.services.exports import bank_columns, export_bank
from mirrorwatch.services.imports import import_file
from mirrorwatch.services.lookup import HASH_FORMS_SHOWN, classify_query, lookup

HELLO_SHA = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
TODAY = ["sha256", "autov1", "autov2", "autov3", "autov3_full", "crc32", "blake3"]


def test_every_consumer_lists_the_registry():
    assert list(FORMS) == TODAY  # the order users see in `hash --json` and exports
    assert list(hash_bytes(b"hello world").to_dict()) == ["path", "size", *FORMS]
    assert list(HASH_FORMS_SHOWN) == list(FORMS)
    assert bank_columns()[7:14] == tuple(FORMS)
    sheet_forms = [f for f in fields() if f in FORMS]
    assert sheet_forms == [f for f in FORMS if FORMS[f].sheet_aliases]
    assert sheet_forms == ["sha256", "autov1", "autov2", "autov3", "crc32", "blake3"]
    assert {f: header_aliases()[f] for f in sheet_forms} == {f: FORMS[f].sheet_aliases for f in sheet_forms}
    assert civitai_forms() == {k.lower(): k.lower() for k in ("AutoV1", "AutoV2", "AutoV3", "SHA256", "CRC32",
                                                              "BLAKE3")}
    assert set(file_forms(HELLO_SHA, {"autov3_full": "ab" * 32, "crc32": "85114a0d"})) == {
        "sha256", "autov2", "autov3", "autov3_full", "crc32"}
    assert describe_lengths() == "64 hex (SHA256, BLAKE3 or full AutoV3), 12 (AutoV3), 10 (AutoV2) or 8 (AutoV1 or CRC32)"


def test_civitai_hashes_round_trip():
    h = hash_bytes(b"hello world")
    hashes = civitai_hashes(h.values)
    assert hashes == {"SHA256": HELLO_SHA.upper(), "AutoV2": "B94D27B993", "CRC32": "85114A0D",
                      "BLAKE3": h.blake3.upper()}
    records, problems = civitai_records([{"id": 5, "modelId": 4, "files": [{"type": "Model", "hashes": hashes}]}])
    assert not problems
    assert {form for form, _ in records[0].signals} == {"sha256", "autov2", "crc32", "blake3"}


def _throwaway(stored: bool) -> type[HashForm]:
    class Sha16(HashForm):
        name = "sha16"
        label = "SHA16"
        hex_length = 16
        description = "first 16 hex of the SHA256 (a form invented for this test)"
        derived_from = "sha256"
        stored_when_derived = stored
        sheet_aliases = ("sha16", "sha 16")
        civitai_key = "SHA16"
        exact_score = 0.97
        display_rank = 1

    return Sha16


@pytest.fixture(params=[True, False], ids=["stored", "answered-by-prefix"])
def sha16(request) -> Iterator[bool]:
    register(_throwaway(request.param))
    try:
        yield request.param
    finally:
        unregister("sha16")
    assert "sha16" not in FORMS and 16 not in registry.known_lengths()


def test_a_registered_form_reaches_every_consumer(sha16, db, tmp_path):
    short = HELLO_SHA[:16]
    # classification and normalisation
    assert 16 in registry.known_lengths()
    assert candidate_forms(short) == ("sha16",)
    assert normalise_hash(f"SHA16: {short.upper()}") == short
    assert classify_query(short) == "hash"
    assert "16 (SHA16)" in describe_lengths()
    with pytest.raises(InvalidHash, match="expected 8, 10, 12, 16 or 64"):
        normalise_hash("a" * 15)
    # derivation: the engine fills it in without an engine change
    assert derived_forms("sha256", HELLO_SHA) == {"autov2": HELLO_SHA[:10], "sha16": short}
    hashed = hash_bytes(b"hello world").to_dict()
    assert list(hashed)[-1] == "sha16" and hashed["sha16"] == short
    # sheets: its column is recognised and imported; Civitai JSON: its key is read
    assert parse_map("sha16=Col") == {"sha16": "Col"}
    other = "0123456789abcdef" * 4
    sheet = tmp_path / "bank.csv"
    sheet.write_text(f"Model Name,SHA 16,SHA256\nFirst Invented,{short.upper()},\nSecond Invented,,{other}\n")
    create_bank(db, "b")
    summary = import_file(db, "b", sheet)
    assert summary.added == 2
    records, _ = civitai_records([{"id": 9, "modelId": 8, "files": [{"type": "Model", "hashes": {"SHA16": short}}]}])
    assert ("sha16", short) in records[0].signals
    # lookup by the new form: a sheet value, and one derived from a SHA256 (a row or a prefix range)
    found = lookup(db, short)
    assert [r.name for r in found.results] == ["First Invented"]
    assert found.results[0].hashes["sha16"] == [short]
    assert found.detail == "16 hex: sha16"
    derived = lookup(db, other[:16])
    assert [r.name for r in derived.results] == ["Second Invented"]
    assert derived.results[0].why == "sha16"
    assert derived.results[0].hashes["sha16"] == [other[:16]]
    # exports: one more column, in registry order
    _, pieces = export_bank(db, 1, "csv")
    lines = "".join(pieces).splitlines()
    assert lines[0].split(",")[7:15] == [*TODAY, "sha16"]
    assert short in lines[1]
    _, pieces = export_bank(db, 1, "json")
    rows = json.loads("".join(pieces))
    assert rows[0]["sha16"] == [short]
    # exact matching: a hub file offers it, and an agreement on it scores what the form declares
    assert file_forms(HELLO_SHA, None)["sha16"] == short
    assert score_agreement({"sha16"}) == 0.97
    assert score_agreement({"sha16"}, sha256_disagrees=True) is None


def test_registering_twice_or_removing_a_source_is_refused():
    with pytest.raises(ValueError, match="registered twice"):
        register(type("Again", (HashForm,), {"name": "sha256", "label": "x", "hex_length": 64, "description": ""}))
    with pytest.raises(ValueError, match="source of another form"):
        unregister("sha256")
