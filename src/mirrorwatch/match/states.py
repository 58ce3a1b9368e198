"""The match vocabulary: states, the sets they fall into, who may move a match where, and tier names.

This is the one place these are spelt; the services, the CLI, the web schemas and the sweep derive
from it. It imports nothing from mirrorwatch, so every layer from `match` up may use it.

Lifecycle of a match (state), and who moves it:

    sweep ──> new ──reviewer──> confirmed ──report sent──> reported
               │  ╲                 │                          │
               │   second_look <────┤              mirror removed (sweep, recheck)
               │        │           │                          v
               └──> dismissed <─────┘                        gone ──mirror back (recheck)──> new

Reviewers move matches between new, confirmed, dismissed and second_look (and back to new, to
undo): :data:`REVIEWER_TRANSITIONS`. `reported` is set only by sending a takedown report, `gone`
only when the mirror is found removed, and a gone match reopens as `new` only when the mirror comes
back: :data:`SYSTEM_TRANSITIONS`. A reported match cannot be changed by a decision; a gone one can
only be dismissed.

Database columns hold the plain string values; the sets below are tuples of those strings (in
display order) so they can go straight into SQL `IN (...)` clauses."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class MatchState(StrEnum):
    NEW = "new"
    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"
    SECOND_LOOK = "second_look"
    REPORTED = "reported"
    GONE = "gone"


class Tier(IntEnum):
    EXACT = 1
    HEADER = 2
    FINGERPRINT = 3


def _values(*states: MatchState) -> tuple[str, ...]:
    return tuple(s.value for s in states)


# Every state, in display order (filters, charts, help texts).
STATES: tuple[str, ...] = _values(*MatchState)

# Ruled out: the mirror was judged not to be the model, or it is no longer there. These matches do
# not count as the model being found.
EXCLUDED: tuple[str, ...] = _values(MatchState.DISMISSED, MatchState.GONE)

# Open (live) matches: a mirror still up and not ruled out. They count as the model being found,
# and a removal found by the sweep or a recheck turns them `gone`.
LIVE: tuple[str, ...] = tuple(s for s in STATES if s not in EXCLUDED)

# Waiting for a reviewer (the dashboard's "to review").
TO_REVIEW: tuple[str, ...] = _values(MatchState.NEW, MatchState.SECOND_LOOK)

# Judged to be the model (confirmed, whether or not a report was sent yet).
UPHELD: tuple[str, ...] = _values(MatchState.CONFIRMED, MatchState.REPORTED)

# The states a reviewer's decision may set (the API's decision values).
DECIDABLE: tuple[str, ...] = _values(
    MatchState.CONFIRMED, MatchState.DISMISSED, MatchState.SECOND_LOOK, MatchState.NEW
)

# What a reviewer may change each state into.
REVIEWER_TRANSITIONS: dict[str, frozenset[str]] = {
    MatchState.NEW.value: frozenset(_values(MatchState.CONFIRMED, MatchState.DISMISSED, MatchState.SECOND_LOOK)),
    MatchState.SECOND_LOOK.value: frozenset(_values(MatchState.CONFIRMED, MatchState.DISMISSED, MatchState.NEW)),
    MatchState.CONFIRMED.value: frozenset(_values(MatchState.DISMISSED, MatchState.SECOND_LOOK, MatchState.NEW)),
    MatchState.DISMISSED.value: frozenset(_values(MatchState.CONFIRMED, MatchState.SECOND_LOOK, MatchState.NEW)),
    MatchState.REPORTED.value: frozenset(),
    MatchState.GONE.value: frozenset(_values(MatchState.DISMISSED)),
}

# What only the system does, by event: event -> (states it applies to, the state they become).
REPORT_SENT = "report_sent"
MIRROR_REMOVED = "mirror_removed"
MIRROR_BACK = "mirror_back"
SYSTEM_TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    REPORT_SENT: (_values(MatchState.CONFIRMED), MatchState.REPORTED.value),
    MIRROR_REMOVED: (LIVE, MatchState.GONE.value),
    MIRROR_BACK: (_values(MatchState.GONE), MatchState.NEW.value),
}

TIER_NAMES: dict[int, str] = {t.value: t.name.lower() for t in Tier}


def reviewer_may(old: str, new: str) -> bool:
    """True if a reviewer's decision may move a match from state `old` to state `new`."""
    return new in REVIEWER_TRANSITIONS.get(old, frozenset())


def allowed_decisions(state: str) -> list[str]:
    """The decisions a reviewer may take on a match in this state, sorted."""
    return sorted(REVIEWER_TRANSITIONS.get(state, frozenset()))


def system_move(event: str, state: str) -> str | None:
    """The state the system moves a match in `state` to on `event`, or None if the event leaves it be."""
    sources, target = SYSTEM_TRANSITIONS[event]
    return target if state in sources else None


def tier_name(tier: int) -> str:
    return TIER_NAMES.get(tier, str(tier))
