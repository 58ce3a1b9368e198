"""The review queue and reviewers' decisions.

Who may move a match to which state is defined in :mod:`mirrorwatch.match.states`: reviewers move
matches between new, confirmed, dismissed and second_look; `reported` and `gone` are set only by the
system. A confirmed match that sits in a draft report keeps its state until it is taken out of the
report.

A decision on several matches is one transaction: all of them change or none does. Each change
writes a Decision row (the history shown on the match) and an Audit row."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func, select

from mirrorwatch.errors import Conflict, InvalidInput, NotFound
from mirrorwatch.match.hits import similar_training_only
from mirrorwatch.match.states import (
    DECIDABLE,
    STATES,
    TIER_NAMES,
    MatchState,
    allowed_decisions,
    reviewer_may,
)
from mirrorwatch.services.audit import record
from mirrorwatch.services.matches import MatchView, match_select, match_views
from mirrorwatch.services.paging import Page, check_window
from mirrorwatch.services.serial import Utc, read_model
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import Decision, Entry, HubFile, HubRepo, Match, Report, ReportItem, utcnow
from mirrorwatch.store.outbox import MATCH_STATE, match_events

SORTS = ("score", "newest", "oldest", "uploader")
MAX_BULK = 500
MAX_NOTE = 2000


@dataclass
class QueueFilter:
    """What the queue shows. state None means every state."""

    state: str | None = "new"
    bank_id: int | None = None
    tier: int | None = None
    min_score: float | None = None
    uploader: str | None = None
    hub: str | None = None
    max_age_days: int | None = None  # found within the last N days
    min_age_days: int | None = None  # found at least N days ago (the old backlog)
    entry_id: int | None = None
    repo_pk: int | None = None
    sort: str = "score"

    def check(self) -> QueueFilter:
        if self.state is not None and self.state not in STATES:
            raise InvalidInput(f"unknown state {self.state!r}: use one of {', '.join(STATES)}")
        if self.tier is not None and self.tier not in TIER_NAMES:
            raise InvalidInput("tier must be 1 (exact), 2 (header) or 3 (fingerprint)")
        if self.min_score is not None and not (0 <= self.min_score <= 1_000):
            raise InvalidInput("min_score must be between 0 and 1000")
        for name in ("max_age_days", "min_age_days"):
            v = getattr(self, name)
            if v is not None and not (0 <= v <= 100_000):
                raise InvalidInput(f"{name} must be between 0 and 100000")
        if self.sort not in SORTS:
            raise InvalidInput(f"unknown sort {self.sort!r}: use one of {', '.join(SORTS)}")
        if self.uploader is not None and len(self.uploader) > 200:
            raise InvalidInput("uploader names have at most 200 characters")
        return self


@read_model
class DecisionView:
    id: int
    match_id: int
    user: str
    state: str
    note: str | None
    at: Utc


@read_model
class MatchDetail:
    match: MatchView
    decisions: list[DecisionView] = field(default_factory=list)
    reports: list[int] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)


@read_model
class DecideResult:
    state: str
    decided: list[int]
    confirmed: list[int] = field(default_factory=list)


def filter_conditions(flt: QueueFilter) -> list:
    conds = []
    now = utcnow()
    if flt.state is not None:
        conds.append(Match.state == flt.state)
    if flt.bank_id is not None:
        conds.append(Entry.bank_id == flt.bank_id)
    if flt.tier is not None:
        conds.append(Match.tier == flt.tier)
    if flt.min_score is not None:
        conds.append(Match.score >= flt.min_score)
    if flt.uploader:
        conds.append(HubRepo.author == flt.uploader)
    if flt.hub:
        conds.append(HubRepo.hub == flt.hub)
    if flt.max_age_days is not None:
        conds.append(Match.created_at >= now - timedelta(days=flt.max_age_days))
    if flt.min_age_days is not None:
        conds.append(Match.created_at <= now - timedelta(days=flt.min_age_days))
    if flt.entry_id is not None:
        conds.append(Match.entry_id == flt.entry_id)
    if flt.repo_pk is not None:
        conds.append(HubRepo.id == flt.repo_pk)
    return conds


def _order(sort: str) -> list:
    if sort == "newest":
        return [Match.created_at.desc(), Match.id.desc()]
    if sort == "oldest":
        return [Match.created_at, Match.id]
    if sort == "uploader":
        return [HubRepo.author, HubRepo.repo_id, Match.id]
    return [Match.tier, Match.score.desc(), Match.id]


def queue(db: Database, flt: QueueFilter | None = None, *, limit: int | None = None,
          offset: int | None = None) -> Page[MatchView]:
    """Matches to review, filtered and ordered; exact matches with the best scores first by default."""
    flt = (flt or QueueFilter()).check()
    limit, offset = check_window(limit, offset)
    conds = filter_conditions(flt)
    with db.session() as s:
        count_q = (
            select(func.count()).select_from(Match)
            .join(Entry, Entry.id == Match.entry_id)
            .join(HubFile, HubFile.id == Match.hub_file_id)
            .join(HubRepo, HubRepo.id == HubFile.repo_pk)
            .where(*conds)
        )
        total = s.scalar(count_q) or 0
        items = match_views(s, match_select().where(*conds).order_by(*_order(flt.sort)).limit(limit).offset(offset))
    return Page(items, total, limit, offset)


def get_match(db: Database, match_id: int) -> MatchDetail:
    with db.session() as s:
        views = match_views(s, match_select().where(Match.id == match_id))
        if not views:
            raise NotFound(f"no match with id {match_id}")
        decisions = [
            DecisionView(d.id, d.match_id, d.user, d.state, d.note, d.at)
            for d in s.scalars(select(Decision).where(Decision.match_id == match_id).order_by(Decision.id.desc()))
        ]
        reports = list(s.scalars(select(ReportItem.report_id).where(ReportItem.match_id == match_id)
                                 .order_by(ReportItem.report_id)))
    m = views[0]
    return MatchDetail(m, decisions, reports, allowed_decisions(m.state))


def decide(db: Database, match_ids: list[int], state: str, note: str | None, user: str) -> DecideResult:
    """Set the state of one or more matches in one transaction (all or none)."""
    if state not in DECIDABLE:
        raise InvalidInput(f"a decision is one of {', '.join(DECIDABLE)} (got {state!r})")
    ids = list(dict.fromkeys(int(i) for i in match_ids))
    if not ids:
        raise InvalidInput("select at least one match")
    if len(ids) > MAX_BULK:
        raise InvalidInput(f"at most {MAX_BULK} matches per decision")
    note = (note or "").strip() or None
    if note is not None and len(note) > MAX_NOTE:
        raise InvalidInput(f"a note has at most {MAX_NOTE} characters")
    now = utcnow()
    with db.session() as s:
        matches = {m.id: m for m in s.scalars(select(Match).where(Match.id.in_(ids)))}
        missing = [i for i in ids if i not in matches]
        if missing:
            raise NotFound(f"no match with id {missing[0]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
        refused = [m for m in matches.values() if not reviewer_may(m.state, state)]
        if refused:
            m = refused[0]
            more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
            raise Conflict(f"match {m.id} is {m.state}: it cannot become {state}{more}; nothing was changed")
        if state == MatchState.CONFIRMED:
            leads = [m for m in matches.values() if similar_training_only(m.evidence)]
            if leads:
                more = f" (and {len(leads) - 1} more)" if len(leads) > 1 else ""
                raise Conflict(f"match {leads[0].id}{more} is only a similar-training lead (an independent model "
                               "trained alike, not a re-upload of the bank file): it cannot be confirmed as a "
                               "mirror; keep it for a second look or dismiss it; nothing was changed")
        if state != MatchState.CONFIRMED:
            in_draft = s.execute(
                select(ReportItem.match_id, Report.id).join(Report, Report.id == ReportItem.report_id)
                .where(ReportItem.match_id.in_(ids), Report.state == "draft")
            ).first()
            if in_draft:
                raise Conflict(f"match {in_draft[0]} is in draft report #{in_draft[1]}: take it out of the report "
                               "first; nothing was changed")
        changes = {}
        for mid in ids:
            m = matches[mid]
            old = m.state
            m.state = state
            m.updated_at = now
            s.add(Decision(match_id=mid, user=user, state=state, note=note, at=now))
            record(s, user, "match.decide", "match", mid, old=old, new=state, **({"note": note} if note else {}))
            if old != state:
                changes[mid] = {"from": old, "to": state, "by": "reviewer", "reason": "decision",
                                "names": {"reviewer": user}}
        s.flush()
        match_events(s, MATCH_STATE, list(changes), changes=changes)  # the outbox, in this transaction
    confirmed = ids if state == MatchState.CONFIRMED else []
    if confirmed:
        on_confirmed(db, confirmed)
    return DecideResult(state, ids, confirmed)


def on_confirmed(db: Database, match_ids: list[int]) -> None:
    """Called after matches were confirmed (committed): bank expansion. Each confirmed mirror adds its
    robust signatures (AutoV3, weight fingerprint, training-run ids) to its entry, and files swept
    earlier that carry them are matched at once."""
    from mirrorwatch.services.expansion import learn_from_matches

    learn_from_matches(db, match_ids)
