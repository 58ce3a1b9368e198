"""Fingerprint relations through the matching pipeline, on fingerprints of genuinely trained LoRAs
(tests/data/trained/, built by benchmarks/trained/build_corpus.py): a `derived` file becomes a match
a reviewer can confirm and report; a `similar_training` one (another concept trained with the same
seed) is recorded as a low-score lead with its evidence, and can be neither confirmed nor reported."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mirrorwatch.errors import Conflict
from mirrorwatch.match.robust import learn, match_file_fingerprint
from mirrorwatch.services import reports, review
from mirrorwatch.services.matches import describe_evidence
from mirrorwatch.store.models import HubFile, HubRepo, Match, utcnow
from trained_data import fingerprint

pytest_plugins = ("webfixtures",)


def _hub_file(db, path: str) -> int:
    now = utcnow()
    with db.session() as s:
        repo = HubRepo(hub="hf", repo_id=f"uploader7/{path.split('.')[0]}", author="uploader7", created_at=now,
                       last_modified=now, sha="b" * 40, first_seen=now, last_seen=now)
        s.add(repo)
        s.flush()
        f = HubFile(repo_pk=repo.id, path=path, revision="b" * 40, size=400_000, first_seen=now, last_seen=now)
        s.add(f)
        s.flush()
        return f.id


def _match(db, entry_id: int, file_id: int) -> Match | None:
    with db.session() as s:
        m = s.scalar(select(Match).where(Match.entry_id == entry_id, Match.hub_file_id == file_id))
        if m is not None:
            s.expunge(m)
        return m


@pytest.fixture
def trained_world(world):
    """Two bank entries with the fingerprints of two concepts' LoRAs trained with the shared seed, and
    hub files: a continued fine-tune of one entry's run, and the other concept's LoRA."""
    db = world.db
    a, b = world.entries[20], world.entries[21]
    with db.session() as s:
        learn(db, s, a, {}, fingerprint("c01-main-s0060"), origin="bank")
        learn(db, s, b, {}, fingerprint("c03-shared-s0060"), origin="bank")
    files = {"cont": _hub_file(db, "cont.safetensors"), "other": _hub_file(db, "other.safetensors")}
    with db.session() as s:
        match_file_fingerprint(db, s, files["cont"], fingerprint("c01-cont-s0030"), scan_run_id=None)
        match_file_fingerprint(db, s, files["other"], fingerprint("c05-shared-s0060"), scan_run_id=None)
    return world, a, b, files


def test_derived_match_is_a_claim(trained_world):
    world, a, _b, files = trained_world
    m = _match(world.db, a, files["cont"])
    assert m is not None and m.tier == 3 and 0.7 <= m.score < 0.9
    ev = m.evidence[0]
    assert ev["relation"] == "derived" and ev["verdict"] == "derived" and "lead" not in ev
    assert ev["signals"]["in_shared"] >= 0.8 and ev["why"]
    review.decide(world.db, [m.id], "confirmed", None, "rex")
    made = reports.build_reports(world.db, [m.id], "rex")
    assert [it.match.id for it in made[0].items] == [m.id]


def test_same_seed_other_concept_is_only_a_lead(trained_world):
    world, _a, b, files = trained_world
    m = _match(world.db, b, files["other"])
    assert m is not None, "a same-seed LoRA of another concept is kept as a lead for reviewers"
    ev = m.evidence[0]
    assert ev["relation"] == "similar_training" and ev["verdict"] == "no_match" and ev["lead"] is True
    assert m.score <= 0.6  # below every claim band
    assert any("shared initialisation" in w for w in ev["why"])
    assert any("similar_training" in line and "not a re-upload" in line for line in describe_evidence(m.evidence))
    with pytest.raises(Conflict, match="similar-training lead"):
        review.decide(world.db, [m.id], "confirmed", None, "rex")
    review.decide(world.db, [m.id], "second_look", None, "rex")  # a lead can be kept for a second look
    with world.db.session() as s:  # even if it was confirmed before the rule existed, no report takes it
        s.get(Match, m.id).state = "confirmed"
    with pytest.raises(Conflict, match="not a re-upload"):
        reports.build_reports(world.db, [m.id], "rex")
