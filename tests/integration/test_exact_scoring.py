"""Exact tier scoring, form by form: the rule (score_agreement) on its own, and find_exact against a
real SQLite database for each form a hub file can agree on, including the ambiguous 8-hex forms."""

from __future__ import annotations

import pytest

from mirrorwatch.bank.records import Record
from mirrorwatch.hashing.forms import FORMS
from mirrorwatch.match.exact import file_forms, find_exact, score_agreement
from mirrorwatch.services.banks import create_bank
from mirrorwatch.store.models import Entry, EntrySignal, HubFile, HubRepo

SHA = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
OTHER_SHA = "b94d27b993" + "0" * 54  # same AutoV2, a different file
TENSORS = "e0d2747b9ab7" + "1" * 52
BLAKE = "d74981efa70a0c880b8d8c1985d075dbcbf679b99a5f9914e5aaf96b831a9e24"


@pytest.mark.parametrize(
    ("form", "score"),
    [("sha256", 1.0), ("blake3", 1.0), ("autov3_full", 1.0), ("autov3", 0.99), ("autov2", 0.98),
     ("autov1", None), ("crc32", None)],
)
def test_score_of_each_form_alone(form, score):
    assert score_agreement({form}) == score
    assert FORMS[form].exact_score == score  # the number lives in the form class


def test_the_two_8_hex_forms_together_score_0_9():
    assert score_agreement({"autov1", "crc32"}) == 0.9
    assert score_agreement({"autov1", "crc32", "autov2"}) == 0.98  # the best single form wins


def test_best_form_counts():
    assert score_agreement({"autov2", "autov3"}) == 0.99
    assert score_agreement({"autov2", "sha256"}) == 1.0
    assert score_agreement(set()) is None
    assert score_agreement({"not-a-form"}) is None


def test_a_disagreeing_sha256_rules_out_whole_file_prefixes_but_not_tensor_forms():
    assert score_agreement({"autov2"}, sha256_disagrees=True) is None
    assert score_agreement({"autov1", "crc32"}, sha256_disagrees=True) is None
    # AutoV3 hashes the tensors only: a re-saved header changes the SHA256, not the model
    assert score_agreement({"autov3"}, sha256_disagrees=True) == 0.99
    assert score_agreement({"autov2", "autov3"}, sha256_disagrees=True) == 0.99


def test_file_forms_derive_short_forms_from_their_sources():
    assert file_forms(SHA, {"autov3_full": TENSORS, "crc32": "85114a0d", "size": 3}) == {
        "sha256": SHA, "autov2": SHA[:10], "autov3": TENSORS[:12], "autov3_full": TENSORS, "crc32": "85114a0d"}
    assert file_forms(None, None) == {}


@pytest.fixture
def bank(db):
    create_bank(db, "b")
    return db


def _entry(db, name: str, signals: list[tuple[str, str]]) -> int:
    with db.session() as s:
        e = Entry(bank_id=1, key=f"n:{name}", name=name, name_norm=name.lower())
        s.add(e)
        s.flush()
        s.add_all(EntrySignal(entry_id=e.id, form=form, value=value) for form, value in signals)
        return e.id


def _record_signals(column: str, value: str) -> list[tuple[str, str]]:
    rec = Record(row=1, name="x")
    rec.add_hash(column, value, "test")
    return list(rec.signals)


def _hits(db, sha256: str | None, **hashes: str) -> dict[int, tuple[float, set[str]]]:
    with db.session() as s:
        repo = HubRepo(hub="hf", repo_id=f"someone/r{len(hashes)}{sha256 and sha256[:4]}", author="someone")
        s.add(repo)
        s.flush()
        f = HubFile(repo_pk=repo.id, path="m.safetensors", size=10, sha256=sha256, hashes=hashes or None)
        s.add(f)
        s.flush()
        return {h.entry_id: (h.score, {e["form"] for e in h.evidence}) for h in find_exact(s, [f])}


@pytest.mark.parametrize(
    ("column", "value", "file_sha", "file_hashes", "score", "forms"),
    [
        ("sha256", SHA, SHA, {}, 1.0, {"sha256"}),
        ("blake3", BLAKE, None, {"blake3": BLAKE}, 1.0, {"blake3"}),
        ("autov3", TENSORS, None, {"autov3_full": TENSORS}, 1.0, {"autov3_full", "autov3"}),  # 64 hex: full
        ("autov3", TENSORS[:12], None, {"autov3_full": TENSORS}, 0.99, {"autov3"}),
        ("autov2", SHA[:10], SHA, {}, 0.98, {"autov2"}),
        ("autov1", "5b1c2a3d", None, {"autov1": "5b1c2a3d"}, None, None),  # 8 hex alone: too short
        ("crc32", "85114a0d", SHA, {"crc32": "85114a0d"}, None, None),
    ],
)
def test_find_exact_per_form(bank, column, value, file_sha, file_hashes, score, forms):
    eid = _entry(bank, "Invented Person", _record_signals(column, value))
    hits = _hits(bank, file_sha, **file_hashes)
    if score is None:
        assert hits == {}
    else:
        assert hits == {eid: (score, forms)}


def test_8_hex_both_forms_agree(bank):
    eid = _entry(bank, "Invented Person", [("autov1", "5b1c2a3d"), ("crc32", "85114a0d")])
    assert _hits(bank, None, autov1="5b1c2a3d", crc32="85114a0d") == {eid: (0.9, {"autov1", "crc32"})}


def test_8_hex_in_a_hash_column_is_stored_as_autov1_and_does_not_match_a_crc32(bank):
    signals = _record_signals("hash", "85114A0D")
    assert signals == [("autov1", "85114a0d")]  # the first candidate of an ambiguous 8-hex value
    _entry(bank, "Invented Person", signals)
    assert _hits(bank, SHA, crc32="85114a0d") == {}  # a different form, and too short alone anyway


def test_autov2_prefix_of_a_different_file_is_not_a_match(bank):
    _entry(bank, "Invented Person", [("sha256", SHA), ("autov2", SHA[:10])])
    assert _hits(bank, OTHER_SHA) == {}
    # ... unless the tensors agree (a re-saved file)
    eid = _entry(bank, "Resaved Person", [("sha256", SHA), ("autov3", TENSORS[:12])])
    assert _hits(bank, OTHER_SHA, autov3_full=TENSORS) == {eid: (0.99, {"autov3"})}
