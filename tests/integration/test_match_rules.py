"""Unit tests for the matching rules: exact scoring, header evidence combination, the hit merge,
and learning from exact matches (a real SQLite database, no hub, no network)."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from mirrorwatch.hashing.forms import FORMS
from mirrorwatch.match.evidence import FileEvidence, HeaderEvidence
from mirrorwatch.match.exact import find_exact, score_agreement
from mirrorwatch.match.header import find_signal_matches
from mirrorwatch.match.hits import Hit, record_hits
from mirrorwatch.match.repo import confirmed_by_exact, match_repo
from mirrorwatch.match.scores import HEADER_SCORES, MIN_RECORDED_SCORE, combine
from mirrorwatch.services.banks import create_bank
from mirrorwatch.store.models import Entry, EntrySignal, FileSignal, HubFile, HubRepo, Match


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def world(db):
    """A bank with three entries and one repo; helpers to add signals and files."""
    bank = create_bank(db, "bank", user="setup")
    with db.session() as s:
        entries = []
        for i in range(3):
            e = Entry(bank_id=bank.id, key=f"k{i}", name=f"Invented Person {i}", name_norm=f"invented person {i}")
            s.add(e)
            s.flush()
            entries.append(e.id)
        repo = HubRepo(hub="hf", repo_id="some-user/models", author="some-user")
        s.add(repo)
        s.flush()
        repo_pk = repo.id
    return db, entries, repo_pk


def add_signals(db, entry_id: int, **forms: str) -> None:
    with db.session() as s:
        s.add_all([EntrySignal(entry_id=entry_id, form=f, value=v) for f, v in forms.items()])


def add_file(db, repo_pk: int, path: str, sha256: str | None, hashes: dict | None = None) -> int:
    with db.session() as s:
        f = HubFile(repo_pk=repo_pk, path=path, sha256=sha256, hashes=hashes or {})
        s.add(f)
        s.flush()
        return f.id


def exact_hits(db, file_ids: list[int]) -> list[Hit]:
    with db.session() as s:
        return find_exact(s, list(s.scalars(select(HubFile).where(HubFile.id.in_(file_ids)))))


# -- tier 1: exact scoring ---------------------------------------------------------------------------
def test_full_sha256_agreement_scores_one(world):
    db, (e0, e1, _), repo = world
    add_signals(db, e0, sha256=sha("a"), autov2=sha("a")[:10])
    fid = add_file(db, repo, "a.safetensors", sha("a"))
    [hit] = exact_hits(db, [fid])
    assert (hit.entry_id, hit.hub_file_id, hit.tier, hit.score) == (e0, fid, 1, FORMS["sha256"].exact_score) == (e0, fid, 1, 1.0)
    assert {e["form"] for e in hit.evidence} == {"sha256", "autov2"}


def test_autov2_prefix_alone_scores_below_one(world):
    db, (e0, *_), repo = world
    add_signals(db, e0, autov2=sha("b")[:10])  # the bank knows only the short form
    fid = add_file(db, repo, "b.safetensors", sha("b"), {"autov2": sha("b")[:10]})
    [hit] = exact_hits(db, [fid])
    assert hit.score == FORMS["autov2"].exact_score < 1.0


def test_prefix_coincidence_with_a_different_sha256_is_no_hit(world):
    db, (e0, *_), repo = world
    other = sha("c-other")
    add_signals(db, e0, sha256=other, autov2=sha("c")[:10])  # the entry's own sha256 disagrees with the file
    fid = add_file(db, repo, "c.safetensors", sha("c"), {"autov2": sha("c")[:10]})
    assert exact_hits(db, [fid]) == []


def test_crc32_and_autov1_together_make_an_exact_hit_but_not_alone(world):
    db, (e0, e1, _), repo = world
    add_signals(db, e0, crc32="1234abcd", autov1="deadbeef")
    add_signals(db, e1, crc32="1234abcd")
    fid = add_file(db, repo, "d.ckpt", None, {"crc32": "1234abcd", "autov1": "deadbeef"})
    hits = exact_hits(db, [fid])
    assert [(h.entry_id, h.score) for h in hits] == [(e0, score_agreement(["crc32", "autov1"]))]


# -- tier 2: header evidence combination --------------------------------------------------------------
def test_combine_is_a_capped_noisy_or():
    assert combine([0.5, 0.5]) == pytest.approx(0.75)
    assert combine([0.9]) == pytest.approx(0.9)
    assert combine([0.99, 0.99, 0.99]) == 0.99  # capped: header evidence never claims certainty
    assert combine([]) == 0.0
    assert combine([1.7, -3]) == 0.99  # out-of-range weights are clamped, not trusted


def test_header_signals_combine_and_weak_ones_are_not_recorded(world):
    db, (e0, e1, e2), repo = world
    add_signals(db, e0, training_run="run-1", sshs_legacy_hash="0badf00d")
    add_signals(db, e1, trigger_word="ohwx person")  # 0.40 alone: below the recording threshold
    add_signals(db, e2, training_run="run-2", ss_session_id="sess-2")
    fid = add_file(db, repo, "x.safetensors", sha("x"))
    with db.session() as s:
        hits = find_signal_matches(s, {fid: {"training_run": ["run-1", "run-2"], "sshs_legacy_hash": ["0badf00d"],
                                             "trigger_word": ["ohwx person"], "ss_session_id": ["sess-2"]}})
    by_entry = {h.entry_id: h for h in hits}
    assert HEADER_SCORES["trigger_word"] < MIN_RECORDED_SCORE and e1 not in by_entry
    assert by_entry[e0].tier == 2
    assert by_entry[e0].score == pytest.approx(combine([HEADER_SCORES["training_run"], HEADER_SCORES["sshs_legacy_hash"]]),
                                               abs=1e-4)
    # a training run and its own session id are the same fact: counted once
    assert by_entry[e2].score == pytest.approx(HEADER_SCORES["training_run"], abs=1e-4)


# -- the hit merge -----------------------------------------------------------------------------------
def test_record_hits_inserts_once_then_merges_evidence_and_raises_only_upwards(world):
    db, (e0, *_), repo = world
    fid = add_file(db, repo, "m.safetensors", sha("m"))
    weak = Hit(e0, fid, 0.6, [{"tier": 2, "kind": "header", "field": "sshs_legacy_hash", "value": "x"}], tier=2)
    strong = Hit(e0, fid, 1.0, [{"tier": 1, "kind": "hash", "form": "sha256", "value": sha("m")}], tier=1)
    with db.session() as s:
        assert record_hits(s, [weak], scan_run_id=None) == 1
        assert record_hits(s, [weak], scan_run_id=None) == 0  # the same hit again: nothing new
        m = s.scalar(select(Match))
        m.state = "confirmed"  # a reviewer decided
    with db.session() as s:
        assert record_hits(s, [strong], scan_run_id=None) == 0
        m = s.scalar(select(Match))
        assert (m.score, m.tier, m.state) == (1.0, 1, "confirmed")
        assert len(m.evidence) == 2
    with db.session() as s:  # weaker evidence later adds to the record but never lowers the score
        record_hits(s, [Hit(e0, fid, 0.4, [{"tier": 2, "kind": "header", "field": "name", "value": "n"}], tier=2)],
                    scan_run_id=None)
        m = s.scalar(select(Match))
        assert (m.score, m.tier, len(m.evidence)) == (1.0, 1, 3)


# -- learning from exact matches ---------------------------------------------------------------------
def test_confirmed_by_exact_takes_only_full_length_tier_one_hits():
    hits = [Hit(1, 10, 1.0, [], tier=1), Hit(1, 10, 1.0, [], tier=1), Hit(2, 11, 0.98, [], tier=1),
            Hit(3, 12, 0.99, [], tier=2)]
    assert confirmed_by_exact(hits) == [(1, 10)]


def test_an_exact_match_teaches_its_entry_and_finds_older_mirrors(world):
    """The file that matches exactly carries a training-run id in its header: its entry learns it,
    and another stored file (re-saved, so a different sha256) with the same run is matched at once."""
    db, (e0, *_), repo = world
    add_signals(db, e0, sha256=sha("orig"))
    resaved = add_file(db, repo, "resaved.safetensors", sha("resaved"))
    with db.session() as s:
        s.add(FileSignal(hub_file_id=resaved, form="training_run", value="run-42"))
    copy = add_file(db, repo, "copy.safetensors", sha("orig"))
    ev = FileEvidence(header=HeaderEvidence({"training_run": ["run-42"]}, "lora/sd15", 4096, 10))
    with db.session() as s:
        files = list(s.scalars(select(HubFile).where(HubFile.id == copy)))
        out = match_repo(db, s, files, {copy: ev}, scan_run_id=None, robust=True)
    assert out.exact == 1 and out.learned == 1 and out.learned_matches == 1
    with db.session() as s:
        learned = s.scalars(select(EntrySignal.value).where(EntrySignal.entry_id == e0,
                                                            EntrySignal.form == "training_run")).all()
        assert learned == ["run-42"]
        m = s.scalar(select(Match).where(Match.hub_file_id == resaved))
        assert m is not None and m.entry_id == e0 and m.tier == 2


def test_without_robust_tiers_nothing_is_learned(world):
    db, (e0, *_), repo = world
    add_signals(db, e0, sha256=sha("orig"))
    copy = add_file(db, repo, "copy.safetensors", sha("orig"))
    with db.session() as s:
        s.add(FileSignal(hub_file_id=copy, form="training_run", value="run-7"))
    with db.session() as s:
        out = match_repo(db, s, list(s.scalars(select(HubFile))), {}, scan_run_id=None, robust=False)
    assert (out.exact, out.learned) == (1, 0)
