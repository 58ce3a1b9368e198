"""Re-visiting known mirrors and recording their status over time.

Statuses: live, gated, disabled, removed (repo), and per matched file: gone or changed. A mirror
that disappears takes its open matches to state `gone`; one that comes back reopens them as `new`.
An archive member (a row of its own, match/archives.py) is no file the hub lists: it follows its
archive (gone or changed with it, back with it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from mirrorwatch.hubs.base import (
    DISABLED,
    FILE_CHANGED,
    FILE_GONE,
    FILE_PRESENT,
    REMOVED,
    Hub,
    split_typed_id,
)
from mirrorwatch.match.states import MIRROR_BACK, MIRROR_REMOVED, SYSTEM_TRANSITIONS
from mirrorwatch.store.db import Database
from mirrorwatch.store.fit import fit_row
from mirrorwatch.store.models import HubFile, HubRepo, Match, StatusEvent, utcnow
from mirrorwatch.store.outbox import move_matches


@dataclass
class RecheckSummary:
    repos: int = 0
    changed: int = 0
    errors: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    stopped: bool = False  # asked to stop before every target was visited

    def to_dict(self) -> dict[str, Any]:
        return {"repos": self.repos, "changed": self.changed, "errors": self.errors, "statuses": self.statuses,
                "events": self.events}


def _reopen_or_close(s: Session, file_ids: list[int], gone: bool, detail: str | None = None) -> None:
    """Move the matches of these files (with their events, store/outbox.py)."""
    event = MIRROR_REMOVED if gone else MIRROR_BACK
    sources, target = SYSTEM_TRANSITIONS[event]
    move_matches(s, file_ids, sources, target, reason=event, detail=detail, gone=gone)


def recheck(db: Database, hub: Hub, *, all_repos: bool = False, repo_ids: list[str] | None = None,
            progress: Callable[[RecheckSummary], None] | None = None,
            stop: Callable[[], bool] | None = None) -> RecheckSummary:
    """Visit repos that hold matches (or every stored repo of this hub with all_repos), each asked
    for by its own repo type. `repo_ids` may name a type the hub's URL way (`datasets/ns/name`); a
    bare id names the repo of that id whatever its type. `stop` is asked before each repo (each repo
    is its own transaction): once True, the recheck ends there."""
    summary = RecheckSummary()
    with db.session() as s:
        q = select(HubRepo.id, HubRepo.repo_id, HubRepo.repo_type).where(HubRepo.hub == hub.name)
        if repo_ids:
            wanted = [split_typed_id(r, tuple(hub.repo_types)) for r in repo_ids]
            q = q.where(or_(*[and_(HubRepo.repo_id == rid, HubRepo.repo_type == t) if t else HubRepo.repo_id == rid
                              for t, rid in wanted]))
        elif not all_repos:
            q = q.where(HubRepo.id.in_(
                select(HubFile.repo_pk).join(Match, Match.hub_file_id == HubFile.id).where(Match.state != "dismissed")
            ))
        targets = list(s.execute(q.order_by(HubRepo.id)))
    for repo_pk, repo_id, repo_type in targets:
        if stop is not None and stop():
            summary.stopped = True
            break
        summary.repos += 1
        try:
            st = hub.repo_status(repo_id, repo_type=repo_type)
        except Exception as exc:  # network trouble: status unknown this time, try next time
            summary.errors += 1
            summary.events.append({"repo_id": repo_id, "repo_type": repo_type, "status": "error",
                                   "detail": f"{type(exc).__name__}: {exc}"[:300]})
            continue
        now = utcnow()
        with db.session() as s:
            repo = s.get(HubRepo, repo_pk)
            files = list(s.scalars(select(HubFile).where(HubFile.repo_pk == repo_pk)))
            summary.statuses[st.status] = summary.statuses.get(st.status, 0) + 1
            if repo.status != st.status:
                s.add(StatusEvent(**fit_row(StatusEvent, {"repo_pk": repo_pk, "at": now, "status": st.status,
                                                          "detail": st.detail or f"was {repo.status}"})))
                summary.changed += 1
                summary.events.append({"repo_id": repo_id, "repo_type": repo_type, "status": st.status,
                                       "was": repo.status})
                repo.status = st.status
            repo.last_seen = now
            if st.status in (REMOVED, DISABLED):
                _reopen_or_close(s, [f.id for f in files], gone=True, detail=f"repo {st.status}")
                continue
            if st.files is None:
                continue
            current = {f.path: f for f in st.files}
            gone_ids: dict[str, list[int]] = {}
            back_ids: list[int] = []
            plain = [f for f in files if f.archive_file_id is None]
            was = {f.id: f.status for f in plain}
            for f in plain:
                rf = current.get(f.path)
                if rf is None:
                    new_status, detail = FILE_GONE, "file no longer in the repo"
                elif rf.sha256 and f.sha256 and rf.sha256 != f.sha256:
                    new_status, detail = FILE_CHANGED, f"sha256 {f.sha256[:12]} -> {rf.sha256[:12]}"
                else:
                    new_status, detail = FILE_PRESENT, "present"
                    f.last_seen = now
                if new_status != f.status:
                    s.add(StatusEvent(repo_pk=repo_pk, hub_file_id=f.id, at=now, status=new_status, detail=detail))
                    summary.changed += 1
                    summary.events.append({"repo_id": repo_id, "repo_type": repo_type, "path": f.path,
                                           "status": new_status, "was": f.status})
                    f.status = new_status
                if new_status == FILE_PRESENT:
                    back_ids.append(f.id)
                else:
                    gone_ids.setdefault(new_status, []).append(f.id)
            for f in files:  # an archive's members follow it (match/archives.py)
                if f.archive_file_id is None or f.archive_file_id not in was:
                    continue
                archive = next(a for a in plain if a.id == f.archive_file_id)
                if archive.status == was[archive.id]:
                    continue  # the archive did not move: its members keep what the sweep found
                if archive.status == FILE_PRESENT:
                    if f.status == FILE_PRESENT:
                        continue
                    new_status, detail = FILE_PRESENT, "its archive is back"
                elif f.status in (FILE_GONE, archive.status):
                    continue
                else:
                    new_status, detail = archive.status, f"its archive is {archive.status}"
                s.add(StatusEvent(repo_pk=repo_pk, hub_file_id=f.id, at=now, status=new_status, detail=detail))
                summary.changed += 1
                summary.events.append({"repo_id": repo_id, "path": f.path, "status": new_status, "was": f.status})
                f.status = new_status
                if new_status == FILE_PRESENT:
                    back_ids.append(f.id)
                else:
                    gone_ids.setdefault(new_status, []).append(f.id)
            for status, ids in gone_ids.items():
                _reopen_or_close(s, ids, gone=True, detail=f"file {status}")
            _reopen_or_close(s, back_ids, gone=False)
        if progress:
            progress(summary)
    return summary
