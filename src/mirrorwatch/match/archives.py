"""Matches inside archives: a member's CRC-32 (and size, when the bank knows one) is a lead; a lead
is confirmed by reading that member alone and comparing every hash form, like any file.

A ``.zip`` of fifty LoRAs has one SHA256 that matches nothing; its central directory lists every
member's CRC-32, one of Civitai's forms (formats/archives.py reads it with a few range reads). Only
members whose CRC-32 is banked are read. A confirmed member is recorded as a tier-1 match **on the
archive's own file row**, its evidence naming the member (``"member"`` on every evidence item, and
one ``{"kind": "archive_member", ...}`` item saying how the lead was found), so no schema change
was needed. Archives that cannot be read, or are not inspected (compressed tarballs, 7z, rar), and
members left out are recorded as the sweep's errors with the reason."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from mirrorwatch.errors import MirrorwatchError
from mirrorwatch.formats.archives import (
    ArchiveLimits,
    ReadRange,
    StreamRange,
    archive_kind,
    confirm_member,
    read_archive,
)
from mirrorwatch.match.exact import file_forms, score_agreement
from mirrorwatch.match.hits import Hit, record_hits
from mirrorwatch.store.models import EntrySignal, HubFile, ScanError

#: How a hub opens one of its stored files for range reads: (read_range, size, stream_range or None),
#: or None when the file cannot be read by range.
ArchiveOpener = Callable[[HubFile], "tuple[ReadRange, int, StreamRange | None] | None"]


def _record_problem(session: Session, f: HubFile, path: str, reason: str, scan_run_id: int | None) -> None:
    if scan_run_id is not None:
        session.add(ScanError(scan_run_id=scan_run_id, repo_id=f.repo.repo_id if f.repo else None, path=path[:2000],
                              reason=reason[:1000]))


def match_archives(session: Session, files: list[HubFile], opener: ArchiveOpener, *, scan_run_id: int | None,
                   limits: ArchiveLimits | None = None) -> int:
    """Find banked models inside the archives among ``files``; returns the new matches recorded."""
    hits: list[Hit] = []
    for f in files:
        if archive_kind(f.path) is None:
            continue
        try:
            opened = opener(f)
            if opened is None:
                continue
            read, size, stream = opened
            listing = read_archive(f.path, size, read, limits)
        except (MirrorwatchError, OSError) as exc:
            _record_problem(session, f, f.path, f"archive not read: {exc}", scan_run_id)
            continue
        if listing.not_inspected:
            _record_problem(session, f, f.path, f"archive not inspected: {listing.not_inspected}", scan_run_id)
        for name, reason in listing.skipped:
            _record_problem(session, f, f"{f.path}!{name}", f"archive member skipped: {reason}", scan_run_id)
        crcs = sorted({m.crc32 for m in listing.members if m.crc32})
        leads: dict[str, set[int]] = defaultdict(set)
        for i in range(0, len(crcs), 400):
            for eid, value in session.execute(select(EntrySignal.entry_id, EntrySignal.value).where(
                    EntrySignal.form == "crc32", EntrySignal.value.in_(crcs[i : i + 400]))):
                leads[value].add(eid)
        for m in listing.members:
            if not m.crc32 or m.crc32 not in leads:
                continue
            try:
                hashes = confirm_member(read, size, m, archive_name=f.path, limits=limits, stream_range=stream)
            except (MirrorwatchError, OSError) as exc:
                _record_problem(session, f, f"{f.path}!{m.name}", f"archive member not confirmed: {exc}", scan_run_id)
                continue
            hits += _member_hits(session, f, m.name, file_forms(hashes.sha256, hashes.forms()))
    return record_hits(session, hits, scan_run_id=scan_run_id)


def _member_hits(session: Session, f: HubFile, member: str, forms: dict[str, str]) -> list[Hit]:
    agreed: dict[int, dict[str, str]] = defaultdict(dict)
    for eid, form, value in session.execute(select(EntrySignal.entry_id, EntrySignal.form, EntrySignal.value).where(
            tuple_(EntrySignal.form, EntrySignal.value).in_(list(forms.items())))):
        agreed[eid][form] = value
    entry_sha: dict[int, set[str]] = defaultdict(set)
    if agreed:
        for eid, value in session.execute(select(EntrySignal.entry_id, EntrySignal.value).where(
                EntrySignal.entry_id.in_(list(agreed)), EntrySignal.form == "sha256")):
            entry_sha[eid].add(value)
    hits = []
    for eid, got in agreed.items():
        score = score_agreement(got, sha256_disagrees=bool(entry_sha[eid] and forms.get("sha256") not in entry_sha[eid]))
        if score is None:
            continue
        evidence = [{"tier": 1, "kind": "archive_member", "member": member, "archive": f.path,
                     "lead": "crc32 (no banked size)", "confirmed": "member read alone, every hash form computed"}]
        evidence += [{"tier": 1, "kind": "hash", "form": k, "value": v, "member": member} for k, v in sorted(got.items())]
        hits.append(Hit(eid, f.id, score, evidence, tier=1))
    return hits
