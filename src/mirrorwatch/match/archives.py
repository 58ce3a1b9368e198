"""Matches inside archives: every inspected member is a file row of its own; a member's CRC-32 (and
size, when the bank knows one) is a lead; a lead is confirmed by reading that member alone.

A ``.zip`` of fifty LoRAs has one SHA256 that matches nothing; its central directory (at its end)
lists every member's CRC-32, one of Civitai's forms (formats/archives.py reads it with a few range
reads), and its size.

Member rows. Each member the index lists (at most ``ArchiveLimits.max_members``, the reader's cap)
is a ``hub_file`` row in the archive's repo: ``archive_file_id`` its archive's row, ``member`` its
path inside the archive, ``path`` ``"<archive path>!<member>"`` (the ``!`` the scan errors already
use; unique in the repo like any path, so the row is upserted like a plain file), its size, its
CRC-32 from the index (in ``hashes`` and as a file signal: the reverse look-up finds it), and in
``archive_info`` what the index says of it (compressed size, method, offsets) so that a later sweep
can read it without reading the index again. Why rows and not evidence: a member is something found
on a hub like any file -- ``where`` finds it, a match points at it, it is gone when its archive is.
Once a member is read, its row carries every hash form (SHA256 column, ``hashes``, file signals), its
header evidence (``header_signals``, file signals) and its fingerprint, and the matching tiers treat
it like any file.

Leads. Only leads are read: a member whose CRC-32 is banked, and whose size is one of the banked
file sizes of that entry when the bank knows them (bank/sizes.py); a CRC-32 banked without a size is
a weaker lead (``"crc32 (no banked size)"``), read after the sized ones. A confirmed member is
matched like any file on its forms (a full SHA256 agreement is 1.0); a member known to the bank only
by its CRC-32 becomes a weaker tier-1 match (match/scores.py ``CRC32_SIZE_SCORE``,
``CRC32_ONLY_SCORE``). The evidence keeps naming the member and the archive
(``{"kind": "archive_member", ...}``: how the lead was found, how it was confirmed).

Re-sweeps. The archive row's ``archive_info["key"]`` is the content its index was read at (its
SHA256, else its size at its revision): an unchanged archive is not read again -- its members come
from their rows, and only members that became leads since (a new bank entry) are read. A changed
archive is read again: members no longer listed are gone, members whose CRC-32 or size changed are
changed (their content forgotten), and their matches follow (``gone``). An archive that cannot be
read again, or that is gone, takes its members with it (:func:`follow_archive`)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select, tuple_
from sqlalchemy.orm import Session

from mirrorwatch.bank.sizes import SIZE_FORM, size_agrees, size_bounds
from mirrorwatch.errors import MirrorwatchError
from mirrorwatch.formats.archives import (
    ArchiveLimits,
    ArchiveListing,
    ArchiveMember,
    ReadRange,
    StreamRange,
    archive_kind,
    confirm_member,
    read_archive,
)
from mirrorwatch.hashing.engine import FileHashes
from mirrorwatch.hashing.forms import FORMS
from mirrorwatch.hubs.base import FILE_CHANGED, FILE_GONE, FILE_PRESENT
from mirrorwatch.match.evidence import FileEvidence, HeaderEvidence, add_fingerprint
from mirrorwatch.match.exact import file_forms, score_agreement
from mirrorwatch.match.header import store_file_signals
from mirrorwatch.match.hits import Hit, record_hits
from mirrorwatch.match.scores import CRC32_ONLY_SCORE, CRC32_SIZE_SCORE, EXACT_STRONG_SCORE
from mirrorwatch.match.states import MIRROR_REMOVED, SYSTEM_TRANSITIONS, MatchState
from mirrorwatch.store.fit import fit_row
from mirrorwatch.store.models import (
    EntrySignal,
    FileSignal,
    Fingerprint,
    HubFile,
    Match,
    ScanError,
    StatusEvent,
    utcnow,
)
from mirrorwatch.store.outbox import move_matches

#: How a hub opens one of its stored files for range reads: (read_range, size, stream_range or None),
#: or None when the file cannot be read by range.
ArchiveOpener = Callable[[HubFile], "tuple[ReadRange, int, StreamRange | None] | None"]

#: How a member became a lead (the archive_member evidence's "lead").
LEAD_SIZED = "crc32 + size"
LEAD_UNSIZED = "crc32 (no banked size)"
#: How a match on a member was confirmed (the archive_member evidence's "confirmed").
CONFIRMED_FULL = "member read alone, every hash form computed"
CONFIRMED_CRC_SIZE = "member read alone: its CRC-32 and size agree with the bank's (no full hash banked)"
CONFIRMED_CRC_ONLY = "member read alone: its CRC-32 agrees with the bank's (no full hash, no size banked)"
#: Members larger than this are hashed (the read confirms them) but not copied for their header
#: and fingerprint (the content tier's own cap).
MEMBER_COPY_MAX = 2 * 1024**3


def member_path(archive_path: str, name: str) -> str:
    """A member row's path: ``"<archive path>!<member>"``."""
    return f"{archive_path}!{name}"


def archive_key(f: HubFile) -> str | None:
    """What identifies an archive's bytes: its SHA256, else its size at its revision (or mtime)."""
    if f.sha256:
        return f"sha256:{f.sha256}"
    stamp = f.revision or (f.hashes or {}).get("mtime")
    if f.size is not None and stamp:
        return f"size:{f.size}@{stamp}"
    return None


@dataclass
class ArchiveResults:
    """What matching a repo's archives gave: new matches, the hits (for learning), the evidence read
    of confirmed members (by member row id, for the robust tiers) and the members present."""

    matches: int = 0
    hits: list[Hit] = field(default_factory=list)
    evidence: dict[int, FileEvidence] = field(default_factory=dict)
    members: list[HubFile] = field(default_factory=list)
    read: int = 0  # archives whose index was read this time


def _record_problem(session: Session, f: HubFile, path: str, reason: str, scan_run_id: int | None) -> None:
    if scan_run_id is not None:
        session.add(ScanError(scan_run_id=scan_run_id, repo_id=f.repo.repo_id if f.repo else None, path=path[:2000],
                              reason=reason[:1000]))


def _event(session: Session, row: HubFile, status: str, detail: str, now: Any) -> None:
    session.add(StatusEvent(**fit_row(StatusEvent, {"repo_pk": row.repo_pk, "hub_file_id": row.id, "at": now,
                                                    "status": status, "detail": detail})))


def _matches_gone(session: Session, file_ids: list[int], detail: str) -> None:
    """The members' open matches become `gone`, with their match.state and mirror.gone events."""
    sources, target = SYSTEM_TRANSITIONS[MIRROR_REMOVED]
    move_matches(session, file_ids, sources, target, reason=MIRROR_REMOVED, detail=detail, gone=True)


def member_rows(session: Session, archive_id: int) -> list[HubFile]:
    return list(session.scalars(select(HubFile).where(HubFile.archive_file_id == archive_id)))


def follow_archive(session: Session, archive: HubFile, status: str, detail: str, now: Any = None) -> list[int]:
    """An archive gone or changed (and not read again) takes its members with it: each member not
    already so gets ``status`` with an event, and its open matches become ``gone``. Returns their ids."""
    now = now or utcnow()
    moved = []
    for row in member_rows(session, archive.id):
        if row.status == status or (row.status == FILE_GONE and status == FILE_CHANGED):
            continue
        _event(session, row, status, detail, now)
        row.status = status
        moved.append(row.id)
    session.flush()
    _matches_gone(session, moved, detail)
    return moved


def match_archives(session: Session, files: list[HubFile], opener: ArchiveOpener, *, scan_run_id: int | None,
                   limits: ArchiveLimits | None = None) -> ArchiveResults:
    """Record the members of the archives among ``files`` as rows, confirm their leads by reading
    them, and record the matches on the member rows."""
    out = ArchiveResults()
    now = utcnow()
    for f in files:
        if f.archive_file_id is not None or archive_kind(f.path) is None:
            continue
        key = archive_key(f)
        info = dict(f.archive_info or {})
        rows = {r.member: r for r in member_rows(session, f.id) if r.member is not None}
        opened: tuple[ReadRange, int, StreamRange | None] | None = None
        if key is None or info.get("key") != key:
            try:
                opened = opener(f)
                listing = None if opened is None else read_archive(f.path, opened[1], opened[0], limits)
            except (MirrorwatchError, OSError) as exc:
                _record_problem(session, f, f.path, f"archive not read: {exc}", scan_run_id)
                listing = None
            if listing is None:
                if rows:  # its members were read at other content: they follow it
                    follow_archive(session, f, FILE_CHANGED, "archive changed and not read again", now)
                    f.archive_info = {**info, "key": None}
                continue
            out.read += 1
            if listing.not_inspected:
                _record_problem(session, f, f.path, f"archive not inspected: {listing.not_inspected}", scan_run_id)
            for name, reason in listing.skipped:
                _record_problem(session, f, member_path(f.path, name), f"archive member skipped: {reason}", scan_run_id)
            rows = _store_listing(session, f, listing, rows, key, now, scan_run_id)
        present = [r for r in rows.values() if r.status == FILE_PRESENT]
        out.members += present
        for row in present:  # members read before: matched on their stored forms (no request)
            if row.sha256:
                out.hits += _member_hits(session, f, row, file_forms(row.sha256, row.hashes))
        for row, m, _lead in _leads(session, [(r, _listed(r)) for r in present if not r.sha256]):
            try:
                if opened is None:
                    opened = opener(f)
                if opened is None:
                    break
                hashes, ev = _read_member(opened, m, f.path, limits)
            except (MirrorwatchError, OSError) as exc:
                _record_problem(session, f, row.path, f"archive member not confirmed: {exc}", scan_run_id)
                continue
            _store_member_content(session, row, hashes, ev)
            out.evidence[row.id] = ev
            out.hits += _member_hits(session, f, row, file_forms(hashes.sha256, hashes.forms()))
    out.matches = record_hits(session, out.hits, scan_run_id=scan_run_id)
    return out


# --- member rows -----------------------------------------------------------------------------------

def _listed(row: HubFile) -> ArchiveMember:
    """A member row as the archive's index listed it (to read it without the index)."""
    info = row.archive_info or {}
    return ArchiveMember(name=row.member or "", size=int(row.size or 0),
                         compressed_size=int(info.get("compressed_size", row.size or 0)),
                         crc32=(row.hashes or {}).get("crc32") if info.get("crc32_listed", True) else None,
                         method=str(info.get("method", "stored")), header_offset=int(info.get("header_offset", 0)),
                         data_offset=info.get("data_offset"))


def _forget_content(session: Session, row: HubFile) -> None:
    """What was read of a member whose bytes changed: its hash forms, header evidence, fingerprint."""
    row.sha256 = None
    row.hashes = {}
    row.header_signals = None
    session.execute(delete(FileSignal).where(FileSignal.hub_file_id == row.id))
    session.execute(delete(Fingerprint).where(Fingerprint.hub_file_id == row.id))


def _store_listing(session: Session, archive: HubFile, listing: ArchiveListing, rows: dict[str, HubFile], key: str | None,
                   now: Any, scan_run_id: int | None) -> dict[str, HubFile]:
    """Upsert a member row per listed member; members no longer listed are gone. Returns the rows by member."""
    archive.archive_info = {"key": key, "kind": listing.kind, "members": len(listing.members),
                            "skipped": len(listing.skipped), "not_inspected": listing.not_inspected,
                            "requests": listing.requests, "bytes_read": listing.bytes_read}
    listed = {m.name: m for m in listing.members}
    missing = [n for n in listed if n not in rows]
    if missing:
        # new rows carry what the index says from the start (one batched, conflict-tolerant insert:
        # an archive may list 10,000 members, and a concurrent sweep may add the same ones)
        _insert_members(session, [
            {"repo_pk": archive.repo_pk, "path": member_path(archive.path, n), "archive_file_id": archive.id,
             "member": n, "first_seen": now, "last_seen": now, "size": listed[n].size, "revision": archive.revision,
             "hashes": {"crc32": listed[n].crc32} if listed[n].crc32 else {}, "archive_info": _index_info(listed[n]),
             "status": FILE_PRESENT} for n in missing])
        rows = {r.member: r for r in member_rows(session, archive.id) if r.member is not None}
        taken = [n for n in missing if n not in rows]
        for row in session.scalars(select(HubFile).where(HubFile.repo_pk == archive.repo_pk, HubFile.path.in_(
                [member_path(archive.path, n) for n in taken[:50]]))) if taken else []:
            _record_problem(session, archive, row.path, "archive member not recorded: a file of the repo has "
                            "the same path", scan_run_id)
    signals: dict[int, str] = {}
    for name, row in rows.items():
        m = listed.get(name)
        if m is None:
            if row.status != FILE_GONE:
                _event(session, row, FILE_GONE, "member no longer in the archive", now)
                row.status = FILE_GONE
                _matches_gone(session, [row.id], "member no longer in the archive")
            continue
        old_crc = (row.hashes or {}).get("crc32")
        if row.size is not None and (row.size != m.size or (old_crc and m.crc32 and old_crc != m.crc32)):
            _event(session, row, FILE_CHANGED, "member changed in the archive", now)
            _matches_gone(session, [row.id], "member changed in the archive")
            _forget_content(session, row)
        elif row.status != FILE_PRESENT:
            _event(session, row, FILE_PRESENT, "member is back", now)
        row.size = m.size
        row.revision = archive.revision
        if m.crc32:
            row.hashes = {**(row.hashes or {}), "crc32": m.crc32}
            signals[row.id] = m.crc32
        row.archive_info = _index_info(m)
        row.status = FILE_PRESENT
        row.last_seen = now
    session.flush()
    _add_crc_signals(session, signals)
    return rows


def _index_info(m: ArchiveMember) -> dict[str, Any]:
    """What a member row keeps of the index's record, to read the member later without the index."""
    return {"compressed_size": m.compressed_size, "method": m.method, "header_offset": m.header_offset,
            "data_offset": m.data_offset, "crc32_listed": m.crc32 is not None}


def _insert_members(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert member rows unless their (repo, path) is taken: one executemany per 1,000 rows."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(HubFile).on_conflict_do_nothing(index_elements=["repo_pk", "path"])
    for i in range(0, len(rows), 1000):
        session.execute(stmt, rows[i : i + 1000])


def _add_crc_signals(session: Session, crcs: dict[int, str]) -> None:
    """The listed CRC-32 of each member row as a file signal (batched: an archive may list 10,000)."""
    ids = sorted(crcs)
    have: set[tuple[int, str]] = set()
    for i in range(0, len(ids), 500):
        have.update((fid, v) for fid, v in session.execute(select(FileSignal.hub_file_id, FileSignal.value).where(
            FileSignal.hub_file_id.in_(ids[i : i + 500]), FileSignal.form == "crc32")))
    new = [{"hub_file_id": fid, "form": "crc32", "value": v} for fid, v in crcs.items() if (fid, v) not in have]
    for i in range(0, len(new), 1000):
        session.execute(insert(FileSignal), new[i : i + 1000])


def _read_member(opened: tuple[ReadRange, int, StreamRange | None], m: ArchiveMember, archive_name: str,
                 limits: ArchiveLimits | None) -> tuple[FileHashes, FileEvidence]:
    """Read one member alone: every hash form; for a safetensors member (up to MEMBER_COPY_MAX) its
    header evidence and fingerprint too, from a private temporary copy deleted at once."""
    read, size, stream = opened
    copy = m.name.lower().endswith(".safetensors") and m.size <= MEMBER_COPY_MAX
    if not copy:
        hashes = confirm_member(read, size, m, archive_name=archive_name, limits=limits, stream_range=stream)
        return hashes, FileEvidence(hashes=hashes.forms())
    folder = Path(tempfile.mkdtemp(prefix="mw-member-"))
    try:
        os.chmod(folder, 0o700)
        path = folder / "member"
        with open(path, "wb") as sink:
            hashes = confirm_member(read, size, m, archive_name=archive_name, limits=limits, stream_range=stream,
                                    sink=sink)
        return hashes, _member_evidence(path, hashes)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _member_evidence(path: Path, hashes: FileHashes) -> FileEvidence:
    """The header evidence and fingerprint of a member's bytes (as `build_evidence` reads a file)."""
    from mirrorwatch.formats.kinds import guess_kind
    from mirrorwatch.formats.safetensors import read_header
    from mirrorwatch.match.header import header_signals

    ev = FileEvidence(hashes=hashes.forms())
    try:
        h = read_header(path)
        kind = guess_kind(h)
        ev.header = HeaderEvidence(header_signals(h), f"{kind.family}/{kind.base}", 8 + h.header_len, len(h.tensors))
    except Exception as exc:  # a member named .safetensors that is not one
        ev.errors["header"] = str(exc)[:300]
        return ev
    add_fingerprint(ev, path)
    return ev


def _store_member_content(session: Session, row: HubFile, hashes: FileHashes, ev: FileEvidence) -> None:
    """A confirmed member's row: every hash form, header evidence and fingerprint (file signals too)."""
    forms = hashes.forms()
    row.sha256 = forms.get("sha256")
    row.hashes = {**(row.hashes or {}), **{k: v for k, v in forms.items() if k != "sha256"}}
    row.header_signals = ev.header_record()
    sigs = {n: [v] for n, f in FORMS.items() if n != "sha256" and f.stored_when_derived
            and isinstance(v := forms.get(n), str) and len(v) == f.hex_length}
    for k, values in ev.signals().items():
        sigs.setdefault(k, [])
        sigs[k] += [v for v in values if v not in sigs[k]]
    session.flush()
    store_file_signals(session, row.id, sigs)
    if ev.fingerprint is not None:
        fp = session.scalar(select(Fingerprint).where(Fingerprint.hub_file_id == row.id))
        if fp is None:
            session.add(Fingerprint(hub_file_id=row.id, origin="archive member", data=ev.fingerprint.to_bytes()))
        else:
            fp.data = ev.fingerprint.to_bytes()
    session.flush()


def match_members_for_values(session: Session, values: dict[str, set[str]]) -> int:
    """Retroactive matching for members already read: entries newly banked by a CRC-32 (and size)
    that read members carry. (A member never read waits for the next sweep of its repo to be read.)"""
    crcs = sorted(values.get("crc32", set()))
    rows: dict[int, HubFile] = {}
    for i in range(0, len(crcs), 400):
        for row in session.scalars(select(HubFile).join(FileSignal, FileSignal.hub_file_id == HubFile.id).where(
                FileSignal.form == "crc32", FileSignal.value.in_(crcs[i : i + 400]), HubFile.archive_file_id.isnot(None),
                HubFile.sha256.isnot(None), HubFile.status == FILE_PRESENT)):
            rows[row.id] = row
    hits: list[Hit] = []
    for row in rows.values():
        archive = session.get(HubFile, row.archive_file_id)
        if archive is not None:
            hits += _member_hits(session, archive, row, file_forms(row.sha256, row.hashes))
    return record_hits(session, hits, scan_run_id=None)


# --- leads and hits --------------------------------------------------------------------------------

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


def _leads(session: Session, members: list[tuple[HubFile, ArchiveMember]]) -> list[tuple[HubFile, ArchiveMember, str]]:
    """Members worth reading, sized leads first: a member whose CRC-32 is banked for an entry that
    knows its file sizes is a lead only when its size is one of them (a CRC-32 with another banked size
    is no lead at all: CRC-32 is 32 bits, and a bank of millions of files meets chance collisions); a
    CRC-32 banked for an entry without a size is a weaker lead, read after the sized ones."""
    crcs = sorted({m.crc32 for _r, m in members if m.crc32})
    by_crc: dict[str, set[int]] = defaultdict(set)
    for i in range(0, len(crcs), 400):
        for eid, value in session.execute(select(EntrySignal.entry_id, EntrySignal.value).where(
                EntrySignal.form == "crc32", EntrySignal.value.in_(crcs[i : i + 400]))):
            by_crc[value].add(eid)
    sizes = _entry_sizes(session, set().union(*by_crc.values())) if by_crc else {}
    sized: list[tuple[HubFile, ArchiveMember, str]] = []
    unsized: list[tuple[HubFile, ArchiveMember, str]] = []
    for row, m in members:
        entries = by_crc.get(m.crc32) if m.crc32 else None
        if not entries:
            continue
        if any(eid in sizes and size_agrees(sizes[eid], m.size) for eid in entries):
            sized.append((row, m, LEAD_SIZED))
        elif any(eid not in sizes for eid in entries):
            unsized.append((row, m, LEAD_UNSIZED))
    return sized + unsized


def _member_hits(session: Session, archive: HubFile, row: HubFile, forms: dict[str, str]) -> list[Hit]:
    """Hits on a read member: the usual exact agreement of its forms with an entry's; or, for an
    entry the bank knows only by CRC-32 (and size), the weaker CRC-32 match (match/scores.py)."""
    member, size = row.member, int(row.size or 0)
    agreed: dict[int, dict[str, str]] = defaultdict(dict)
    for eid, form, value in session.execute(select(EntrySignal.entry_id, EntrySignal.form, EntrySignal.value).where(
            tuple_(EntrySignal.form, EntrySignal.value).in_(list(forms.items())))):
        agreed[eid][form] = value
    if not agreed:
        return []
    banked: dict[int, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for eid, form, value in session.execute(select(EntrySignal.entry_id, EntrySignal.form, EntrySignal.value).where(
            EntrySignal.entry_id.in_(list(agreed)), EntrySignal.form.in_(list(FORMS)))):
        banked[eid][form].add(value)
    sizes = _entry_sizes(session, set(agreed))
    full: list[Hit] = []
    weak: list[Hit] = []
    for eid, got in agreed.items():
        entry_sha = banked[eid].get("sha256", set())
        score = score_agreement(got, sha256_disagrees=bool(entry_sha and forms.get("sha256") not in entry_sha))
        base = {"tier": 1, "kind": "archive_member", "member": member, "archive": archive.path,
                "lead": _lead_label(sizes.get(eid), size), "size": size}
        hashes = [{"tier": 1, "kind": "hash", "form": k, "value": v, "member": member} for k, v in sorted(got.items())]
        if score is not None:
            full.append(Hit(eid, row.id, score, [{**base, "confirmed": CONFIRMED_FULL}, *hashes], tier=1))
            continue
        if "crc32" not in got or any(forms.get(form) not in values for form, values in banked[eid].items()
                                     if form in forms and form not in got):
            continue  # no CRC-32 agreement, or another banked form says it is another file
        if sizes.get(eid):
            if not size_agrees(sizes[eid], size):
                continue
            weak.append(Hit(eid, row.id, CRC32_SIZE_SCORE, [{**base, "confirmed": CONFIRMED_CRC_SIZE}, *hashes,
                                                            {"tier": 1, "kind": "size", "value": size,
                                                             "member": member}], tier=1))
        else:
            weak.append(Hit(eid, row.id, CRC32_ONLY_SCORE, [{**base, "confirmed": CONFIRMED_CRC_ONLY}, *hashes], tier=1))
    if weak and _exactly_someone_elses(session, row.id, full, {h.entry_id for h in weak}):
        weak = []
    return full + weak


def _exactly_someone_elses(session: Session, file_id: int, full: list[Hit], weak_entries: set[int]) -> bool:
    """Whether the member strongly matches (a full hash form, kept or found now) an entry other than
    those it would CRC-32-match: then it is that entry's file, and the usual exact match wins."""
    if any(h.score >= EXACT_STRONG_SCORE and h.entry_id not in weak_entries for h in full):
        return True
    return session.scalar(select(Match.id).where(
        Match.hub_file_id == file_id, Match.tier == 1, Match.score >= EXACT_STRONG_SCORE,
        Match.state != MatchState.DISMISSED.value, Match.entry_id.notin_(weak_entries)).limit(1)) is not None


def _lead_label(banked: set[str] | None, size: int) -> str:
    if not banked:
        return LEAD_UNSIZED
    if size_agrees(banked, size):
        return LEAD_SIZED
    return "hash forms (banked size differs)"  # confirmed by other forms than the CRC-32 lead
