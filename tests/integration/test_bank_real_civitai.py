"""Real Civitai (and CivArchive) answers imported into a bank: versions that share a file stay
separate entries (issue 8, defect 4); shapes with hash- or id-looking fields the importer does not
understand are refused, never imported as empty rows (defect 5). Data: tests/data/real/README.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mirrorwatch.bank.importer import ImportRejected
from mirrorwatch.match.exact import find_exact
from mirrorwatch.services.banks import create_bank
from mirrorwatch.services.imports import import_file
from mirrorwatch.services.lookup import lookup
from mirrorwatch.store.models import HubFile, HubRepo

REAL = Path(__file__).parents[1] / "data" / "real"
SHARED_SHA = "21437ec26670e230b067ca936f6657caf5ca063f15aec333ef249bec7c0f0dc0"


@pytest.fixture
def bank(db):
    create_bank(db, "real")
    return "real"


def _hub_file(db, sha256: str) -> list:
    with db.session() as s:
        repo = HubRepo(hub="hf", repo_id="someone/reupload", author="someone")
        s.add(repo)
        s.flush()
        f = HubFile(repo_pk=repo.id, path="aeshteticv5.safetensors", size=171_969_416, sha256=sha256)
        s.add(f)
        s.flush()
        return sorted(h.entry_id for h in find_exact(s, [f]))


def test_versions_sharing_a_file_are_both_banked_and_both_matched(db, bank):
    s = import_file(db, bank, REAL / "civitai-model-shared-file.json")
    assert (s.added, s.updated, s.duplicates, len(s.rejected)) == (2, 0, 0, 0)
    pruned = lookup(db, "https://civitai.com/models/706978?modelVersionId=1050497").results
    assert [e.civitai_version_id for e in pruned] == [1050497]
    assert pruned[0].hashes["sha256"] == [SHARED_SHA]
    both = lookup(db, SHARED_SHA).results
    assert sorted(e.civitai_version_id for e in both) == [1050496, 1050497]
    assert _hub_file(db, SHARED_SHA) == sorted(e.id for e in both)  # an exact hit names both versions


def test_a_version_answer_after_the_model_answer_merges_by_version_id(db, bank):
    import_file(db, bank, REAL / "civitai-model-shared-file.json")
    s = import_file(db, bank, REAL / "civitai-version-by-hash.json")  # version 1050496 again
    assert (s.added, s.updated + s.duplicates) == (0, 1)
    assert len(lookup(db, SHARED_SHA).results) == 2


def test_a_sheet_row_with_only_the_hash_still_merges_into_a_versioned_entry(db, bank, tmp_path):
    import_file(db, bank, REAL / "civitai-version-by-hash.json")
    sheet = tmp_path / "s.csv"
    sheet.write_text(f"name,sha256\nAesthetic poses,{SHARED_SHA}\n")
    s = import_file(db, bank, sheet)
    assert s.added == 0
    # and a versioned answer for an entry banked from a sheet by hash fills in its version id
    create_bank(db, "real2")
    import_file(db, "real2", sheet)
    s = import_file(db, "real2", REAL / "civitai-version-by-hash.json")
    assert (s.added, s.updated) == (0, 1)
    assert [e.civitai_version_id for e in lookup(db, SHARED_SHA, bank="real2").results] == [1050496]


# --- defect 5: CivArchive answers are read; unknown shapes are refused, never imported empty -----

CIVARCHIVE_SHA = "e2b7a280d6539556f23f380b3f71e4e22bc4524445c4c96526e117c6005c6ad3"


@pytest.mark.parametrize("name", ["civarchive-model-unwrapped.json", "civarchive-model.json"])
def test_civarchive_model_answer_keeps_its_hash_ids_and_mirrors(db, bank, name):
    s = import_file(db, bank, REAL / name)
    assert (s.added, len(s.rejected), s.fmt) == (1, 0, "civarchive-json")
    (e,) = lookup(db, CIVARCHIVE_SHA).results
    assert (e.civitai_model_id, e.civitai_version_id) == (1746460, 1976567)
    assert e.name == "Mixplin Style [Illustrious] v1.0"
    assert e.signals["mirror_url"] == ["https://civitai.com/api/download/models/1976567"]
    assert e.signals["trigger_word"] == ["mxpln"]
    assert e.signals["file_name"] == ["mxpln-illustrious-example.safetensors"]


def test_civarchive_by_hash_answer_with_only_ids(db, bank):
    s = import_file(db, bank, REAL / "civarchive-sha256-files.json")
    assert (s.added, len(s.rejected)) == (1, 0)
    (e,) = lookup(db, "https://civitai.com/models/1746460?modelVersionId=1976567").results
    assert e.civitai_version_id == 1976567


def test_an_unknown_nested_shape_is_refused_naming_what_it_looks_like(db, db_path, bank, tmp_path):
    doc = json.loads((REAL / "civarchive-model-unwrapped.json").read_text())
    doc["latest_version"] = doc.pop("version")  # a shape this importer does not know
    p = tmp_path / "answer.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(Exception, match=r"does not read: .*latest_version.*CivArchive"):
        import_file(db, bank, p)
    assert lookup(db, "https://civitai.com/models/1746460").results == []


def test_a_flat_json_with_an_unread_hash_field_is_refused(db, bank, tmp_path):
    p = tmp_path / "list.json"
    p.write_text(json.dumps([{"name": "Aesthetic poses", "file_sha1": "ab" * 20}]))
    with pytest.raises(Exception, match="does not read: file_sha1"):
        import_file(db, bank, p)


def test_an_unknown_civitai_hash_label_refuses_the_row(db, bank, tmp_path):
    doc = json.loads((REAL / "civitai-version-by-hash.json").read_text())
    doc["files"][0]["hashes"]["AutoV9"] = "0123456789AB"
    p = tmp_path / "v.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(ImportRejected, match="'AutoV9' is not a form"):
        import_file(db, bank, p)


def test_a_sheet_with_an_unread_hash_column_is_refused(db, bank, tmp_path):
    p = tmp_path / "s.csv"
    p.write_text(f"Model Name,SHA256,MD5\nAesthetic poses,{SHARED_SHA},d41d8cd98f00b204e9800998ecf8427e\n")
    with pytest.raises(Exception, match="column 'MD5' looks like a hash this importer does not read"):
        import_file(db, bank, p)
    p.write_text(f"Model Name,civitai_model_version_id,SHA256\nAesthetic poses,1050496,{SHARED_SHA}\n")
    import_file(db, bank, p)
    assert [e.civitai_version_id for e in lookup(db, SHARED_SHA).results] == [1050496]


def test_civitai_model_json_dump_items(db, bank):
    s = import_file(db, bank, REAL / "civitai-model-json-checkpoints.json")
    assert (s.added, len(s.rejected)) == (1, 0)
    (e,) = lookup(db, "676F0D60C8E860146D5E8A0D802599CADD04E7CADF85C283F189F41F01C9E359").results
    assert (e.name, e.civitai_model_id, e.civitai_version_id) == ("DreamShaper XL Turbo DPM++ SDE", 112902, 251662)
    assert e.signals["file_name"] == ["dreamshaperXL_turboDPMSDE.safetensors"]
