"""Listing matches for people: filters, and grouping by uploader (batch re-uploads stand out)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from mirrorwatch.services.lookup import hub_file_url
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import Bank, Entry, HubFile, HubRepo, Match


@dataclass
class MatchRow:
    id: int
    entry_id: int
    entry_name: str
    bank: str
    hub: str
    repo_id: str
    path: str
    url: str | None
    uploader: str | None
    size: int | None
    sha256: str | None
    tier: int
    score: float
    state: str
    repo_status: str
    file_status: str
    first_seen: datetime
    last_seen: datetime
    matched_at: datetime
    evidence: list[Any]

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        for k in ("first_seen", "last_seen", "matched_at"):
            d[k] = d[k].isoformat() + "Z"
        return d


def list_matches(db: Database, *, bank: str | None = None, state: str | None = None, repo: str | None = None,
                 author: str | None = None, tier: int | None = None, limit: int = 1000, offset: int = 0) -> list[MatchRow]:
    q = (
        select(Match, Entry.name, Bank.name, HubFile, HubRepo)
        .join(Entry, Entry.id == Match.entry_id)
        .join(Bank, Bank.id == Entry.bank_id)
        .join(HubFile, HubFile.id == Match.hub_file_id)
        .join(HubRepo, HubRepo.id == HubFile.repo_pk)
    )
    if bank:
        q = q.where(Bank.name == bank)
    if state:
        q = q.where(Match.state == state)
    if repo:
        q = q.where(HubRepo.repo_id == repo)
    if author:
        q = q.where(HubRepo.author == author)
    if tier:
        q = q.where(Match.tier == tier)
    q = q.order_by(HubRepo.author, HubRepo.repo_id, HubFile.path, Match.id).limit(limit).offset(offset)
    rows = []
    with db.session() as s:
        for m, ename, bname, f, r in s.execute(q):
            rows.append(MatchRow(
                id=m.id, entry_id=m.entry_id, entry_name=ename, bank=bname, hub=r.hub, repo_id=r.repo_id,
                path=f.path, url=hub_file_url(r.hub, r.repo_id, f.path), uploader=r.author, size=f.size,
                sha256=f.sha256, tier=m.tier, score=m.score, state=m.state, repo_status=r.status,
                file_status=f.status, first_seen=f.first_seen, last_seen=f.last_seen, matched_at=m.created_at,
                evidence=m.evidence,
            ))
    return rows


def group_by_uploader(rows: list[MatchRow]) -> list[tuple[str, list[MatchRow]]]:
    """Uploaders with the most matches first."""
    groups: dict[str, list[MatchRow]] = defaultdict(list)
    for r in rows:
        groups[r.uploader or "(unknown)"].append(r)
    return sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
