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
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from mirrorwatch.formats.safetensors import SafetensorsHeader
from mirrorwatch.hubs.base import Hub, RemoteFile, RepoFiles
from mirrorwatch.match.evidence import FileEvidence, build_evidence
from mirrorwatch.store.models import Fingerprint, HubFile, HubRepo

# path -> (sha256, header read, fingerprinted) for the files of one repo stored by earlier sweeps
StoredReads = dict[str, tuple[str | None, bool, bool]]


@dataclass
class EnrichOptions:
    headers: bool = True
    deep: bool = False
    header_max_file: int = 4 * 1024**3  # files larger than this are checkpoints, not LoRAs: skip headers
    deep_max_file: int = 2 * 1024**3


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


def enrich(hub: Hub, result: RepoFiles, opts: EnrichOptions, done: StoredReads) -> dict[str, FileEvidence]:
    """Header evidence (and content evidence with deep) for a repo's safetensors files, by path."""
    out: dict[str, FileEvidence] = {}
    if not (opts.headers or opts.deep) or not hub.reads_bytes:
        return out
    for f in result.files:
        if not f.path.lower().endswith(".safetensors"):
            continue
        sha, had_header, had_fp = done.get(f.path, (None, False, False))
        same = sha is not None and sha == f.sha256
        header = opts.headers and not (same and had_header) and (f.size is None or f.size <= opts.header_max_file)
        content = opts.deep and not (same and had_fp) and (f.size is None or f.size <= opts.deep_max_file)
        if header or content:
            source = HubFileSource(hub, result.repo.repo_id, f, f.revision or result.repo.sha, max_bytes=opts.deep_max_file,
                                   repo_type=result.repo.repo_type)
            out[f.path] = build_evidence(source, header=header, content=content, expected_sha256=f.sha256)
    return out
