"""The review queue and decisions: filters, pagination, transitions, bulk atomicity, audit, hook."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from mirrorwatch.errors import Conflict, InvalidInput, NotFound
from mirrorwatch.services import review
from mirrorwatch.services.review import QueueFilter
from mirrorwatch.store.models import Audit, Decision, Match
from webdata import add_mirror

pytest_plugins = ("webfixtures",)


def _ids(page):
    return [m.id for m in page.items]


def test_queue_defaults_to_new_exact_first(world):
    page = review.queue(world.db)
    assert page.total == 8
    assert set(_ids(page)) == set(world.new_matches)
    tiers = [m.tier for m in page.items]
    assert tiers == sorted(tiers)  # exact (tier 1) before header evidence
    m = page.items[0]
    assert m.entry_name and m.repo_id and m.bank and m.why


def test_queue_filters(world):
    db = world.db
    assert review.queue(db, QueueFilter(uploader="archivist9")).total == 6
    assert review.queue(db, QueueFilter(tier=2)).total == 1
    assert review.queue(db, QueueFilter(min_score=0.95)).total == 7
    assert review.queue(db, QueueFilter(bank_id=world.bank2_id)).total == 0
    assert review.queue(db, QueueFilter(bank_id=world.bank_id)).total == 8
    assert review.queue(db, QueueFilter(max_age_days=3)).total == 5  # found 0, 1 or 2 days ago
    assert review.queue(db, QueueFilter(min_age_days=3)).total == 3
    assert review.queue(db, QueueFilter(state="confirmed")).total == 2
    assert review.queue(db, QueueFilter(state=None)).total == 10
    assert review.queue(db, QueueFilter(state=None, hub="local")).total == 1
    assert review.queue(db, QueueFilter(entry_id=world.entries[0])).total == 1
    assert review.queue(db, QueueFilter(repo_pk=world.repos[0])).total == 1


def test_queue_pagination_is_stable_and_complete(world):
    seen = []
    for off in range(0, 8, 3):
        page = review.queue(world.db, limit=3, offset=off)
        assert page.total == 8
        seen += _ids(page)
    assert sorted(seen) == sorted(world.new_matches)
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize("flt", [QueueFilter(state="bogus"), QueueFilter(tier=7), QueueFilter(min_score=-1),
                                 QueueFilter(sort="random"), QueueFilter(max_age_days=-3)])
def test_queue_refuses_bad_filters(world, flt):
    with pytest.raises(InvalidInput):
        review.queue(world.db, flt)


@pytest.mark.parametrize(("limit", "offset"), [(0, 0), (501, 0), (10, -1)])
def test_queue_refuses_bad_windows(world, limit, offset):
    with pytest.raises(InvalidInput):
        review.queue(world.db, limit=limit, offset=offset)


def test_decide_writes_decision_audit_and_calls_hook(world, monkeypatch):
    called = []
    monkeypatch.setattr(review, "on_confirmed", lambda db, ids: called.append(list(ids)))
    ids = world.new_matches[:3]
    res = review.decide(world.db, ids, "confirmed", "  same file as the bank  ", "rex")
    assert res.decided == ids and res.confirmed == ids
    assert called == [ids]
    with world.db.session() as s:
        states = dict(s.execute(select(Match.id, Match.state).where(Match.id.in_(ids))).all())
        decisions = s.scalars(select(Decision).where(Decision.match_id.in_(ids))).all()
        audits = s.scalars(select(Audit).where(Audit.action == "match.decide")).all()
    assert set(states.values()) == {"confirmed"}
    assert {(d.user, d.state, d.note) for d in decisions} == {("rex", "confirmed", "same file as the bank")}
    assert sorted(int(a.object_id) for a in audits) == sorted(ids)
    assert {a.detail["old"] for a in audits} == {"new"}
    detail = review.get_match(world.db, ids[0])
    assert detail.decisions[0].user == "rex"
    assert "confirmed" not in detail.allowed and "dismissed" in detail.allowed


def test_decide_no_hook_for_other_states(world, monkeypatch):
    called = []
    monkeypatch.setattr(review, "on_confirmed", lambda db, ids: called.append(ids))
    review.decide(world.db, world.new_matches[:1], "dismissed", None, "rex")
    assert called == []


def test_transitions(world):
    db = world.db
    m = world.new_matches[0]
    review.decide(db, [m], "second_look", None, "rex")
    review.decide(db, [m], "confirmed", None, "rex")
    review.decide(db, [m], "new", "undo", "rex")
    with pytest.raises(Conflict):
        review.decide(db, [m], "new", None, "rex")  # already new
    with db.session() as s:
        s.get(Match, m).state = "reported"
    with pytest.raises(Conflict, match="reported"):
        review.decide(db, [m], "dismissed", None, "rex")
    with db.session() as s:
        s.get(Match, m).state = "gone"
    with pytest.raises(Conflict):
        review.decide(db, [m], "confirmed", None, "rex")
    assert review.decide(db, [m], "dismissed", None, "rex").decided == [m]


@pytest.mark.parametrize("state", ["reported", "gone", "deleted", "", "CONFIRMED"])
def test_decide_refuses_states_reviewers_cannot_set(world, state):
    with pytest.raises(InvalidInput):
        review.decide(world.db, world.new_matches[:1], state, None, "rex")


def test_bulk_decision_is_all_or_nothing(world):
    db = world.db
    confirmed = world.extra["confirmed"][0]
    before = _count_decisions(db)
    with pytest.raises(Conflict, match="nothing was changed"):
        review.decide(db, world.new_matches[:4] + [confirmed], "confirmed", None, "rex")
    with pytest.raises(NotFound):
        review.decide(db, world.new_matches[:2] + [987654], "dismissed", None, "rex")
    assert _count_decisions(db) == before
    assert review.queue(db).total == 8


def test_decide_input_limits(world):
    with pytest.raises(InvalidInput):
        review.decide(world.db, [], "confirmed", None, "rex")
    with pytest.raises(InvalidInput):
        review.decide(world.db, list(range(1, 502)), "confirmed", None, "rex")
    with pytest.raises(InvalidInput):
        review.decide(world.db, world.new_matches[:1], "confirmed", "x" * 2001, "rex")


def test_confirmed_match_in_draft_report_keeps_state(world):
    from mirrorwatch.services import reports

    db = world.db
    m = world.extra["confirmed"][0]
    rep = reports.build_reports(db, [m], "rex")[0]
    with pytest.raises(Conflict, match="draft report"):
        review.decide(db, [m], "dismissed", None, "rex")
    reports.remove_item(db, rep.id, m, "rex")
    assert review.decide(db, [m], "dismissed", None, "rex").decided == [m]


def test_queue_shows_all_mirrors_of_a_batch_uploader_together(world):
    page = review.queue(world.db, QueueFilter(sort="uploader"))
    authors = [m.author for m in page.items]
    first = authors.index("archivist9")
    assert authors[first:first + 6] == ["archivist9"] * 6


def _count_decisions(db):
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(Decision))


def test_get_match_unknown(world):
    with pytest.raises(NotFound):
        review.get_match(world.db, 424242)


def test_match_views_describe_evidence(world):
    mid, _ = add_mirror(world.db, world.entries[20], repo_id="x/y", author="x", path="a.safetensors", sha256=None,
                        tier=3, score=0.9991, evidence=[{"tier": 3, "kind": "fingerprint", "cosine": 0.9991,
                                                         "layers": 96}, "<b>not html</b>"])
    m = review.get_match(world.db, mid).match
    assert m.tier_name == "fingerprint"
    assert m.why == ["fingerprint (cosine 0.9991, layers 96)", "<b>not html</b>"]
