"""The audit log: who did what, and when.

Every change a person makes (decisions, imports, reports, account and token changes, sign-ins) is
recorded in the same transaction as the change itself, so the log never claims a change that was
rolled back and never misses one that was committed. The log is append-only: nothing here edits or
deletes rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mirrorwatch.services.paging import Page, check_window
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import Audit


@dataclass
class AuditView:
    id: int
    at: datetime
    user: str
    action: str
    object_type: str | None
    object_id: str | None
    detail: dict[str, Any]


def record(session: Session, user: str, action: str, object_type: str | None = None,
           object_id: int | str | None = None, /, **detail: Any) -> None:
    """Add one audit row to the caller's transaction."""
    session.add(Audit(user=user[:100], action=action[:60], object_type=object_type,
                      object_id=None if object_id is None else str(object_id)[:100], detail=detail))


def list_audit(db: Database, *, limit: int | None = None, offset: int | None = None, user: str | None = None,
               action: str | None = None, object_type: str | None = None,
               object_id: str | None = None) -> Page[AuditView]:
    """Newest first, optionally filtered by who, what kind of action, or which object."""
    limit, offset = check_window(limit, offset)
    conds = []
    if user:
        conds.append(Audit.user == user)
    if action:
        # "match" finds "match.decide"; "match.decide" finds exactly that.
        conds.append(Audit.action.like(f"{_escape_like(action)}%", escape="\\"))
    if object_type:
        conds.append(Audit.object_type == object_type)
    if object_id:
        conds.append(Audit.object_id == object_id)
    with db.session() as s:
        total = s.scalar(select(func.count()).select_from(Audit).where(*conds)) or 0
        rows = s.scalars(select(Audit).where(*conds).order_by(Audit.id.desc()).limit(limit).offset(offset))
        items = [AuditView(a.id, a.at, a.user, a.action, a.object_type, a.object_id, dict(a.detail or {}))
                 for a in rows]
    return Page(items, total, limit, offset)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
