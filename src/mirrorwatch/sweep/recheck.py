"""Re-visiting known mirrors and recording their status over time.

Statuses: live, gated, disabled, removed (repo), and per matched file: gone or changed. A mirror
that disappears takes its open matches to state `gone`; one that comes back reopens them as `new`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, or_, select, update
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


@dataclass
class RecheckSummary:
    repos: int = 0
    changed: int = 0
    errors: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"repos": self.repos, "changed": self.changed, "errors": self.errors, "statuses": self.statuses,
                "events": self.events}


def _reopen_or_close(s: Session, file_ids: list[int], gone: bool) -> None:
    if not file_ids:
        return
    if gone:
        sources, target = SYSTEM_TRANSITIONS[MIRROR_REMOVED]
    else:
        sources, target = SYSTEM_TRANSITIONS[MIRROR_BACK]
    s.execute(update(Match).where(Match.hub_file_id.in_(file_ids), Match.state.in_(sources))
              .values(state=target, updated_at=utcnow()))


def recheck(db: Database, hub: Hub, *, all_repos: bool = False, repo_ids: list[str] | None = None,
            progress: Callable[[RecheckSummary], None] | None = None) -> RecheckSummary:
    """Visit repos that hold matches (or every stored repo of this hub with all_repos), each asked
    for by its own repo type. `repo_ids` may name a type the hub's URL way (`datasets/ns/name`); a
    bare id names the repo of that id whatever its type."""
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
                _reopen_or_close(s, [f.id for f in files], gone=True)
                continue
            if st.files is None:
                continue
            current = {f.path: f for f in st.files}
            gone_ids, back_ids = [], []
            for f in files:
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
                (gone_ids if new_status != FILE_PRESENT else back_ids).append(f.id)
            _reopen_or_close(s, gone_ids, gone=True)
            _reopen_or_close(s, back_ids, gone=False)
        if progress:
            progress(summary)
    return summary
