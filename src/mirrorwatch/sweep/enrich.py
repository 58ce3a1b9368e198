"""The robust tiers' reads, done in the sweep's worker threads right after a repo's hashes:

- header tier: for safetensors weight files, a bounded range read of the header (at most the
  header plus one small first read) and the evidence in it;
- content tier (`--deep`): the file streamed to a private temporary folder (size-capped), its full
  AutoV3 and weight fingerprint computed, and the bytes deleted at once. Never kept, never served.

Files already read at the same sha256 are not read again."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from mirrorwatch.errors import MirrorwatchError
from mirrorwatch.hubs.base import Hub, RemoteFile, RepoFiles
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import Fingerprint, HubFile, HubRepo


@dataclass
class EnrichOptions:
    headers: bool = True
    deep: bool = False
    header_max_file: int = 4 * 1024**3  # files larger than this are checkpoints, not LoRAs: skip headers
    deep_max_file: int = 2 * 1024**3


def _done_before(db: Database, hub: str, repo_id: str) -> dict[str, tuple[str | None, bool, bool]]:
    """path -> (sha256, header read, fingerprinted) for files of this repo already stored."""
    out: dict[str, tuple[str | None, bool, bool]] = {}
    with db.sessions() as s:
        rows = s.execute(
            select(HubFile.id, HubFile.path, HubFile.sha256, HubFile.header_signals)
            .join(HubRepo, HubRepo.id == HubFile.repo_pk)
            .where(HubRepo.hub == hub, HubRepo.repo_id == repo_id)
        ).all()
        fp = set(s.scalars(select(Fingerprint.hub_file_id).where(Fingerprint.hub_file_id.in_([r[0] for r in rows]))))
        for fid, path, sha, hdr in rows:
            out[path] = (sha, bool(hdr) and "error" not in hdr, fid in fp)
    return out


def enrich(db: Database, hub: Hub, result: RepoFiles, opts: EnrichOptions) -> RepoFiles:
    """Add header evidence (and content fingerprints with deep) to a repo's safetensors files."""
    if not (opts.headers or opts.deep):
        return result
    targets = [f for f in result.files if f.path.lower().endswith(".safetensors")]
    if not targets:
        return result
    done = _done_before(db, hub.name, result.repo.repo_id)
    for f in targets:
        sha, had_header, had_fp = done.get(f.path, (None, False, False))
        same = sha is not None and sha == f.sha256
        if opts.headers and not (same and had_header) and (f.size is None or f.size <= opts.header_max_file):
            _read_header(hub, result, f)
        if opts.deep and not (same and had_fp) and (f.size is None or f.size <= opts.deep_max_file):
            _read_content(hub, result, f, opts)
    return result


def _read_header(hub: Hub, result: RepoFiles, f: RemoteFile) -> None:
    from mirrorwatch.formats.kinds import guess_kind
    from mirrorwatch.match.header import header_signals

    try:
        header, fetched = hub.read_header(result.repo.repo_id, f.path, f.revision or result.repo.sha, f.size)
        kind = guess_kind(header)
        f.header = {"signals": header_signals(header), "kind": f"{kind.family}/{kind.base}", "bytes": fetched,
                    "tensors": len(header.tensors)}
    except MirrorwatchError as exc:
        f.header = {"error": str(exc)[:300]}
    except Exception as exc:  # network failure after retries, gated file...
        f.header = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}


def _read_content(hub: Hub, result: RepoFiles, f: RemoteFile, opts: EnrichOptions) -> None:
    from mirrorwatch.hashing.engine import hash_file
    from mirrorwatch.match.fingerprint import NothingToFingerprint, fingerprint_file

    folder = Path(tempfile.mkdtemp(prefix="mw-content-"))
    try:
        os.chmod(folder, 0o700)
        local = hub.fetch_to(result.repo.repo_id, f.path, f.revision or result.repo.sha, folder / "file",
                             max_bytes=opts.deep_max_file)
        h = hash_file(local)
        if f.sha256 and h.sha256 != f.sha256:
            f.content_error = "the bytes served do not hash to the sha256 the hub announced"
            return
        if h.autov3_full:
            f.hashes = {**f.hashes, "autov3_full": h.autov3_full, "autov3": h.autov3}
        try:
            f.fingerprint = fingerprint_file(local).to_bytes()
        except NothingToFingerprint:
            pass  # not a LoRA-family file (a checkpoint, an embedding): hashes only
        except MirrorwatchError as exc:
            f.content_error = f"no fingerprint: {exc}"[:300]
    except MirrorwatchError as exc:
        f.content_error = str(exc)[:300]
    except Exception as exc:
        f.content_error = f"{type(exc).__name__}: {str(exc)[:200]}"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
