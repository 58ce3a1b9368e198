"""Dashboard aggregates: matches over time, by bank, by uploader, by state and tier, and totals.

Everything is computed from the match table with grouped queries, so the numbers on the dashboard
are the same as the lists they summarise."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from mirrorwatch.hubs.registry import default_hub
from mirrorwatch.match.states import EXCLUDED, STATES, TIER_NAMES, TO_REVIEW, UPHELD
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import Bank, Entry, HubFile, HubRepo, Match, utcnow

DAYS = 60
TOP = 12


@dataclass
class DayCount:
    day: date
    total: int
    confirmed: int


@dataclass
class Bar:
    label: str
    value: int
    link: str | None = None


@dataclass
class Dashboard:
    totals: dict[str, int]
    over_time: list[DayCount] = field(default_factory=list)
    by_bank: list[Bar] = field(default_factory=list)
    by_uploader: list[Bar] = field(default_factory=list)
    by_state: list[Bar] = field(default_factory=list)
    by_tier: list[Bar] = field(default_factory=list)
    since: date | None = None


def dashboard(db: Database, *, days: int = DAYS) -> Dashboard:
    since = (utcnow() - timedelta(days=days - 1)).date()
    since_dt = datetime(since.year, since.month, since.day)
    with db.session() as s:
        by_state = dict(s.execute(select(Match.state, func.count()).group_by(Match.state)).all())
        by_tier = dict(s.execute(select(Match.tier, func.count()).group_by(Match.tier)).all())
        totals = {
            "banks": s.scalar(select(func.count()).select_from(Bank)) or 0,
            "entries": s.scalar(select(func.count()).select_from(Entry)) or 0,
            "entries_found": s.scalar(select(func.count(func.distinct(Match.entry_id)))
                                      .where(Match.state.notin_(EXCLUDED))) or 0,
            "matches": sum(by_state.values()),
            "to_review": sum(by_state.get(st, 0) for st in TO_REVIEW),
            "repos": s.scalar(select(func.count(func.distinct(HubFile.repo_pk))).join(Match, Match.hub_file_id == HubFile.id)) or 0,
        }
        day = func.date(Match.created_at)
        per_day: dict[str, list[int]] = {}
        for d, state, n in s.execute(select(day, Match.state, func.count()).where(Match.created_at >= since_dt)
                                     .group_by(day, Match.state)):
            slot = per_day.setdefault(str(d), [0, 0])
            slot[0] += n
            if state in UPHELD:
                slot[1] += n
        banks = s.execute(select(Bank.id, Bank.name, func.count(Match.id)).join(Entry, Entry.bank_id == Bank.id)
                          .join(Match, Match.entry_id == Entry.id).group_by(Bank.id, Bank.name)
                          .order_by(func.count(Match.id).desc()).limit(TOP)).all()
        ups = s.execute(select(HubRepo.hub, HubRepo.author, func.count(Match.id)).select_from(Match)
                        .join(HubFile, HubFile.id == Match.hub_file_id).join(HubRepo, HubRepo.id == HubFile.repo_pk)
                        .where(HubRepo.author.is_not(None)).group_by(HubRepo.hub, HubRepo.author)
                        .order_by(func.count(Match.id).desc()).limit(TOP)).all()
    main_hub = default_hub().name
    over_time = []
    for i in range(days):
        d = since + timedelta(days=i)
        total, conf = per_day.get(d.isoformat(), [0, 0])
        over_time.append(DayCount(d, total, conf))
    return Dashboard(
        totals=totals, over_time=over_time,
        by_bank=[Bar(name, n, f"/banks/{bid}") for bid, name, n in banks],
        by_uploader=[Bar(f"{a} ({h})" if h != main_hub else a, n, None) for h, a, n in ups],
        by_state=[Bar(st, by_state.get(st, 0), f"/queue?state={st}") for st in STATES],
        by_tier=[Bar(f"{t} {TIER_NAMES.get(t, '')}".strip(), n, f"/queue?state=&tier={t}") for t, n in sorted(by_tier.items())],
        since=since,
    )

