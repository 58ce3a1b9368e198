"""The one hit type every tier produces, and the one place hits become (or strengthen) matches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from mirrorwatch.store.models import Match, utcnow
from mirrorwatch.store.upsert import insert_missing


@dataclass
class Hit:
    """Evidence that a hub file is a bank entry: the tier it comes from, its score, what agreed."""

    entry_id: int
    hub_file_id: int
    score: float
    evidence: list[dict[str, Any]]
    tier: int


def record_hits(session: Session, hits: list[Hit], *, scan_run_id: int | None) -> int:
    """Insert matches that do not exist yet (entry x file is unique) and return how many are new.
    A hit for an existing match adds its evidence; a stronger one raises the score (and sets the
    tier of that stronger evidence). The reviewer's state is never changed here."""
    if not hits:
        return 0
    pairs = list({(h.entry_id, h.hub_file_id) for h in hits})
    existing: dict[tuple[int, int], Match] = {}
    for i in range(0, len(pairs), 400):
        for m in session.scalars(select(Match).where(tuple_(Match.entry_id, Match.hub_file_id).in_(pairs[i : i + 400]))):
            existing[(m.entry_id, m.hub_file_id)] = m
    now = utcnow()
    fresh: dict[tuple[int, int], dict[str, Any]] = {}  # matches to create, each with all its hits merged
    for h in hits:
        key = (h.entry_id, h.hub_file_id)
        m = existing.get(key)
        if m is not None:
            _strengthen(m, h, now)
            continue
        row = fresh.get(key)
        if row is None:
            fresh[key] = {"entry_id": h.entry_id, "hub_file_id": h.hub_file_id, "tier": h.tier, "score": h.score,
                          "evidence": list(h.evidence), "state": "new", "created_at": now, "updated_at": now,
                          "scan_run_id": scan_run_id}
            continue
        row["evidence"] += [e for e in h.evidence if e not in row["evidence"]]
        if h.score > row["score"]:
            row["score"], row["tier"] = h.score, h.tier
    new = 0
    session.flush()
    for key, row in fresh.items():
        # conflict-tolerant: another sweep may record the same entry x file at the same moment
        if insert_missing(session, Match, [row], ("entry_id", "hub_file_id")):
            new += 1
            continue
        m = session.scalar(select(Match).where(Match.entry_id == key[0], Match.hub_file_id == key[1]))
        _strengthen(m, Hit(key[0], key[1], row["score"], row["evidence"], row["tier"]), now)
    session.flush()
    return new


def _strengthen(m: Match, h: Hit, now: Any) -> None:
    """A hit for an existing match: add its evidence; a stronger one raises the score (and tier)."""
    evidence = list(m.evidence or [])
    added = [e for e in h.evidence if e not in evidence]
    if added or h.score > m.score:
        m.evidence = evidence + added
        if h.score > m.score:
            m.score, m.tier = h.score, h.tier
        m.updated_at = now
