"""The record of content work handed to a distributed engine (table `content_task`).

Before a file's content work is submitted it is recorded `pending`, keyed by the file and its content
(`content_key`: hub, repo, path, the version the listing named — sha256, ETag, size, mtime — and
which stages were asked for). The first result to come back is written once (`pending` -> `done`,
a conditional update: a duplicate result from a retried task changes nothing). A sweep whose driver
was killed is started again: its files' content work is planned again, finds the same keys, takes
the `done` evidence as it is and re-submits only what is still pending. Rows are deleted once the
sweep has persisted their repo (the database's hub_file then holds what was learned)."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from sqlalchemy import delete, select, update

from mirrorwatch.match.evidence import FileEvidence, HeaderEvidence
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import ContentTask, utcnow
from mirrorwatch.store.upsert import insert_missing
from mirrorwatch.sweep.enrich import ContentJob
from mirrorwatch.sweep.persist import repo_key

PENDING, DONE = "pending", "done"


def content_key(hub: str, job: ContentJob) -> str:
    """The identity of one file's content work: the same file at the same version, same stages."""
    f = job.file
    ident = [hub, job.repo_id, f.path, f.sha256, f.size, job.revision,
             {k: f.hashes.get(k) for k in ("etag", "mtime")},
             [job.header, job.content, job.fingerprint, job.stream_hash, job.max_bytes]]
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()


def evidence_to_json(ev: FileEvidence) -> dict[str, Any]:
    out: dict[str, Any] = {"hashes": ev.hashes, "errors": ev.errors, "no_fingerprint": ev.no_fingerprint}
    if ev.header is not None:
        out["header"] = ev.header.record()
    if ev.fingerprint is not None:
        out["fingerprint"] = base64.b64encode(ev.fingerprint.to_bytes()).decode()
    return out


def evidence_from_json(data: dict[str, Any]) -> FileEvidence:
    ev = FileEvidence(hashes=dict(data.get("hashes") or {}), errors=dict(data.get("errors") or {}),
                      no_fingerprint=data.get("no_fingerprint"))
    if data.get("header"):
        h = data["header"]
        ev.header = HeaderEvidence(h["signals"], h["kind"], int(h["bytes"]), int(h["tensors"]))
    if data.get("fingerprint"):
        from mirrorwatch.match.fingerprint import Fingerprint

        ev.fingerprint = Fingerprint.from_bytes(base64.b64decode(data["fingerprint"]))
    return ev


class Ledger:
    """Pending and done content work of one hub's sweep, in the database."""

    def __init__(self, db: Database, hub: str) -> None:
        self.db = db
        self.hub = hub
        self.resubmitted = 0  # pending work found from an earlier (killed) driver and submitted again
        self.reused = 0  # results found done, not submitted again

    def begin(self, jobs: list[ContentJob]) -> tuple[dict[str, FileEvidence], dict[str, str]]:
        """Record the jobs pending (unless recorded already); returns (evidence of the jobs already
        done, by path) and the content key of every job by path."""
        keys = {job.path: content_key(self.hub, job) for job in jobs}
        done: dict[str, FileEvidence] = {}
        with self.db.write_session() as s:
            known: dict[str, ContentTask] = {}
            ids = list(keys.values())
            for i in range(0, len(ids), 500):
                for row in s.scalars(select(ContentTask).where(ContentTask.content_key.in_(ids[i : i + 500]))):
                    known[row.content_key] = row
            now = utcnow()
            fresh = []
            for job in jobs:
                row = known.get(keys[job.path])
                if row is None:
                    fresh.append({"content_key": keys[job.path], "hub": self.hub, "repo_id": repo_key(job.repo_id),
                                  "path": job.path, "status": PENDING, "attempts": 1, "evidence": None,
                                  "created_at": now, "updated_at": now})
                elif row.status == DONE and row.evidence is not None:
                    done[job.path] = evidence_from_json(row.evidence)
                    self.reused += 1
                else:
                    row.attempts += 1
                    row.updated_at = now
                    self.resubmitted += 1
            if fresh:
                insert_missing(s, ContentTask, fresh, ("content_key",))
        return done, keys

    def finish(self, key: str, ev: FileEvidence) -> bool:
        """Write a result once: True when this call wrote it (False: it was written already)."""
        with self.db.write_session() as s:
            res = s.execute(update(ContentTask).where(ContentTask.content_key == key, ContentTask.status == PENDING)
                            .values(status=DONE, evidence=evidence_to_json(ev), updated_at=utcnow()))
            return bool(res.rowcount)

    def settle(self, repo_ids: list[str], *, pending: bool = False) -> None:
        """Forget the done work of repos the sweep has persisted (with `pending`, their pending work
        too: a sweep that did their content work itself, without the engine, after a lost cluster)."""
        if not repo_ids:
            return
        with self.db.write_session() as s:
            q = delete(ContentTask).where(ContentTask.hub == self.hub,
                                          ContentTask.repo_id.in_([repo_key(r) for r in repo_ids]))
            s.execute(q if pending else q.where(ContentTask.status == DONE))

    def any(self) -> bool:
        """Whether any content work of this hub is recorded."""
        with self.db.session() as s:
            return s.scalar(select(ContentTask.content_key).where(ContentTask.hub == self.hub).limit(1)) is not None
