"""The one hit type every tier produces, and the one place hits become (or strengthen) matches."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from mirrorwatch.hubs.base import SOURCE_KEY
from mirrorwatch.match.scores import EXACT_STRONG_SCORE, LEAD_FIELDS, STRONG_MATCH_SCORE
from mirrorwatch.match.states import MatchState
from mirrorwatch.store.models import Entry, HubFile, Match, utcnow
from mirrorwatch.store.outbox import MATCH_NEW, match_events
from mirrorwatch.store.upsert import insert_missing

# Bank-entry columns naming where an entry was first published; a hub names the same ones in a
# file's source (`RemoteFile.source`) when the file IS an upload it knows by those ids.
ENTRY_SOURCE_IDS = ("civitai_model_id", "civitai_version_id")


@dataclass
class Hit:
    """Evidence that a hub file is a bank entry: the tier it comes from, its score, what agreed."""

    entry_id: int
    hub_file_id: int
    score: float
    evidence: list[dict[str, Any]]
    tier: int


def is_itself(entry_ids: Mapping[str, Any], source: Mapping[str, Any] | None) -> bool:
    """Whether a hub file IS the bank entry (its original upload), not a re-upload of it: the ids
    both name agree, and they name at least one. A banked Civitai version is itself; so is any
    version of a banked model id with no version; another version of a banked version's model is a
    re-upload."""
    if not source:
        return False
    shared = [k for k in ENTRY_SOURCE_IDS if entry_ids.get(k) is not None and source.get(k) is not None]
    try:
        return bool(shared) and all(int(entry_ids[k]) == int(source[k]) for k in shared)
    except (TypeError, ValueError):
        return False


def _drop_self_hits(session: Session, hits: list[Hit]) -> list[Hit]:
    """Hits minus the pairs where the file is the entry itself (see `is_itself`)."""
    file_ids = sorted({h.hub_file_id for h in hits})
    sources: dict[int, dict[str, Any]] = {}
    for i in range(0, len(file_ids), 500):
        for fid, hashes in session.execute(select(HubFile.id, HubFile.hashes).where(HubFile.id.in_(file_ids[i : i + 500]))):
            src = (hashes or {}).get(SOURCE_KEY) if isinstance(hashes, dict) else None
            if isinstance(src, dict) and any(src.get(k) is not None for k in ENTRY_SOURCE_IDS):
                sources[fid] = src
    if not sources:
        return hits
    entry_ids = sorted({h.entry_id for h in hits if h.hub_file_id in sources})
    ids: dict[int, dict[str, Any]] = {}
    for i in range(0, len(entry_ids), 500):
        for eid, model, version in session.execute(
            select(Entry.id, Entry.civitai_model_id, Entry.civitai_version_id).where(Entry.id.in_(entry_ids[i : i + 500]))
        ):
            ids[eid] = {"civitai_model_id": model, "civitai_version_id": version}
    return [h for h in hits if not is_itself(ids.get(h.entry_id, {}), sources.get(h.hub_file_id))]


def is_similar_training(item: Any) -> bool:
    """A fingerprint comparison whose relation is `similar_training`: an independent model trained
    alike (same data or same seed), a lead for reviewers and never a re-upload claim."""
    return isinstance(item, dict) and item.get("kind") == "fingerprint" and item.get("relation") == "similar_training"


def _lead_item(item: Any) -> bool:
    return isinstance(item, dict) and (
        (item.get("kind") == "header" and item.get("field") in LEAD_FIELDS) or is_similar_training(item))
def _drop_withdrawn(session: Session, hits: list[Hit]) -> list[Hit]:
    """Hits minus those of withdrawn entries: a withdrawn entry matches no new file (its existing
    matches stay, and are not strengthened)."""
    entry_ids = sorted({h.entry_id for h in hits})
    withdrawn: set[int] = set()
    for i in range(0, len(entry_ids), 500):
        withdrawn.update(session.scalars(select(Entry.id).where(Entry.id.in_(entry_ids[i : i + 500]),
                                                                Entry.status == "withdrawn")))
    return [h for h in hits if h.entry_id not in withdrawn] if withdrawn else hits


def is_lead(hit: Hit) -> bool:
    """A hit whose every piece of evidence is a lead: it names the model (header names, trigger words)
    or its weights were only trained alike (fingerprint relation `similar_training`)."""
    return bool(hit.evidence) and all(_lead_item(e) for e in hit.evidence)


def similar_training_only(evidence: Any) -> bool:
    """Stored evidence that makes no re-upload claim because its weight evidence says only
    `similar_training` (with at most name leads beside it): such a match may be reviewed and kept as
    a lead, but never confirmed as a mirror nor reported as a re-upload."""
    items = evidence if isinstance(evidence, list) else [evidence] if evidence else []
    return any(is_similar_training(e) for e in items) and all(_lead_item(e) for e in items)


def is_strong(tier: int, score: float) -> bool:
    """A match that says which entry a file is: an exact (tier-1) hash agreement (>= 0.9; not an
    archive member's CRC-32-only match), or a score >= 0.95."""
    return (tier == 1 and score >= EXACT_STRONG_SCORE) or score >= STRONG_MATCH_SCORE


def _strongly_matched(session: Session, hits: list[Hit]) -> dict[int, set[int]]:
    """file -> entries it strongly matches (stored matches a reviewer has not dismissed, and this
    batch's strong hits), for the files a lead in `hits` points at."""
    lead_files = {h.hub_file_id for h in hits if is_lead(h)}
    out: dict[int, set[int]] = {}
    if not lead_files:
        return out
    for h in hits:
        if h.hub_file_id in lead_files and is_strong(h.tier, h.score):
            out.setdefault(h.hub_file_id, set()).add(h.entry_id)
    files = sorted(lead_files)
    for i in range(0, len(files), 400):
        for fid, eid in session.execute(
            select(Match.hub_file_id, Match.entry_id).where(
                Match.hub_file_id.in_(files[i : i + 400]), Match.state != MatchState.DISMISSED.value,
                ((Match.tier == 1) & (Match.score >= EXACT_STRONG_SCORE)) | (Match.score >= STRONG_MATCH_SCORE),
            )
        ):
            out.setdefault(fid, set()).add(eid)
    return out


def record_hits(session: Session, hits: list[Hit], *, scan_run_id: int | None) -> int:
    """Insert matches that do not exist yet (entry x file is unique) and return how many are new.
    A hit for an existing match adds its evidence; a stronger one raises the score (and sets the
    tier of that stronger evidence). The reviewer's state is never changed here. A hit where the
    file is the entry itself (its own original upload, `is_itself`) is no match and is dropped.

    A lead (`is_lead`: names only) does not become a new match for a file that strongly matches
    (`is_strong`) another entry, stored or in this batch: the file is that entry's, and a name close
    to another entry's is a similar name, not a re-upload of it."""
    if not hits:
        return 0
    hits = _drop_withdrawn(session, _drop_self_hits(session, hits))
    if not hits:
        return 0
    pairs = list({(h.entry_id, h.hub_file_id) for h in hits})
    existing: dict[tuple[int, int], Match] = {}
    for i in range(0, len(pairs), 400):
        for m in session.scalars(select(Match).where(tuple_(Match.entry_id, Match.hub_file_id).in_(pairs[i : i + 400]))):
            existing[(m.entry_id, m.hub_file_id)] = m
    strong = _strongly_matched(session, hits)
    now = utcnow()
    fresh: dict[tuple[int, int], dict[str, Any]] = {}  # matches to create, each with all its hits merged
    for h in hits:
        key = (h.entry_id, h.hub_file_id)
        m = existing.get(key)
        if m is None and is_lead(h) and strong.get(h.hub_file_id, set()) - {h.entry_id}:
            continue  # a similar name beside a strong match to another entry
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
    new: list[tuple[int, int]] = []
    session.flush()
    for key, row in fresh.items():
        # conflict-tolerant: another sweep may record the same entry x file at the same moment
        if insert_missing(session, Match, [row], ("entry_id", "hub_file_id")):
            new.append(key)
            continue
        m = session.scalar(select(Match).where(Match.entry_id == key[0], Match.hub_file_id == key[1]))
        _strengthen(m, Hit(key[0], key[1], row["score"], row["evidence"], row["tier"]), now)
    session.flush()
    if new:  # the outbox: one match.new event per new match, in this same transaction
        ids = []
        for i in range(0, len(new), 400):
            ids += session.scalars(select(Match.id).where(tuple_(Match.entry_id, Match.hub_file_id).in_(new[i : i + 400])))
        match_events(session, MATCH_NEW, ids)
    return len(new)


def _strengthen(m: Match, h: Hit, now: Any) -> None:
    """A hit for an existing match: add its evidence; a stronger one raises the score (and tier)."""
    evidence = list(m.evidence or [])
    added = [e for e in h.evidence if e not in evidence]
    if added or h.score > m.score:
        m.evidence = evidence + added
        if h.score > m.score:
            m.score, m.tier = h.score, h.tier
        m.updated_at = now
