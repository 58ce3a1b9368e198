"""Tiers 2 and 3 and bank expansion: matching that survives renaming, metadata edits, conversion
and re-factorisation, and that works both ways in time.

- `match_file_signals`: header signals (and content AutoV3s) of hub files against bank entries.
- `match_file_fingerprint`: a hub file's weight fingerprint against the bank's fingerprints
  (nearest-neighbour candidates from the entry index, confirmed by per-layer comparison).
- `learn`: an entry learns signatures (from a confirmed mirror or an original file a team holds);
  files already swept that carry them are matched at once (retroactive matching).

Fingerprint indexes live in the database's sidecar folder (`<db>.d/fp-entry`, `fp-file`) and are
rebuilt from the database whenever they do not hold exactly the stored fingerprints."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.orm import Session

from mirrorwatch.match.fingerprint import Fingerprint, FingerprintIndex, IncompatibleFingerprints, compare
from mirrorwatch.match.header import FILE_TO_ENTRY, find_signal_matches, store_file_signals
from mirrorwatch.match.hits import Hit, record_hits
from mirrorwatch.match.scores import fingerprint_score
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import Entry, EntrySignal, FileSignal, utcnow
from mirrorwatch.store.models import Fingerprint as FingerprintRow

FP_CANDIDATES = 20
# entry signal forms learned from a confirmed mirror, and the file signal form they come from
LEARNABLE = {"training_run": "training_run", "ss_session_id": "ss_session_id", "autov3_full": "autov3_full",
             "autov3": "autov3", "sshs_legacy_hash": "sshs_legacy_hash"}


class FingerprintIndexes:
    """The two nearest-neighbour indexes (bank entries' fingerprints, hub files' fingerprints) of one
    database; owned by it (`indexes_for(db)`), shared by the threads that use it."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._indexes: dict[str, FingerprintIndex] = {}
        self._dirty: set[str] = set()

    def _path(self, kind: str) -> Path | None:
        return self.db.sidecar / f"fp-{kind}" if self.db.is_sqlite else None

    def get(self, session: Session, kind: str) -> FingerprintIndex:
        col = FingerprintRow.entry_id if kind == "entry" else FingerprintRow.hub_file_id
        with self._lock:
            idx = self._indexes.get(kind)
            count = session.scalar(select(func.count()).select_from(FingerprintRow).where(col.isnot(None))) or 0
            if idx is None:
                path = self._path(kind)
                if path is not None:
                    path.mkdir(parents=True, exist_ok=True)
                try:
                    idx = FingerprintIndex(path)
                except Exception:  # a damaged index folder is rebuilt from the database
                    idx = FingerprintIndex(None)
                    idx.path = path
                self._indexes[kind] = idx
            if len(idx) != count:
                idx = self._rebuild(session, kind, col)
            return idx

    def _rebuild(self, session: Session, kind: str, col) -> FingerprintIndex:
        idx = FingerprintIndex(None)
        idx.path = self._path(kind)
        for fid, data in session.execute(select(FingerprintRow.id, FingerprintRow.data).where(col.isnot(None))):
            try:
                idx.add(fid, Fingerprint.from_bytes(data).vector)
            except Exception:
                continue
        if idx.path is not None:
            idx.save()
        self._indexes[kind] = idx
        return idx

    def add(self, session: Session, kind: str, row_id: int, fp: Fingerprint) -> None:
        idx = self.get(session, kind)
        with self._lock:
            if row_id not in idx:
                idx.add(row_id, fp.vector)
                self._dirty.add(kind)

    def flush(self) -> None:
        """Write changed indexes to the sidecar folder (once per sweep, not per fingerprint). An index
        that was not flushed is rebuilt from the database the next time it is opened."""
        with self._lock:
            for kind in sorted(self._dirty):
                idx = self._indexes.get(kind)
                if idx is not None and idx.path is not None:
                    idx.save()
            self._dirty.clear()


def indexes_for(db: Database) -> FingerprintIndexes:
    """The database's fingerprint indexes (one object per Database, made on first use)."""
    return db.owned("fingerprint-indexes", lambda: FingerprintIndexes(db))


def _compare_hits(session: Session, fp: Fingerprint, candidates: list[int], *, file_side: bool,
                  own_id: int) -> list[Hit]:
    hits = []
    if not candidates:
        return hits
    rows = session.execute(
        select(FingerprintRow.id, FingerprintRow.entry_id, FingerprintRow.hub_file_id, FingerprintRow.data)
        .where(FingerprintRow.id.in_(candidates))
    ).all()
    for _rid, entry_id, hub_file_id, data in rows:
        try:
            other = Fingerprint.from_bytes(data)
            sim = compare(fp, other)
        except (IncompatibleFingerprints, ValueError):
            continue
        score = fingerprint_score(sim)
        if score is None:
            continue
        ev = [fingerprint_evidence(sim)]
        if file_side:  # fp is a hub file's; candidates are entries' fingerprints
            hits.append(Hit(entry_id, own_id, score, ev, tier=3))
        else:  # fp is an entry's; candidates are hub files' fingerprints
            hits.append(Hit(own_id, hub_file_id, score, ev, tier=3))
    return hits


def fingerprint_evidence(sim) -> dict:
    """The stored evidence of a fingerprint comparison: the relation (``same_weights``, ``derived``,
    ``similar_training`` — a lead, never a re-upload claim), what it means, why, and the signals."""
    relation = sim.relation()
    ev = {"tier": 3, "kind": "fingerprint", "relation": relation, "verdict": sim.verdict(),
          "meaning": sim.details.get("relation_meaning", ""), "similarity": round(sim.score, 5),
          "method": sim.method, "layers_compared": sim.layers_compared, "layers_total": sim.layers_total,
          "why": list(sim.details.get("relation_why", [])), "signals": dict(sim.details.get("lineage") or {})}
    if relation == "similar_training":
        ev["lead"] = True
    return ev


def match_file_fingerprint(db: Database, session: Session, hub_file_id: int, fp: Fingerprint, *,
                           scan_run_id: int | None, origin: str = "content") -> int:
    """Store a hub file's fingerprint and match it against the bank's fingerprints."""
    idx = indexes_for(db)
    row = session.scalar(select(FingerprintRow).where(FingerprintRow.hub_file_id == hub_file_id))
    if row is None:
        row = FingerprintRow(hub_file_id=hub_file_id, origin=origin, data=fp.to_bytes())
        session.add(row)
    else:
        row.data = fp.to_bytes()
    session.flush()
    idx.add(session, "file", row.id, fp)
    entry_index = idx.get(session, "entry")
    candidates = [k for k, _s in entry_index.search(fp.vector, k=FP_CANDIDATES)] if len(entry_index) else []
    hits = _compare_hits(session, fp, candidates, file_side=True, own_id=hub_file_id)
    return record_hits(session, hits, scan_run_id=scan_run_id)


def match_file_signals(session: Session, signals: dict[int, dict[str, list[str]]], *, scan_run_id: int | None,
                       name_search: Callable[[str], list[tuple[int, float]]] | None = None) -> int:
    """Store hub files' header/content signals and record the tier-2 matches they give."""
    for fid, sigs in signals.items():
        store_file_signals(session, fid, sigs)
    hits = find_signal_matches(session, signals, name_search=name_search)
    return record_hits(session, hits, scan_run_id=scan_run_id)


def learn(db: Database, session: Session, entry_id: int, signals: dict[str, list[str]],
          fingerprint: Fingerprint | None, *, origin: str) -> dict[str, int]:
    """Add signatures to an entry and match files already swept against them (retroactive)."""
    added = 0
    have = set(session.execute(select(EntrySignal.form, EntrySignal.value)
                               .where(EntrySignal.entry_id == entry_id)).all())
    new: dict[str, set[str]] = {}
    for form, values in signals.items():
        for v in values:
            if (form, v) not in have:
                session.add(EntrySignal(entry_id=entry_id, form=form, value=v, origin=origin))
                have.add((form, v))
                new.setdefault(form, set()).add(v)
                added += 1
    if added:  # the entry changed: its bank's exchange feed publishes it again (services/exchange.py)
        session.execute(update(Entry).where(Entry.id == entry_id).values(seq=None, updated_at=utcnow()))
    session.flush()
    matches = 0
    # files carrying the new signals: the file forms that compare with these entry forms
    reverse = {eform: [f for f, e in FILE_TO_ENTRY.items() if e == eform] for eform in new}
    keys = [(fform, v) for eform, values in new.items() for fform in reverse.get(eform, []) for v in values]
    if keys:
        by_file: dict[int, dict[str, list[str]]] = {}
        for fid, fform, v in session.execute(
            select(FileSignal.hub_file_id, FileSignal.form, FileSignal.value).where(
                tuple_(FileSignal.form, FileSignal.value).in_(keys)
            )
        ):
            by_file.setdefault(fid, {}).setdefault(fform, []).append(v)
        hits = find_signal_matches(session, by_file)
        for h in hits:  # an AutoV3 computed from the file's content is exact evidence
            if any(e.get("field") in ("autov3_full", "autov3") for e in h.evidence):
                h.tier = 1
        matches += record_hits(session, hits, scan_run_id=None)
    fp_added = 0
    if fingerprint is not None and session.scalar(
        select(FingerprintRow.id).where(FingerprintRow.entry_id == entry_id, FingerprintRow.origin == origin)
    ):
        fingerprint = None  # learned from this source before
    if fingerprint is not None:
        row = FingerprintRow(entry_id=entry_id, origin=origin, data=fingerprint.to_bytes())
        session.add(row)
        session.flush()
        idx = indexes_for(db)
        idx.add(session, "entry", row.id, fingerprint)
        fp_added = 1
        file_index = idx.get(session, "file")
        candidates = [k for k, _s in file_index.search(fingerprint.vector, k=FP_CANDIDATES * 5)] if len(file_index) else []
        matches += record_hits(session, _compare_hits(session, fingerprint, candidates, file_side=False,
                                                      own_id=entry_id), scan_run_id=None)
    return {"signals": added, "fingerprints": fp_added, "matches": matches}


def file_learnables(session: Session, hub_file_id: int) -> tuple[dict[str, list[str]], Fingerprint | None]:
    """What a confirmed mirror teaches its entry: training-run ids, AutoV3s, its training-save id
    (sshs_legacy_hash), its fingerprint."""
    sigs: dict[str, list[str]] = {}
    for form, value in session.execute(select(FileSignal.form, FileSignal.value)
                                       .where(FileSignal.hub_file_id == hub_file_id)):
        target = LEARNABLE.get(form)
        if target:
            sigs.setdefault(target, []).append(value)
    data = session.scalar(select(FingerprintRow.data).where(FingerprintRow.hub_file_id == hub_file_id))
    return sigs, (Fingerprint.from_bytes(data) if data else None)
