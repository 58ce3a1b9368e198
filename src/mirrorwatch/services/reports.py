"""Takedown reports: confirmed mirrors, grouped per hub, rendered for the hub's abuse form.

Lifecycle of a report:

    confirmed matches ──build──> draft ──mark sent──> sent ──close──> closed
                                   │                    │
                        items can be taken out      its matches become `reported`; later
                                                    rechecks set them `gone` when the hub acts

A report belongs to one hub (building from mirrors on several hubs makes one report per hub). A
match sits in at most one report. The outcome of a report is read from its matches' states and the
status events recorded by `recheck`, so it stays current without anyone editing the report.

Renderings: plain text for a hub's report form (one numbered block of evidence per mirror, naming the
hub's policy clause and reporting route from the hub registry) and Markdown, both from editable
templates (services/report_render.py); CSV (one row per mirror) and JSON (the report with its items).
Renderings are text only: no model file or image is ever attached or embedded."""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from dataclasses import field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from mirrorwatch.errors import Conflict, InvalidInput, NotFound
from mirrorwatch.hubs.registry import hub_label, report_policy, report_route
from mirrorwatch.match.hits import similar_training_only
from mirrorwatch.match.states import REPORT_SENT, MatchState, system_move
from mirrorwatch.services import report_render
from mirrorwatch.services.audit import record
from mirrorwatch.services.exports import csv_safe
from mirrorwatch.services.matches import MatchView, match_select, match_views
from mirrorwatch.services.paging import Page, check_window
from mirrorwatch.services.serial import Utc, read_model
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import (
    Bank,
    Decision,
    HubRepo,
    Match,
    Report,
    ReportItem,
    StatusEvent,
    utcnow,
)
from mirrorwatch.store.outbox import MATCH_STATE, match_events

FORMATS = {"text": ("text/plain; charset=utf-8", "txt"), "markdown": ("text/markdown; charset=utf-8", "md"),
           "csv": ("text/csv; charset=utf-8", "csv"), "json": ("application/json", "json")}
MAX_TITLE = 300
MAX_ITEMS = 500
CSV_COLUMNS = ("report_id", "hub", "repo_type", "repo_id", "path", "url", "uploader", "sha256", "size", "first_seen",
               "last_seen", "repo_status", "file_status", "match_id", "match_state", "tier", "score",
               "evidence", "entry_id", "entry_name", "entry_url", "bank", "member", "archive")


@read_model
class ReportItemView:
    match: MatchView
    last_status: str | None = None
    last_status_at: Utc | None = None


@read_model
class ReportView:
    id: int
    hub: str
    hub_name: str
    title: str
    created_by: str
    created_at: Utc
    state: str
    sent_at: Utc | None
    note: str | None
    items: list[ReportItemView] = field(default_factory=list)
    outcome: dict[str, int] = field(default_factory=dict)


@read_model
class ReportSummary:
    id: int
    hub: str
    title: str
    state: str
    created_by: str
    created_at: Utc
    sent_at: Utc | None
    items: int
    outcome: dict[str, int] = field(default_factory=dict)


def hub_name(hub: str) -> str:
    """A hub's label from the hub registry (an unregistered name is shown as it is)."""
    return hub_label(hub)


def candidates(db: Database, *, hub: str | None = None, bank: str | None = None, uploader: str | None = None,
               limit: int | None = None, offset: int | None = None) -> Page[MatchView]:
    """Confirmed matches not yet in any report: what a reviewer can put into a new report (optionally
    only those on one hub, from one bank (by name) or by one uploader)."""
    limit, offset = check_window(limit, offset)
    conds = [Match.state == MatchState.CONFIRMED.value, Match.id.notin_(select(ReportItem.match_id))]
    if hub:
        conds.append(HubRepo.hub == hub)
    if bank:
        conds.append(Bank.name == bank)
    if uploader:
        conds.append(HubRepo.author == uploader)
    q = match_select().where(*conds)
    with db.session() as s:
        total = s.scalar(select(func.count()).select_from(q.with_only_columns(Match.id).subquery())) or 0
        items = match_views(s, q.order_by(HubRepo.hub, HubRepo.author, HubRepo.repo_id, Match.id)
                            .limit(limit).offset(offset))
    return Page(items, total, limit, offset)


def build_reports(db: Database, match_ids: list[int], user: str, *, title: str | None = None) -> list[ReportView]:
    """Make one draft report per hub from confirmed matches that are in no report yet."""
    ids = list(dict.fromkeys(int(i) for i in match_ids))
    if not ids:
        raise InvalidInput("select at least one confirmed mirror")
    if len(ids) > MAX_ITEMS:
        raise InvalidInput(f"at most {MAX_ITEMS} mirrors per report")
    title = (title or "").strip()
    if len(title) > MAX_TITLE:
        raise InvalidInput(f"a report title has at most {MAX_TITLE} characters")
    with db.session() as s:
        views = {v.id: v for v in match_views(s, match_select().where(Match.id.in_(ids)))}
        missing = [i for i in ids if i not in views]
        if missing:
            raise NotFound(f"no match with id {missing[0]}")
        not_confirmed = [views[i] for i in ids if views[i].state != MatchState.CONFIRMED]
        if not_confirmed:
            v = not_confirmed[0]
            raise Conflict(f"match {v.id} is {v.state}, not confirmed: only confirmed mirrors go into a report")
        leads = [views[i] for i in ids if similar_training_only(views[i].evidence)]
        if leads:  # (confirming refuses these; a match confirmed before that rule still cannot be reported)
            raise Conflict(f"match {leads[0].id} is only a similar-training lead (an independent model trained "
                           "alike), not a re-upload: it cannot go into a report")
        taken = s.execute(select(ReportItem.match_id, ReportItem.report_id).where(ReportItem.match_id.in_(ids))).first()
        if taken:
            raise Conflict(f"match {taken[0]} is already in report #{taken[1]}")
        by_hub: dict[str, list[int]] = defaultdict(list)
        for i in ids:
            by_hub[views[i].hub].append(i)
        made = []
        for hub, hub_ids in sorted(by_hub.items()):
            n = len(hub_ids)
            rep = Report(hub=hub, created_by=user,
                         title=title or f"{n} re-upload{'s' if n != 1 else ''} of removed models on {hub_name(hub)}")
            s.add(rep)
            s.flush()
            for mid in hub_ids:
                s.add(ReportItem(report_id=rep.id, match_id=mid))
            record(s, user, "report.create", "report", rep.id, hub=hub, matches=hub_ids)
            made.append(rep.id)
    return [get_report(db, rid) for rid in made]


def _summary_outcome(states: list[str]) -> dict[str, int]:
    return dict(sorted(Counter(states).items()))


def _report(s, report_id: int, state: str | None = None, conflict: str = "") -> Report:
    """The report, in the given state (else Conflict: `conflict` with {id} and {state} filled in)."""
    rep = s.get(Report, report_id)
    if rep is None:
        raise NotFound(f"no report with id {report_id}")
    if state is not None and rep.state != state:
        raise Conflict(conflict.format(id=report_id, state=rep.state))
    return rep


def _note(note: str | None) -> str | None:
    note = (note or "").strip() or None
    if note and len(note) > 2000:
        raise InvalidInput("a note has at most 2000 characters")
    return note


def get_report(db: Database, report_id: int) -> ReportView:
    with db.session() as s:
        rep = _report(s, report_id)
        ids = list(s.scalars(select(ReportItem.match_id).where(ReportItem.report_id == report_id)))
        views = match_views(s, match_select().where(Match.id.in_(ids)).order_by(Match.id)) if ids else []
        last: dict[tuple[str, int], tuple[str, datetime]] = {}
        file_ids = [v.file_id for v in views]
        repo_pks = list({v.repo_pk for v in views})
        if views:
            for ev in s.scalars(
                select(StatusEvent)
                .where((StatusEvent.hub_file_id.in_(file_ids)) | (StatusEvent.repo_pk.in_(repo_pks)
                                                                  & StatusEvent.hub_file_id.is_(None)))
                .order_by(StatusEvent.at, StatusEvent.id)
            ):
                if ev.hub_file_id is not None:
                    last[("f", ev.hub_file_id)] = (ev.status, ev.at)
                else:
                    last[("r", ev.repo_pk)] = (ev.status, ev.at)
        items = []
        for v in views:
            cands = [x for x in (last.get(("f", v.file_id)), last.get(("r", v.repo_pk))) if x]
            st = max(cands, key=lambda x: x[1]) if cands else None
            items.append(ReportItemView(v, st[0] if st else None, st[1] if st else None))
        return ReportView(rep.id, rep.hub, hub_name(rep.hub), rep.title, rep.created_by, rep.created_at, rep.state,
                          rep.sent_at, rep.note, items, _summary_outcome([v.state for v in views]))


def list_reports(db: Database, *, limit: int | None = None, offset: int | None = None,
                 state: str | None = None) -> Page[ReportSummary]:
    limit, offset = check_window(limit, offset)
    conds = [Report.state == state] if state else []
    with db.session() as s:
        total = s.scalar(select(func.count()).select_from(Report).where(*conds)) or 0
        reps = list(s.scalars(select(Report).where(*conds).order_by(Report.id.desc()).limit(limit).offset(offset)))
        states: dict[int, list[str]] = defaultdict(list)
        if reps:
            for rid, st in s.execute(
                select(ReportItem.report_id, Match.state).join(Match, Match.id == ReportItem.match_id)
                .where(ReportItem.report_id.in_([r.id for r in reps]))
            ):
                states[rid].append(st)
        items = [ReportSummary(r.id, r.hub, r.title, r.state, r.created_by, r.created_at, r.sent_at,
                               len(states[r.id]), _summary_outcome(states[r.id])) for r in reps]
    return Page(items, total, limit, offset)


def remove_item(db: Database, report_id: int, match_id: int, user: str) -> ReportView:
    """Take a mirror out of a draft report (it stays confirmed and can go into another one)."""
    with db.session() as s:
        _report(s, report_id, "draft", "report #{id} is {state}: only draft reports can change")
        item = s.scalar(select(ReportItem).where(ReportItem.report_id == report_id, ReportItem.match_id == match_id))
        if item is None:
            raise NotFound(f"match {match_id} is not in report #{report_id}")
        s.delete(item)
        record(s, user, "report.remove_item", "report", report_id, match=match_id)
    return get_report(db, report_id)


def mark_sent(db: Database, report_id: int, user: str, *, note: str | None = None) -> ReportView:
    """The report was sent to the hub: its mirrors become `reported` (decision and audit rows)."""
    note = _note(note)
    now = utcnow()
    with db.session() as s:
        rep = _report(s, report_id, "draft", "report #{id} is already {state}")
        ids = list(s.scalars(select(ReportItem.match_id).where(ReportItem.report_id == report_id)))
        if not ids:
            raise Conflict(f"report #{report_id} has no mirrors left")
        rep.state, rep.sent_at = "sent", now
        if note:
            rep.note = note
        changes = {}
        for m in s.scalars(select(Match).where(Match.id.in_(ids))):
            new_state = system_move(REPORT_SENT, m.state)
            if new_state is not None:
                changes[m.id] = {"from": m.state, "to": new_state, "by": "reviewer", "reason": REPORT_SENT,
                                 "report_id": report_id, "names": {"reviewer": user}}
                m.state, m.updated_at = new_state, now
                s.add(Decision(match_id=m.id, user=user, state=new_state, note=f"report #{report_id}", at=now))
        s.flush()
        match_events(s, MATCH_STATE, list(changes), changes=changes)  # the outbox, in this transaction
        record(s, user, "report.sent", "report", report_id, matches=ids, **({"note": note} if note else {}))
    return get_report(db, report_id)


def close_report(db: Database, report_id: int, user: str, *, note: str | None = None) -> ReportView:
    """Close a sent report (the hub answered, or there is nothing more to wait for)."""
    note = _note(note)
    with db.session() as s:
        rep = _report(s, report_id, "sent", "report #{id} is {state}: only sent reports can be closed")
        rep.state = "closed"
        if note:
            rep.note = note
        record(s, user, "report.close", "report", report_id, **({"note": note} if note else {}))
    return get_report(db, report_id)


# --- renderings ------------------------------------------------------------------------------------

def render_text(rep: ReportView) -> str:
    """Plain text for a hub's abuse/report form: a short request, the hub's policy clause and reporting
    route, then one evidence block per mirror (template `report.txt.j2`, user-editable)."""
    return report_render.render(rep, "text")


def render_markdown(rep: ReportView) -> str:
    """The same as Markdown, for a ticket or a form that takes it (template `report.md.j2`)."""
    return report_render.render(rep, "markdown")


def _row(rep: ReportView, it: ReportItemView) -> dict[str, Any]:
    m = it.match
    return {
        "report_id": rep.id, "hub": m.hub, "repo_type": m.repo_type, "repo_id": m.repo_id, "path": m.path, "url": m.url or "",
        "uploader": m.author or "", "sha256": m.sha256 or "", "size": m.size if m.size is not None else "",
        "first_seen": m.first_seen.isoformat() + "Z", "last_seen": m.last_seen.isoformat() + "Z",
        "repo_status": m.repo_status, "file_status": m.file_status, "match_id": m.id, "match_state": m.state,
        "tier": m.tier, "score": m.score, "evidence": "; ".join(m.why), "entry_id": m.entry_id,
        "entry_name": m.entry_name, "entry_url": m.entry_url or "", "bank": m.bank, "member": m.member or "",
        "archive": m.archive or "",
    }


def render_csv(rep: ReportView) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for it in rep.items:
        w.writerow({k: csv_safe(v) for k, v in _row(rep, it).items()})
    return buf.getvalue()


def render_json(rep: ReportView) -> dict[str, Any]:
    return {
        "id": rep.id, "hub": rep.hub, "title": rep.title, "state": rep.state, "created_by": rep.created_by,
        "created_at": rep.created_at.isoformat() + "Z",
        "sent_at": rep.sent_at.isoformat() + "Z" if rep.sent_at else None, "note": rep.note,
        "outcome": rep.outcome, "report_route": report_route(rep.hub), "report_policy": report_policy(rep.hub),
        "items": [{**_row(rep, it), "evidence": it.match.evidence, "why": it.match.why,
                   "last_status": it.last_status,
                   "last_status_at": it.last_status_at.isoformat() + "Z" if it.last_status_at else None}
                  for it in rep.items],
    }


def export_report(db: Database, report_id: int, fmt: str) -> tuple[str, str, str]:
    """(content, media type, file name) of a report in text, markdown, csv or json."""
    import json

    if fmt not in FORMATS:
        raise InvalidInput(f"unknown format {fmt!r}: use {', '.join(FORMATS)}")
    rep = get_report(db, report_id)
    media, ext = FORMATS[fmt]
    if fmt == "text":
        body = render_text(rep)
    elif fmt == "markdown":
        body = render_markdown(rep)
    elif fmt == "csv":
        body = render_csv(rep)
    else:
        body = json.dumps(render_json(rep), indent=2, ensure_ascii=False)
    return body, media, f"mirrorwatch-report-{rep.id}.{ext}"
