"""Issue 8, defect 2: version numbers in names are not typos, and weak name leads do not become
matches beside a strong match to another entry.

The header is what kohya's sd-scripts writes (networks/lora.py `LoRANetwork.save_weights`, with
the ss_* training metadata and library/sai_model_spec.py `build_metadata`'s modelspec.title; see
tests/support/realwriters.py); the bank search is the real one (bank/search.py over the SQLite FTS index).
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mirrorwatch.bank.search import search_names
from mirrorwatch.formats.safetensors import read_header
from mirrorwatch.match.header import find_signal_matches, header_signals
from mirrorwatch.match.hits import Hit, record_hits
from mirrorwatch.services.banks import create_bank
from mirrorwatch.store.models import Entry, HubFile, HubRepo, Match
from mirrorwatch.text.names import same_version, version_numbers
from realwriters import kohya_state_dict, sd_scripts_save, ss_metadata

# -- the normalisation helpers ----------------------------------------------------------------------


@pytest.mark.parametrize(("a", "b"), [
    ("aurelie synthetic v5", "Aurelie Synthetic v5"),
    ("aurelie_synthetic_v1.0", "Aurelie Synthetic V1"),  # "1.0" is version 1
    ("aurelie-000010", "Aurelie epoch 10"),  # kohya epoch suffix: leading zeros do not count
    ("Aurelie Synthetic (SD1.5) v2", "aurelie synthetic v2 sdxl"),  # base-model tags are not versions
    ("aurelie synthetic", "Aurelie Synthetic"),
])
def test_same_version(a, b):
    assert same_version(a, b)


@pytest.mark.parametrize(("a", "b"), [
    ("aurelie synthetic v5", "Aurelie Synthetic v3"),
    ("aurelie synthetic 2.0", "Aurelie Synthetic 1.0"),
    ("aurelie-000010", "aurelie-000020"),
    ("aurelie synthetic v1.1", "Aurelie Synthetic v1"),
    ("aurelie synthetic", "Aurelie Synthetic v3"),  # a version on one side only does not agree
])
def test_different_versions(a, b):
    assert not same_version(a, b)


def test_version_numbers():
    assert version_numbers("aurelie_synthetic_v1.0-000010") == (1, 10)
    assert version_numbers("Model SDXL 1.0 v2") == (2,)
    assert version_numbers("no digits") == ()


# -- name evidence through the real bank search -------------------------------------------------------


@pytest.fixture
def bank_world(db):
    bank = create_bank(db, "bank", user="setup")
    with db.session() as s:
        ids = {}
        for name in ("Aurelie Synthetic v3", "Aurelie Synthetic v5", "Unrelated Example v5"):
            e = Entry(bank_id=bank.id, key=name, name=name, name_norm=" ".join(name.lower().split()))
            s.add(e)
            s.flush()
            ids[name] = e.id
        repo = HubRepo(hub="hf", repo_id="some-user/aurelie", author="some-user")
        s.add(repo)
        s.flush()
        f = HubFile(repo_pk=repo.id, path="aurelie_synthetic_v5.safetensors", sha256="ab" * 32, hashes={})
        s.add(f)
        s.flush()
        return db, ids, f.id


def _name_search(db):
    def search(name: str) -> list[tuple[int, float]]:
        ids, scores = search_names(db, name, limit=3)
        return [(i, scores[i]) for i in ids]
    return search


def test_a_v5_header_is_not_name_evidence_for_the_v3_entry(bank_world, tmp_path):
    db, ids, fid = bank_world
    path = tmp_path / "aurelie_synthetic_v5.safetensors"
    sd_scripts_save(path, kohya_state_dict(rank=4), ss_metadata("aurelie_synthetic_v5"))
    signals = header_signals(read_header(path))
    assert "aurelie synthetic v5" in signals["name"]
    # the search alone still finds both (it is typo-tolerant, and "v3" is one edit from "v5")
    found = dict(_name_search(db)("aurelie synthetic v5"))
    assert ids["Aurelie Synthetic v3"] in found and ids["Aurelie Synthetic v5"] in found
    with db.session() as s:
        hits = find_signal_matches(s, {fid: signals}, name_search=_name_search(db))
    assert {h.entry_id for h in hits} == {ids["Aurelie Synthetic v5"]}


# -- the hit merge: weak leads beside a strong match ---------------------------------------------------


def _name_hit(entry_id: int, fid: int, score: float = 0.53) -> Hit:
    return Hit(entry_id, fid, score, [{"tier": 2, "kind": "header", "field": "name",
                                       "value": "aurelie synthetic", "weight": score}], tier=2)


def _exact_hit(entry_id: int, fid: int) -> Hit:
    return Hit(entry_id, fid, 1.0, [{"tier": 1, "kind": "hash", "form": "sha256", "value": "ab" * 32}], tier=1)


def _pairs(db) -> set[tuple[int, int]]:
    with db.session() as s:
        return {(m.entry_id, m.hub_file_id) for m in s.scalars(select(Match))}


def test_name_only_lead_is_not_recorded_beside_an_exact_match_to_another_entry(bank_world):
    db, ids, fid = bank_world
    v3, v5 = ids["Aurelie Synthetic v3"], ids["Aurelie Synthetic v5"]
    with db.session() as s:  # an earlier tier: the exact match is already stored
        assert record_hits(s, [_exact_hit(v5, fid)], scan_run_id=None) == 1
    with db.session() as s:
        assert record_hits(s, [_name_hit(v3, fid), _name_hit(v5, fid)], scan_run_id=None) == 0
    assert _pairs(db) == {(v5, fid)}
    with db.session() as s:  # the lead to the same entry adds its evidence to that match
        m = s.scalar(select(Match).where(Match.entry_id == v5))
        assert [e.get("field") for e in m.evidence] == [None, "name"]


def test_strong_hit_in_the_same_batch_holds_back_the_lead(bank_world):
    db, ids, fid = bank_world
    v3, v5 = ids["Aurelie Synthetic v3"], ids["Aurelie Synthetic v5"]
    strong = Hit(v5, fid, 0.97, [{"tier": 2, "kind": "header", "field": "hdr_autov3_full", "value": "cd" * 32,
                                  "weight": 0.97}], tier=2)
    with db.session() as s:
        assert record_hits(s, [_name_hit(v3, fid), strong], scan_run_id=None) == 1
    assert _pairs(db) == {(v5, fid)}


def test_a_lead_is_recorded_when_the_other_match_is_weak_or_dismissed(bank_world):
    db, ids, fid = bank_world
    v3, v5, other = ids["Aurelie Synthetic v3"], ids["Aurelie Synthetic v5"], ids["Unrelated Example v5"]
    fingerprint_lead = Hit(other, fid, 0.80, [{"tier": 3, "kind": "fingerprint", "verdict": "derived"}], tier=3)
    with db.session() as s:
        record_hits(s, [fingerprint_lead, _exact_hit(v5, fid)], scan_run_id=None)
        s.scalar(select(Match).where(Match.entry_id == v5)).state = "dismissed"  # a reviewer said no
    with db.session() as s:
        assert record_hits(s, [_name_hit(v3, fid)], scan_run_id=None) == 1
    assert (v3, fid) in _pairs(db)


def test_name_plus_real_evidence_is_not_a_mere_lead(bank_world):
    db, ids, fid = bank_world
    v3, v5 = ids["Aurelie Synthetic v3"], ids["Aurelie Synthetic v5"]
    run = Hit(v3, fid, 0.93, [{"tier": 2, "kind": "header", "field": "training_run", "value": "r@1", "weight": 0.9},
                              {"tier": 2, "kind": "header", "field": "name", "value": "x", "weight": 0.5}], tier=2)
    with db.session() as s:
        record_hits(s, [_exact_hit(v5, fid)], scan_run_id=None)
        assert record_hits(s, [run], scan_run_id=None) == 1

