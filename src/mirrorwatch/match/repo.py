"""The match layer's one entry per repo: every tier for a repo's stored files, then learning.

Called once per repo by the sweep, in the repo's transaction, after its files are stored:
tier 1 (exact hash forms), tier 3 (weight fingerprints of files read this time), tier 2 (header
signals and content AutoV3s), then bank expansion — each entry an exact match confirms learns
the file's robust signatures (from the exact hits in hand: the matches just written are not
queried again)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from mirrorwatch.match.archives import ArchiveOpener, match_archives
from mirrorwatch.match.evidence import FileEvidence
from mirrorwatch.match.exact import find_exact
from mirrorwatch.match.hits import Hit, record_hits
from mirrorwatch.match.robust import file_learnables, learn, match_file_fingerprint, match_file_signals
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import HubFile

NameSearch = Callable[[str], list[tuple[int, float]]]


@dataclass
class RepoMatches:
    exact: int = 0  # new tier-1 matches
    header: int = 0  # new tier-2 matches
    fingerprint: int = 0  # new tier-3 matches
    learned: int = 0  # signatures entries learned
    learned_matches: int = 0  # new matches those signatures gave (retroactive)

    @property
    def total(self) -> int:
        return self.exact + self.header + self.fingerprint + self.learned_matches


def confirmed_by_exact(hits: list[Hit]) -> list[tuple[int, int]]:
    """(entry, file) pairs an exact hit confirms beyond doubt (a full-length hash agrees)."""
    return sorted({(h.entry_id, h.hub_file_id) for h in hits if h.tier == 1 and h.score >= 1.0})


def match_repo(db: Database, session: Session, files: list[HubFile], evidence: dict[int, FileEvidence], *,
               scan_run_id: int | None, robust: bool, name_search: NameSearch | None = None,
               archive_opener: ArchiveOpener | None = None) -> RepoMatches:
    """Match a repo's stored files (and the evidence read for some of them, by file id).

    With ``archive_opener`` (a hub that reads its files by range), archives' members are recorded as
    rows of their own and matched too (match/archives.py: CRC-32 leads confirmed by reading the member)."""
    out = RepoMatches()
    hits = find_exact(session, [f for f in files if f.sha256 or f.hashes])
    out.exact = record_hits(session, hits, scan_run_id=scan_run_id)
    if archive_opener is not None:
        # members are rows of their own: their hits count for learning, their evidence (read when a
        # lead was confirmed) goes through the robust tiers like a plain file's
        found = match_archives(session, files, archive_opener, scan_run_id=scan_run_id)
        out.exact += found.matches
        hits += found.hits
        evidence = {**evidence, **found.evidence}
    if not robust:
        return out
    signals: dict[int, dict[str, list[str]]] = {}
    for fid, ev in evidence.items():
        if ev.fingerprint is not None:
            out.fingerprint += match_file_fingerprint(db, session, fid, ev.fingerprint, scan_run_id=scan_run_id)
        sigs = ev.signals()
        if sigs or ev.header is not None:
            signals[fid] = sigs
    if signals:
        out.header = match_file_signals(session, signals, scan_run_id=scan_run_id, name_search=name_search)
    for entry_id, file_id in confirmed_by_exact(hits):
        sigs, fp = file_learnables(session, file_id)
        if sigs or fp is not None:
            learned = learn(db, session, entry_id, sigs, fp, origin=f"mirror:{file_id}")
            out.learned += learned["signals"] + learned["fingerprints"]
            out.learned_matches += learned["matches"]
    return out
