"""Matches inside archives: a member's CRC-32 (and size, when the bank knows one) is a lead; a lead
is confirmed by reading that member alone and comparing every hash form, like any file.

A ``.zip`` of fifty LoRAs has one SHA256 that matches nothing; its central directory lists every
member's CRC-32, one of Civitai's forms (formats/archives.py reads it with a few range reads), and its
size. Only leads are read: a member whose CRC-32 is banked, and whose size is one of the banked file
sizes of that entry when the bank knows them (bank/sizes.py); a CRC-32 banked without a size is a
weaker lead (``"crc32 (no banked size)"``), read after the sized ones. A confirmed member is
recorded as a tier-1 match **on the archive's own file row**, its evidence naming the member
(``"member"`` on every evidence item, and one ``{"kind": "archive_member", ...}`` item saying how the
lead was found and the member's size), so no schema change was needed. Archives that cannot be read, or are not inspected (compressed tarballs, 7z, rar), and
members left out are recorded as the sweep's errors with the reason."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from mirrorwatch.bank.sizes import SIZE_FORM, size_agrees, size_bounds
from mirrorwatch.errors import MirrorwatchError
from mirrorwatch.formats.archives import (
    ArchiveLimits,
    ArchiveMember,
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
        for m, _lead in _leads(session, listing.members):
            try:
                hashes = confirm_member(read, size, m, archive_name=f.path, limits=limits, stream_range=stream)
            except (MirrorwatchError, OSError) as exc:
                _record_problem(session, f, f"{f.path}!{m.name}", f"archive member not confirmed: {exc}", scan_run_id)
                continue
            hits += _member_hits(session, f, m, file_forms(hashes.sha256, hashes.forms()))
    return record_hits(session, hits, scan_run_id=scan_run_id)


#: How a member became a lead (the archive_member evidence's "lead").
LEAD_SIZED = "crc32 + size"
LEAD_UNSIZED = "crc32 (no banked size)"


def _entry_sizes(session: Session, entry_ids: set[int]) -> dict[int, set[str]]:
    """Banked file sizes (bank/sizes.py values) of the given entries."""
    sizes: dict[int, set[str]] = defaultdict(set)
    ids = sorted(entry_ids)
    for i in range(0, len(ids), 400):
        for eid, value in session.execute(select(EntrySignal.entry_id, EntrySignal.value).where(
                EntrySignal.form == SIZE_FORM, EntrySignal.entry_id.in_(ids[i : i + 400]))):
            if size_bounds(value) is not None:  # a value not written by bank/sizes.py knows no size
                sizes[eid].add(value)
    return sizes


def _leads(session: Session, members: list[ArchiveMember]) -> list[tuple[ArchiveMember, str]]:
    """Members worth reading, sized leads first: a member whose CRC-32 is banked for an entry that
    knows its file sizes is a lead only when its size is one of them (a CRC-32 with another banked size
    is no lead at all: CRC-32 is 32 bits, and a bank of millions of files meets chance collisions); a
    CRC-32 banked for an entry without a size is a weaker lead, read after the sized ones."""
    crcs = sorted({m.crc32 for m in members if m.crc32})
    by_crc: dict[str, set[int]] = defaultdict(set)
    for i in range(0, len(crcs), 400):
        for eid, value in session.execute(select(EntrySignal.entry_id, EntrySignal.value).where(
                EntrySignal.form == "crc32", EntrySignal.value.in_(crcs[i : i + 400]))):
            by_crc[value].add(eid)
    sizes = _entry_sizes(session, set().union(*by_crc.values())) if by_crc else {}
    sized: list[tuple[ArchiveMember, str]] = []
    unsized: list[tuple[ArchiveMember, str]] = []
    for m in members:
        entries = by_crc.get(m.crc32) if m.crc32 else None
        if not entries:
            continue
        if any(eid in sizes and size_agrees(sizes[eid], m.size) for eid in entries):
            sized.append((m, LEAD_SIZED))
        elif any(eid not in sizes for eid in entries):
            unsized.append((m, LEAD_UNSIZED))
    return sized + unsized


def _member_hits(session: Session, f: HubFile, m: ArchiveMember, forms: dict[str, str]) -> list[Hit]:
    member = m.name
    agreed: dict[int, dict[str, str]] = defaultdict(dict)
    for eid, form, value in session.execute(select(EntrySignal.entry_id, EntrySignal.form, EntrySignal.value).where(
            tuple_(EntrySignal.form, EntrySignal.value).in_(list(forms.items())))):
        agreed[eid][form] = value
    entry_sha: dict[int, set[str]] = defaultdict(set)
    if agreed:
        for eid, value in session.execute(select(EntrySignal.entry_id, EntrySignal.value).where(
                EntrySignal.entry_id.in_(list(agreed)), EntrySignal.form == "sha256")):
            entry_sha[eid].add(value)
    sizes = _entry_sizes(session, set(agreed))
    hits = []
    for eid, got in agreed.items():
        score = score_agreement(got, sha256_disagrees=bool(entry_sha[eid] and forms.get("sha256") not in entry_sha[eid]))
        if score is None:
            continue
        evidence = [{"tier": 1, "kind": "archive_member", "member": member, "archive": f.path,
                     "lead": _lead_label(sizes.get(eid), m.size), "size": m.size, "confirmed": "member read alone, every hash form computed"}]
        evidence += [{"tier": 1, "kind": "hash", "form": k, "value": v, "member": member} for k, v in sorted(got.items())]
        hits.append(Hit(eid, f.id, score, evidence, tier=1))
    return hits


def _lead_label(banked: set[str] | None, size: int) -> str:
    if not banked:
        return LEAD_UNSIZED
    if size_agrees(banked, size):
        return LEAD_SIZED
    return "hash forms (banked size differs)"  # confirmed by other forms than the CRC-32 lead
