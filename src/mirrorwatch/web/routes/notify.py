"""Pages: notification channels per bank (webhooks, mailboxes), "send test", the delivery log (admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from mirrorwatch.errors import InvalidInput
from mirrorwatch.services import notify
from mirrorwatch.services.banks import list_banks
from mirrorwatch.store.db import Database
from mirrorwatch.web.auth import ADMIN, Principal
from mirrorwatch.web.render import redirect, render
from mirrorwatch.web.routes.common import DB, PAGE_SIZE, IdPath, Offset, OptId

router = APIRouter(include_in_schema=False)


def _page(request: Request, db: Database, bank: int | None, status_code: int = 200, **extra):
    return render(request, "notify.html", status_code=status_code,
                  channels=notify.list_channels(db, bank=bank), banks=list_banks(db), bank=bank,
                  kinds=notify.EVENT_KINDS, **extra)


@router.get("/admin/notify")
def notify_page(request: Request, db: DB, bank: OptId = None, p: Principal = ADMIN):
    return _page(request, db, bank)


@router.post("/admin/notify")
async def notify_add(request: Request, db: DB, p: Principal = ADMIN):
    form = await request.form()
    bank = str(form.get("bank") or "")
    if not bank.isdigit():
        raise InvalidInput("choose a bank")
    made = await run_in_threadpool(lambda: notify.add_channel(
        db, int(bank), str(form.get("target") or ""), kinds=[str(k) for k in form.getlist("kinds")] or None,
        digest=str(form.get("digest") or "") or None, include_names=bool(form.get("include_names")), user=p.name))
    return _page(request, db, int(bank), created=made)


@router.post("/admin/notify/{channel_id}")
async def notify_change(request: Request, db: DB, channel_id: IdPath, p: Principal = ADMIN):
    form = await request.form()
    action = str(form.get("action") or "")
    back = f"/admin/notify?bank={int(form['bank'])}" if str(form.get("bank") or "").isdigit() else "/admin/notify"
    if action == "test":
        result = await run_in_threadpool(lambda: notify.send_test(db, channel_id, user=p.name))
        c = notify.get_channel(db, channel_id)
        return _page(request, db, c.bank_id, tested=result)
    if action == "remove":
        c = await run_in_threadpool(lambda: notify.remove_channel(db, channel_id, user=p.name))
        return redirect(request, back, f"Channel {c.id} ({c.target}) removed.")
    if action in ("pause", "resume"):
        c = await run_in_threadpool(lambda: notify.update_channel(db, channel_id, active=action == "resume",
                                                                  user=p.name))
        return redirect(request, back, f"Channel {c.id} {'resumed' if c.active else 'paused'}.")
    raise InvalidInput("unknown channel action")


@router.get("/admin/notify/log")
def notify_log_page(request: Request, db: DB, bank: OptId = None, channel: OptId = None,
                    status: Annotated[str, Query(max_length=20)] = "", offset: Offset = 0, p: Principal = ADMIN):
    page = notify.list_deliveries(db, bank=bank, channel_id=channel, status=status or None, limit=PAGE_SIZE,
                                  offset=offset)
    params = {k: v for k, v in (("bank", bank), ("channel", channel), ("status", status)) if v}
    return render(request, "notify_log.html", page=page, params=params, statuses=notify.STATUSES)
