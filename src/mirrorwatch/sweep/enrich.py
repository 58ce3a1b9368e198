"""The robust tiers' reads, done in the sweep's worker threads right after a repo's hashes:

- header tier: for safetensors weight files, a bounded range read of the header (at most the
  header plus one small first read);
- content tier (`--deep`): the file streamed to a private temporary folder (size-capped), its hash
  forms and weight fingerprint computed, and the bytes deleted at once. Never kept, never served.

Both go through the one evidence pipeline (`match.evidence.build_evidence`) with the hub as the
byte source. Files already read at the same sha256 are not read again: what was read before is
looked up by the main thread (`stored_reads`) — worker threads never touch the database."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from mirrorwatch.config import DEFAULT_CONTENT_CAP
from mirrorwatch.errors import MirrorwatchError
from mirrorwatch.formats.safetensors import SafetensorsHeader
from mirrorwatch.hashing.engine import hash_stream
from mirrorwatch.hubs.base import Hub, RemoteFile, RepoFiles
from mirrorwatch.match.evidence import FileEvidence, LocalFile, build_evidence
from mirrorwatch.store.models import Fingerprint, HubFile, HubRepo

# path -> (sha256, header read, fingerprinted) for the files of one repo stored by earlier sweeps
StoredReads = dict[str, tuple[str | None, bool, bool]]


@dataclass
class EnrichOptions:
    headers: bool = True
    deep: bool = False
    header_max_file: int = 4 * 1024**3  # files larger than this are checkpoints, not LoRAs: skip headers
    deep_max_file: int = DEFAULT_CONTENT_CAP  # (the sweep passes MIRRORWATCH_CONTENT_CAP's value)


def stored_reads(session: Session, hub: str, repo_ids: list[str],
                 repo_type: str = "model") -> dict[str, StoredReads]:
    """What earlier sweeps read of these repos' files (of one repo type; main thread, batched)."""
    out: dict[str, StoredReads] = {}
    for i in range(0, len(repo_ids), 500):
        rows = session.execute(
            select(HubFile.id, HubRepo.repo_id, HubFile.path, HubFile.sha256, HubFile.header_signals)
            .join(HubRepo, HubRepo.id == HubFile.repo_pk)
            .where(HubRepo.hub == hub, HubRepo.repo_type == repo_type, HubRepo.repo_id.in_(repo_ids[i : i + 500]))
        ).all()
        ids = [r[0] for r in rows]
        fp: set[int] = set()
        for j in range(0, len(ids), 500):
            fp.update(session.scalars(select(Fingerprint.hub_file_id).where(Fingerprint.hub_file_id.in_(ids[j : j + 500]))))
        for fid, rid, path, sha, hdr in rows:
            out.setdefault(rid, {})[path] = (sha, bool(hdr) and "error" not in hdr, fid in fp)
    return out


class HubFileSource:
    """A hub file as a byte source: the header by range reads, the content by a capped transient download."""

    def __init__(self, hub: Hub, repo_id: str, f: RemoteFile, revision: str | None, *, max_bytes: int,
                 repo_type: str | None = None) -> None:
        self.hub, self.repo_id, self.file, self.revision, self.max_bytes = hub, repo_id, f, revision, max_bytes
        self.repo_type = repo_type

    def header(self) -> tuple[SafetensorsHeader, int]:
        return self.hub.read_header(self.repo_id, self.file.path, self.revision, self.file.size,
                                    repo_type=self.repo_type)

    @contextmanager
    def local_copy(self) -> Iterator[Path]:
        folder = Path(tempfile.mkdtemp(prefix="mw-content-"))
        try:
            os.chmod(folder, 0o700)
            yield self.hub.fetch_to(self.repo_id, self.file.path, self.revision, folder / "file",
                                    max_bytes=self.max_bytes, repo_type=self.repo_type)
        finally:
            shutil.rmtree(folder, ignore_errors=True)


@dataclass
class ContentJob:
    """One file's content work, as the driver decided it: picklable (it crosses to a Ray worker with
    the file's listing, never its bytes); `run_job` turns it into the file's evidence."""

    repo_id: str
    file: RemoteFile
    revision: str | None
    header: bool
    content: bool
    fingerprint: bool
    expected_sha256: str | None
    max_bytes: int
    stream_hash: bool = False  # larger than the cap: every hash form by streaming, no fingerprint
    one_read: bool = False  # header from the same private copy as the content (one read of the bytes)
    repo_type: str | None = None  # the repo's type on a hub that has several (None: the hub's default)

    @property
    def path(self) -> str:
        return self.file.path


class EngineLost(MirrorwatchError):
    """The engine running content work can no longer run any (a cluster unreachable, or without
    workers): the sweep stops, recorded failed and resumable, instead of skipping repo after repo."""

    exit_code = 7


class ContentRunner(Protocol):
    """Runs a repo's content jobs and returns each file's evidence by path (in this process, or as
    Ray tasks: `sweep.rayrun`)."""

    def run(self, hub: Hub, jobs: list[ContentJob]) -> dict[str, FileEvidence]: ...


def run_job(hub: Hub, job: ContentJob) -> FileEvidence:
    """One file's content work: its header (bounded), its bytes read once (a size-capped private
    temporary copy deleted at once, or the file itself when local) for every hash form and its
    fingerprint; or, past the cap, every hash form from a stream. Only the evidence is returned."""
    source = HubFileSource(hub, job.repo_id, job.file, job.revision, max_bytes=job.max_bytes,
                            repo_type=job.repo_type)
    if job.one_read and job.content and not job.stream_hash:
        try:
            with source.local_copy() as path:
                return build_evidence(LocalFile(path), header=job.header, content=True, fingerprint=job.fingerprint,
                                      expected_sha256=job.expected_sha256)
        except Exception as exc:  # vanished, changed, past the cap, unreadable: nothing was read
            return FileEvidence(errors={"content": _reason(exc)})
    if not job.stream_hash:
        return build_evidence(source, header=job.header, content=job.content, fingerprint=job.fingerprint,
                              expected_sha256=job.expected_sha256)
    ev = build_evidence(source, header=job.header, content=False)
    opener = getattr(hub, "open_stream", None)
    if opener is None:
        ev.errors["content"] = f"larger than the {job.max_bytes:,}-byte content-tier cap"
        return ev
    try:
        with opener(job.repo_id, job.path, job.revision) as stream:
            ev.hashes = hash_stream(stream, size_hint=job.file.size or 0, path=job.path).forms()
    except Exception as exc:
        ev.errors["content"] = _reason(exc)
    return ev


def _reason(exc: Exception) -> str:
    return str(exc)[:300] if isinstance(exc, MirrorwatchError) else f"{type(exc).__name__}: {str(exc)[:200]}"


class InProcess:
    """In this process: each job in the calling (sweep worker) thread, one after the other (today's
    path), or `workers` at once in threads (for a store read over the network, e.g. S3)."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = max(1, workers)

    def run(self, hub: Hub, jobs: list[ContentJob]) -> dict[str, FileEvidence]:
        if self.workers == 1 or len(jobs) < 2:
            return {job.path: run_job(hub, job) for job in jobs}
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="content") as pool:
            return dict(zip([j.path for j in jobs], pool.map(lambda j: run_job(hub, j), jobs), strict=True))


def plan(hub: Hub, result: RepoFiles, opts: EnrichOptions, done: StoredReads) -> list[ContentJob]:
    """The content work a repo's files need (none for files already read at the same version)."""
    jobs: list[ContentJob] = []
    if not hub.reads_bytes:
        return jobs
    by_reading = hub.hashes_by_reading
    if not (opts.headers or opts.deep or by_reading):
        return jobs
    for f in result.files:
        st = f.path.lower().endswith(".safetensors")
        revision = f.revision or result.repo.sha
        if by_reading and f.sha256 is None:  # never read at this version: every form, header, fingerprint
            small = f.size is None or f.size <= opts.deep_max_file
            jobs.append(ContentJob(result.repo.repo_id, f, revision,
                                   header=opts.headers and st and (f.size is None or f.size <= opts.header_max_file),
                                   content=small, fingerprint=opts.deep and st, expected_sha256=None,
                                   max_bytes=opts.deep_max_file, stream_hash=not small, one_read=True,
                                   repo_type=result.repo.repo_type))
            continue
        if by_reading:  # unchanged since a sweep read it: read again only for a fingerprint never taken
            if opts.deep and st and f.hashes.get(READ_KEY) not in (None, "deep") \
                    and (f.size is None or f.size <= opts.deep_max_file):
                jobs.append(ContentJob(result.repo.repo_id, f, revision, header=False, content=True,
                                       fingerprint=True, expected_sha256=f.sha256, max_bytes=opts.deep_max_file,
                                       repo_type=result.repo.repo_type))
            continue
        if not st:
            continue
        sha, had_header, had_fp = done.get(f.path, (None, False, False))
        same = sha is not None and sha == f.sha256
        header = opts.headers and not (same and had_header) and (f.size is None or f.size <= opts.header_max_file)
        content = opts.deep and not (same and had_fp) and (f.size is None or f.size <= opts.deep_max_file)
        if header or content:
            jobs.append(ContentJob(result.repo.repo_id, f, revision, header=header, content=content,
                                   fingerprint=True, expected_sha256=f.sha256, max_bytes=opts.deep_max_file,
                                   repo_type=result.repo.repo_type))
    return jobs


# Stored with a file read by the content stage of a `hashes_by_reading` hub: "deep" when the
# content tier ran on it (fingerprint included), "hash" when only its hash forms and header were read.
READ_KEY = "read"


def fold_hashes(result: RepoFiles, jobs: list[ContentJob], evidence: dict[str, FileEvidence],
                opts: EnrichOptions) -> None:
    """A `hashes_by_reading` hub's files take the hash forms their content work read; a file that
    could not be read (vanished, changed mid-read, unreadable) is left out with its reason recorded."""
    planned = {job.path: job for job in jobs}
    kept: list[RemoteFile] = []
    for f in result.files:
        job, ev = planned.get(f.path), evidence.get(f.path)
        if f.sha256 is not None:
            if job is not None and ev is not None and ev.hashes:
                f.hashes = {**f.hashes, READ_KEY: "deep"}
            kept.append(f)
            continue
        if ev is None or not ev.hashes.get("sha256"):
            why = (ev.errors.get("content") if ev is not None else None) or "not read"
            result.problems.append((f.path, f"skipped, {why}"))
            evidence.pop(f.path, None)
            continue
        f.sha256 = ev.hashes["sha256"]
        f.hashes = {**f.hashes, **{k: v for k, v in ev.hashes.items() if k != "sha256"},
                    READ_KEY: "deep" if opts.deep else "hash"}
        kept.append(f)
    result.files = kept


def enrich(hub: Hub, result: RepoFiles, opts: EnrichOptions, done: StoredReads,
           runner: ContentRunner | None = None) -> dict[str, FileEvidence]:
    """Header evidence (and content evidence with deep) for a repo's safetensors files, by path; for
    a `hashes_by_reading` hub, every hash form of each file it left unhashed (folded into `result`)."""
    jobs = plan(hub, result, opts, done)
    out = (runner or InProcess()).run(hub, jobs) if jobs else {}
    if hub.hashes_by_reading:
        fold_hashes(result, jobs, out, opts)
    return out
