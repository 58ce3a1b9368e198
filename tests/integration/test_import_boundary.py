"""The import boundary (issue 13, defects 9 and 10): Civitai JSON with wrong types and implausible
ids, over-long values and NUL bytes are a row's problem (reported with its number) or fitted to the
columns — never a raw exception, never a whole import aborted by PostgreSQL. The same flows run on
SQLite and, with MIRRORWATCH_TEST_PG, on PostgreSQL."""

from __future__ import annotations

import copy
import json

import pytest
from sqlalchemy import select

from conftest import sample
from mirrorwatch.bank.importer import ImportRejected
from mirrorwatch.services.banks import create_bank
from mirrorwatch.services.imports import import_file
from mirrorwatch.services.lookup import lookup
from mirrorwatch.store.db import Database
from mirrorwatch.store.fit import column_length, fit_text
from mirrorwatch.store.models import Entry, EntrySignal
from pgdb import fresh_pg


@pytest.fixture(params=["sqlite", "postgresql"])
def anydb(request, db) -> Database:
    if request.param == "sqlite":
        return db
    return fresh_pg()


def _version() -> dict:
    return json.loads(sample("civitai-model-version.json").read_text())


def _bad_versions() -> list[tuple[str, dict]]:
    v = _version()
    cases = []
    for why, change in [
        ("id of 10^30", {"id": 10**30}),
        ("negative id", {"id": -5}),
        ("true as id", {"id": True}),
        ("id as a string", {"id": "202001"}),
        ("modelId of 10^30", {"modelId": 10**30}),
        ("trainedWords a number", {"trainedWords": 7}),
    ]:
        bad = copy.deepcopy(v)
        bad.update(change)
        cases.append((why, bad))
    return cases


def test_civitai_json_with_wrong_types_is_reported_per_item(anydb, tmp_path):
    create_bank(anydb, "civ")
    good = _version()
    odd_but_usable = copy.deepcopy(good) | {"id": 202777, "model": "a string, not an object"}
    odd_but_usable["files"][0]["hashes"] = {"SHA256": "CD" * 32}
    typed = copy.deepcopy(good) | {"id": 202778, "model": {"name": "Typed", "type": {"an": "object"}}}
    typed["files"] = [{"type": "Model", "hashes": {"SHA256": "EF" * 32}, "name": ["not", "a", "string"]}]
    bads = _bad_versions()
    items = [good, odd_but_usable, typed] + [b for _, b in bads]
    path = tmp_path / "civitai.json"
    path.write_text(json.dumps(items))
    with pytest.raises(ImportRejected, match="item|row"):
        import_file(anydb, "civ", path)
    summary = import_file(anydb, "civ", path, skip_bad=True)
    assert summary.added == 3
    assert [r for r, _ in summary.rejected] == list(range(4, 4 + len(bads)))
    reasons = dict(summary.rejected)
    assert "not a plausible Civitai id" in reasons[4] and "not an integer id" in reasons[6]
    assert lookup(anydb, "cd" * 32).results[0].civitai_version_id == 202777
    typed_entry = lookup(anydb, "ef" * 32).results[0]
    assert typed_entry.name.startswith("Typed")


def test_sheet_ids_must_be_plausible(anydb, tmp_path):
    create_bank(anydb, "ids")
    path = tmp_path / "ids.csv"
    path.write_text("name,model id,version id\nok,5,6\nhuge,1" + "0" * 30 + ",7\n"
                    "digits,5," + "9" * 5000 + "\nsuperscript,\u00b2,8\n", encoding="utf-8")
    summary = import_file(anydb, "ids", path, skip_bad=True)
    assert summary.added == 1 and [r for r, _ in summary.rejected] == [3, 4, 5]


def test_long_values_and_nul_bytes_fit_the_columns(anydb, tmp_path):
    """A 389-character name (its identity key is a VARCHAR(300)), a long kind, a long file name, a NUL
    past the first 64 KiB: PostgreSQL used to abort the whole import."""
    create_bank(anydb, "long")
    long_a = "A" * 389
    long_b = "A" * 388 + "B"  # same 300-character prefix: must stay a distinct entry
    filler = "".join(f"filler {i},notes\n" for i in range(6000))
    body = (f"name,kind,notes\n{filler}{long_a},{'K' * 80},x\n{long_b},lora,y\n"
            "nul\x00name,lora,no\x00te\n")
    path = tmp_path / ("f" * 200 + ".csv")
    path.write_bytes(body.encode())
    assert len(body.encode()) > 65536
    summary = import_file(anydb, "long", path)
    assert summary.added == 6003 and not summary.rejected
    with anydb.session() as s:
        keys = {n: k for n, k in s.execute(select(Entry.name, Entry.key).where(Entry.name.like("AAA%")))}
        assert set(keys) == {long_a, long_b} and len(set(keys.values())) == 2
        assert all(len(k) <= column_length(Entry, "key") for k in keys.values())
        assert s.scalar(select(Entry.kind).where(Entry.name == long_a)) == "K" * column_length(Entry, "kind")
        assert s.scalar(select(Entry.notes).where(Entry.name == "nulname")) == "note"
        origins = set(s.scalars(select(EntrySignal.origin)))
        assert all(len(o) <= column_length(EntrySignal, "origin") for o in origins)
    again = import_file(anydb, "long", path)  # idempotent with fitted keys
    assert again.added == 0


def test_civitai_long_file_names_and_words_fit(anydb, tmp_path):
    create_bank(anydb, "words")
    v = _version()
    v["files"][0]["name"] = "n" * 5000 + ".safetensors"
    v["trainedWords"] = ["w" * 5000, "short\x00word"]
    path = tmp_path / "v.json"
    path.write_text(json.dumps(v))
    assert import_file(anydb, "words", path).added == 1
    with anydb.session() as s:
        values = list(s.scalars(select(EntrySignal.value).where(EntrySignal.form.in_(["file_name", "trigger_word"]))))
    assert "shortword" in values and all(len(x) <= column_length(EntrySignal, "value") for x in values)


def test_fit_text_keeps_identities_distinct():
    assert fit_text("a\x00b", 10) == "ab"
    a, b = fit_text("x" * 50 + "1", 20, identity=True), fit_text("x" * 50 + "2", 20, identity=True)
    assert len(a) == len(b) == 20 and a != b
    assert fit_text("y" * 50, 20) == "y" * 20
