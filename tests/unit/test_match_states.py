"""The match vocabulary: state sets and who may move a match where (mirrorwatch.match.states)."""

from __future__ import annotations

import pytest

from mirrorwatch.match import states
from mirrorwatch.match.states import (
    DECIDABLE,
    EXCLUDED,
    LIVE,
    MIRROR_BACK,
    MIRROR_REMOVED,
    REPORT_SENT,
    REVIEWER_TRANSITIONS,
    STATES,
    MatchState,
    allowed_decisions,
    reviewer_may,
    system_move,
    tier_name,
)


def test_live_and_excluded_split_every_state():
    assert set(LIVE) | set(EXCLUDED) == set(STATES)
    assert not set(LIVE) & set(EXCLUDED)
    assert set(EXCLUDED) == {"dismissed", "gone"}


def test_every_state_has_reviewer_rules_and_targets_are_decidable():
    assert set(REVIEWER_TRANSITIONS) == set(STATES)
    for targets in REVIEWER_TRANSITIONS.values():
        assert targets <= set(DECIDABLE)
    for old, targets in REVIEWER_TRANSITIONS.items():
        assert old not in targets  # a decision always changes the state


@pytest.mark.parametrize("system_state", ["reported", "gone"])
def test_reviewers_never_set_system_states(system_state):
    assert system_state not in DECIDABLE
    assert not any(reviewer_may(old, system_state) for old in STATES)


def test_reviewer_moves_between_review_states_and_can_undo():
    review_states = ["new", "confirmed", "dismissed", "second_look"]
    for old in review_states:
        for new in review_states:
            assert reviewer_may(old, new) == (old != new), (old, new)


def test_reported_is_final_for_reviewers_and_gone_can_only_be_dismissed():
    assert allowed_decisions("reported") == []
    assert allowed_decisions("gone") == ["dismissed"]
    assert not reviewer_may("gone", "confirmed")
    assert not reviewer_may("reported", "dismissed")


def test_unknown_state_allows_nothing():
    assert allowed_decisions("bogus") == []
    assert not reviewer_may("bogus", "new")


def test_sending_a_report_moves_confirmed_matches_only():
    assert system_move(REPORT_SENT, "confirmed") == "reported"
    for st in STATES:
        if st != "confirmed":
            assert system_move(REPORT_SENT, st) is None, st


def test_removal_takes_live_matches_to_gone_and_leaves_excluded_ones():
    for st in LIVE:
        assert system_move(MIRROR_REMOVED, st) == "gone"
    assert system_move(MIRROR_REMOVED, "dismissed") is None
    assert system_move(MIRROR_REMOVED, "gone") is None


def test_a_mirror_coming_back_reopens_gone_matches_as_new():
    assert system_move(MIRROR_BACK, "gone") == "new"
    for st in STATES:
        if st != "gone":
            assert system_move(MIRROR_BACK, st) is None


def test_sets_hold_plain_strings_for_sql():
    for values in (STATES, LIVE, EXCLUDED, DECIDABLE, states.TO_REVIEW, states.UPHELD):
        assert all(type(v) is str for v in values)
    assert MatchState("second_look") is MatchState.SECOND_LOOK
    assert MatchState.NEW == "new"


def test_tier_names():
    assert [tier_name(t) for t in (1, 2, 3)] == ["exact", "header", "fingerprint"]
    assert tier_name(9) == "9"
