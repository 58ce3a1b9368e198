"""Writing what a sweep learned about one repo: the repo, its files, status changes, matches.

Everything about one repo is written in one transaction, together with the sweep's counts, so a
sweep killed at any moment has either recorded a repo completely or not at all.

Two sweeps (or a sweep and a recheck) may write the same repo at once: rows are created with
conflict-tolerant inserts (`store.upsert.insert_missing`), never select-then-insert. Values from a
hub answer are fitted to their columns (`store.fit`: NULs stripped, sizes from the models; a repo id
too long for its column keeps a prefix and a digest) so PostgreSQL never refuses a row SQLite took."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mirrorwatch.hashing.forms import FORMS
from mirrorwatch.hubs.base import (
    ERROR,
    FILE_CHANGED,
    FILE_GONE,
    FILE_PRESENT,
    LIVE,
    SOURCE_KEY,
    RemoteFile,
    RepoListing,
)
from mirrorwatch.match.archives import follow_archive
from mirrorwatch.match.evidence import FileEvidence
from mirrorwatch.match.header import store_file_signals
from mirrorwatch.match.states import MIRROR_REMOVED, SYSTEM_TRANSITIONS
from mirrorwatch.store.fit import column_length, fit_row, fit_text
from mirrorwatch.store.models import HubFile, HubRepo, StatusEvent, utcnow
from mirrorwatch.store.outbox import move_matches
from mirrorwatch.store.upsert import insert_missing


def repo_key(repo_id: str) -> str:
    """The repo id as stored in HubRepo.repo_id (fitted to the column: prefix and digest when long)."""
    return fit_text(repo_id, column_length(HubRepo, "repo_id"), identity=True)


def _event(session: Session, **values) -> None:
    session.add(StatusEvent(**fit_row(StatusEvent, values)))


def upsert_repo(session: Session, hub: str, listing: RepoListing, *, status: str, sha: str | None,
                error: str | None = None, now: datetime | None = None) -> HubRepo:
    now = now or utcnow()
    rid = repo_key(listing.repo_id)
    rtype = listing.repo_type
    where = (HubRepo.hub == hub, HubRepo.repo_type == rtype, HubRepo.repo_id == rid)
    repo = session.scalar(select(HubRepo).where(*where))
    if repo is None:
        # another sweep may be adding the same repo right now: insert unless it is there, then read it
        created = insert_missing(session, HubRepo, [{"hub": hub, "repo_type": rtype, "repo_id": rid, "first_seen": now,
                                                     "status": status, "last_seen": now}],
                                 ("hub", "repo_type", "repo_id"))
        repo = session.scalar(select(HubRepo).where(*where).execution_options(populate_existing=True))
        if not created and repo.status != status:
            _event(session, repo_pk=repo.id, at=now, status=status, detail=error or f"was {repo.status}")
    elif repo.status != status:
        session.flush()
        _event(session, repo_pk=repo.id, at=now, status=status, detail=error or f"was {repo.status}")
        if status in ("removed", "disabled"):
            _set_matches_state(session, repo.id, None, f"repo {status}")
    values = fit_row(HubRepo, {"author": listing.author, "sha": sha, "error": error})
    repo.author = values["author"] or repo.author
    repo.created_at = listing.created_at or repo.created_at
    repo.last_modified = listing.last_modified or repo.last_modified
    repo.gated = listing.gated
    repo.disabled = listing.disabled
    repo.status = status
    repo.error = values["error"]
    repo.sha = values["sha"]
    repo.last_seen = now
    session.flush()
    return repo


def _set_matches_state(session: Session, repo_pk: int, file_id: int | None, detail: str) -> None:
    """The mirror (a repo, or one file of it) is gone: its live matches move to `gone` (with their
    match.state and mirror.gone events, store/outbox.py)."""
    sources, target = SYSTEM_TRANSITIONS[MIRROR_REMOVED]
    file_ids = [file_id] if file_id is not None else list(
        session.scalars(select(HubFile.id).where(HubFile.repo_pk == repo_pk))
    )
    move_matches(session, file_ids, sources, target, reason=MIRROR_REMOVED, detail=detail, gone=True)


def store_files(session: Session, repo: HubRepo, files: list[RemoteFile], *, complete: bool = True,
                now: datetime | None = None) -> list[HubFile]:
    """Upsert files; with complete=True, files no longer listed are marked gone. Returns stored rows."""
    now = now or utcnow()
    files = [_fitted(rf) for rf in files]
    # (archive members are rows of the repo too, but no hub lists them: they follow their archive)
    if complete:
        existing = {f.path: f for f in session.scalars(select(HubFile).where(HubFile.repo_pk == repo.id,
                                                                             HubFile.archive_file_id.is_(None)))}
    else:  # one part of a big repo: only its own rows are read (mark_gone does the rest)
        paths = list(dict.fromkeys(rf.path for rf in files))
        existing = {f.path: f for i in range(0, len(paths), 500) for f in session.scalars(
            select(HubFile).where(HubFile.repo_pk == repo.id, HubFile.archive_file_id.is_(None),
                                  HubFile.path.in_(paths[i : i + 500])))}
    missing = [rf.path for rf in files if rf.path not in existing]
    if missing:
        # conflict-tolerant: a concurrent sweep of the same repo may add the same files
        insert_missing(session, HubFile, [{"repo_pk": repo.id, "path": p, "first_seen": now, "last_seen": now,
                                           "hashes": {}, "status": FILE_PRESENT} for p in dict.fromkeys(missing)],
                       ("repo_pk", "path"))
        for i in range(0, len(missing), 500):
            for row in session.scalars(select(HubFile).where(HubFile.repo_pk == repo.id,
                                                             HubFile.path.in_(missing[i : i + 500]),
                                                             HubFile.archive_file_id.is_(None))
                                       .execution_options(populate_existing=True)):
                existing[row.path] = row
    stored = []
    for rf in files:
        row = existing.pop(rf.path, None)
        if row is None:  # listed twice in one answer: the first listing holds it
            continue
        if rf.sha256 and row.sha256 and rf.sha256 != row.sha256:
            session.flush()
            _event(session, repo_pk=repo.id, hub_file_id=row.id, at=now, status=FILE_CHANGED,
                   detail=f"sha256 {row.sha256[:12]} -> {rf.sha256[:12]}")
            _set_matches_state(session, repo.id, row.id, f"file {FILE_CHANGED}")
        elif row.status == FILE_GONE:
            session.flush()
            _event(session, repo_pk=repo.id, hub_file_id=row.id, at=now, status=FILE_PRESENT, detail="file is back")
        row.revision = rf.revision or row.revision
        row.size = rf.size if rf.size is not None else row.size
        row.sha256 = rf.sha256 or row.sha256
        if rf.hashes:
            row.hashes = {**(row.hashes or {}), **rf.hashes}
        if rf.source:  # what the hub says the file is at its source (match.hits.is_itself reads it)
            row.hashes = {**(row.hashes or {}), SOURCE_KEY: rf.source}
        row.status = FILE_PRESENT
        row.last_seen = now
        stored.append(row)
    if complete:
        for row in existing.values():
            if row.status != FILE_GONE:
                session.flush()
                _file_gone(session, repo, row, now)
    session.flush()
    return stored


def _file_gone(session: Session, repo: HubRepo, row: HubFile, now: datetime) -> None:
    """A file its repo no longer lists: gone, with its event; its matches move to `gone`; an
    archive's members go with it (and it is read again if it comes back)."""
    row.status = FILE_GONE
    _event(session, repo_pk=repo.id, hub_file_id=row.id, at=now, status=FILE_GONE, detail="file no longer in the repo")
    _set_matches_state(session, repo.id, row.id, f"file {FILE_GONE}")
    if row.archive_info is not None:
        follow_archive(session, row, FILE_GONE, "archive no longer in the repo", now)
        row.archive_info = {**row.archive_info, "key": None}


def mark_gone(session: Session, repo: HubRepo, listed: set[str], *, now: datetime | None = None) -> int:
    """Files of a repo written in parts that its listing no longer has: marked gone (their matches
    too), reading only (id, path) pairs of the rest. Returns how many went."""
    now = now or utcnow()
    gone_ids = [fid for fid, path in session.execute(
        select(HubFile.id, HubFile.path).where(HubFile.repo_pk == repo.id, HubFile.status != FILE_GONE,
                                               HubFile.archive_file_id.is_(None)))  # (members follow their archive)
        if path not in listed]
    for i in range(0, len(gone_ids), 500):
        for row in session.scalars(select(HubFile).where(HubFile.id.in_(gone_ids[i : i + 500]))):
            _file_gone(session, repo, row, now)
    session.flush()
    return len(gone_ids)


def _fitted(rf: RemoteFile) -> RemoteFile:
    """A file of a hub answer with its text fitted to the hub_file columns."""
    values = fit_row(HubFile, {"path": rf.path, "revision": rf.revision, "sha256": rf.sha256})
    if values["path"] is rf.path and values["revision"] is rf.revision and values["sha256"] is rf.sha256:
        return rf
    return RemoteFile(path=values["path"], size=rf.size, sha256=values["sha256"], lfs=rf.lfs,
                      revision=values["revision"], hashes=rf.hashes)


# hash forms of a file's content (read by the content tier) kept with the file for exact matching
CONTENT_FORMS = ("autov3_full", "autov3")


def record_repo(session: Session, hub: str, listing: RepoListing, files: list[RemoteFile], *,
                evidence: dict[str, FileEvidence] | None = None, status: str = LIVE,
                complete: bool = True) -> tuple[HubRepo, list[HubFile], dict[int, FileEvidence]]:
    """Persist one fully processed repo, its files and what was read of them (header records,
    content hash forms); returns (repo, stored files, evidence by stored file id). With
    complete=False `files` is one part of the repo (files not in it are left as they are)."""
    repo = upsert_repo(session, hub, listing, status=status, sha=listing.sha)
    stored = store_files(session, repo, files, complete=complete)
    by_id: dict[int, FileEvidence] = {}
    for row in stored:
        ev = (evidence or {}).get(row.path)
        if ev is None:
            continue
        by_id[row.id] = ev
        record = ev.header_record()
        if record is not None:
            row.header_signals = record
        content = {k: ev.hashes[k] for k in CONTENT_FORMS if ev.hashes.get(k)}
        if content:
            row.hashes = {**(row.hashes or {}), **content}
    index_hash_forms(session, stored)
    return repo, stored, by_id


def signal_forms() -> tuple[str, ...]:
    """Hash forms a file keeps as file signals for the reverse look-up (services/where.py): every
    stored form but the SHA256 (its own indexed column; AutoV2 is a range on it)."""
    return tuple(n for n, f in FORMS.items() if n != "sha256" and f.stored_when_derived)


def index_hash_forms(session: Session, rows: list[HubFile]) -> None:
    """Record each file's known hash forms as file signals, so any form finds the file."""
    forms = signal_forms()
    for row in rows:
        sigs = {n: [v] for n in forms if isinstance(v := (row.hashes or {}).get(n), str)
                and len(v) == FORMS[n].hex_length}
        if sigs:
            store_file_signals(session, row.id, sigs)
    session.flush()


def record_error(session: Session, hub: str, listing: RepoListing, reason: str) -> HubRepo:
    """A repo that could not be read: keep what we knew, no sha (so the next sweep retries it)."""
    return upsert_repo(session, hub, listing, status=ERROR, sha=None, error=reason[:2000])
