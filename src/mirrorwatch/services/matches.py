"""Matches as people see them: one read model (:class:`MatchView`) shared by the review queue, the
entry, repo and uploader pages, reports, exports, the JSON API and the `matches` command; listing
with filters, and grouping by uploader (batch re-uploads stand out).

A match joins four things a reviewer needs side by side: the removed model (entry, bank), the
mirror (hub, repo, uploader, file, statuses, first/last seen), and why they are thought to be the
same (tier, score, evidence). Evidence is stored as a JSON list written by the matching tiers;
:func:`describe_evidence` turns any shape of it into short readable lines."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import field
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from mirrorwatch.match.states import TIER_NAMES, tier_name
from mirrorwatch.services.lookup import archive_of, hub_file_url
from mirrorwatch.services.serial import Utc, read_model
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import Bank, Entry, HubFile, HubRepo, Match

MAX_EVIDENCE_LINES = 20
MAX_VALUE = 160


@read_model
class MatchView:
    id: int
    state: str
    tier: int
    tier_name: str
    score: float
    created_at: Utc
    updated_at: Utc
    entry_id: int
    entry_name: str
    entry_url: str | None
    bank_id: int
    bank: str
    hub: str
    repo_type: str
    repo_pk: int
    repo_id: str
    author: str | None
    repo_status: str
    file_id: int
    path: str
    file_status: str
    size: int | None
    sha256: str | None
    url: str | None
    first_seen: Utc
    last_seen: Utc
    evidence: list[Any] = field(default_factory=list)
    why: list[str] = field(default_factory=list)
    # An archive member's match: its path inside the archive, and the archive's path in the repo
    # (`path` is then "<archive>!<member>"; `url` the archive's page). None for plain files.
    member: str | None = None
    archive: str | None = None


def match_select() -> Select:
    """The joined query every match list starts from; callers add filters, order and window."""
    return (
        select(Match, Entry.name, Entry.url, Entry.bank_id, Bank.name, HubFile, HubRepo)
        .join(Entry, Entry.id == Match.entry_id)
        .join(Bank, Bank.id == Entry.bank_id)
        .join(HubFile, HubFile.id == Match.hub_file_id)
        .join(HubRepo, HubRepo.id == HubFile.repo_pk)
    )


def match_views(session: Session, query: Select) -> list[MatchView]:
    out = []
    for m, ename, eurl, bank_id, bank, f, r in session.execute(query):
        out.append(
            MatchView(
                id=m.id, state=m.state, tier=m.tier, tier_name=tier_name(m.tier),
                score=float(m.score), created_at=m.created_at, updated_at=m.updated_at,
                entry_id=m.entry_id, entry_name=ename or "", entry_url=eurl, bank_id=bank_id, bank=bank,
                hub=r.hub, repo_type=r.repo_type, repo_pk=r.id, repo_id=r.repo_id, author=r.author, repo_status=r.status,
                file_id=f.id, path=f.path, file_status=f.status, size=f.size, sha256=f.sha256,
                url=hub_file_url(r.hub, r.repo_id, archive_of(f.path, f.member) or f.path, r.repo_type), first_seen=f.first_seen,
                last_seen=f.last_seen, evidence=list(m.evidence or []), why=describe_evidence(m.evidence, m.tier),
                member=f.member, archive=archive_of(f.path, f.member),
            )
        )
    return out


def where_found(view: MatchView) -> str:
    """Where a match's file is, in words: its path, or "member M of archive A"."""
    if view.member and view.archive:
        return f"member {view.member} of archive {view.archive}"
    return view.path


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value) if not isinstance(value, int | float) else str(value)
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def _label(item: dict[str, Any]) -> str:
    from mirrorwatch.hashing.forms import FORMS

    form = item.get("form")
    if isinstance(form, str) and form in FORMS:
        return FORMS[form].label
    for key in ("form", "field", "kind", "type"):
        if item.get(key):
            return str(item[key])
    return ""


def _archive_line(item: dict[str, Any]) -> str:
    """An archive member's evidence: which member of which archive, how the lead came, how confirmed."""
    text = f"member {item.get('member')} of archive {item.get('archive')}"
    if item.get("lead"):
        text += f": lead by {item['lead']}"
    if isinstance(item.get("size"), int):
        text += f", {item['size']:,} bytes"
    if item.get("confirmed"):
        text += f"; {item['confirmed']}"
    return text


def describe_evidence(evidence: Any, tier: int | None = None) -> list[str]:
    """Readable lines for stored evidence of any shape (dicts, strings, nested lists).

    A dict reads as "label: value (other fields)", where the label is the hash form, header field
    or evidence kind; the tier is left out (it is shown beside every match anyway)."""
    lines: list[str] = []
    items = evidence if isinstance(evidence, list) else [evidence] if evidence else []
    for item in items[:MAX_EVIDENCE_LINES]:
        if isinstance(item, dict) and item.get("kind") == "archive_member":
            lines.append(_short(_archive_line(item)))
        elif isinstance(item, dict):
            label = _label(item)
            used = {"tier", "form", "field", "type", "value"} | ({"kind"} if item.get("kind") in (label, "hash") or
                                                                 not item.get("form") else set())
            value = item.get("value")
            rest = [f"{k} {_short(v)}" for k, v in item.items() if k not in used and v not in (None, "", [], {})]
            text = label + (": " if label and value not in (None, "") else "") + \
                (_short(value) if value not in (None, "") else "")
            if rest:
                text += (" (" if text else "") + ", ".join(rest) + (")" if text else "")
            lines.append(_short(text) or "(empty)")
        elif item not in (None, ""):
            lines.append(_short(item))
    if len(items) > MAX_EVIDENCE_LINES:
        lines.append(f"… and {len(items) - MAX_EVIDENCE_LINES} more")
    if not lines and tier is not None:
        lines.append(f"tier {tier} ({TIER_NAMES.get(tier, '?')}), no details stored")
    return lines


def list_matches(db: Database, *, bank: str | None = None, state: str | None = None, repo: str | None = None,
                 author: str | None = None, tier: int | None = None, limit: int = 1000,
                 offset: int = 0, repo_type: str | None = None) -> list[MatchView]:
    """Matches filtered by bank name, state, repo, repo type, uploader and tier, in uploader / repo /
    path order."""
    q = match_select()
    if bank:
        q = q.where(Bank.name == bank)
    if state:
        q = q.where(Match.state == state)
    if repo:
        q = q.where(HubRepo.repo_id == repo)
    if repo_type:
        q = q.where(HubRepo.repo_type == repo_type)
    if author:
        q = q.where(HubRepo.author == author)
    if tier:
        q = q.where(Match.tier == tier)
    q = q.order_by(HubRepo.author, HubRepo.repo_id, HubFile.path, Match.id).limit(limit).offset(offset)
    with db.session() as s:
        return match_views(s, q)


def group_by_uploader(rows: list[MatchView]) -> list[tuple[str, list[MatchView]]]:
    """Uploaders with the most matches first."""
    groups: dict[str, list[MatchView]] = defaultdict(list)
    for r in rows:
        groups[r.author or "(unknown)"].append(r)
    return sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
