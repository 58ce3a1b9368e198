"""Notifications: a bank's channels (webhooks, mailboxes) and the deliverer that empties the outbox.

Events are written by the changes they report (store/outbox.py), each with one delivery row per
channel that listens. `deliver_due` sends what is due and records the outcome:

  * claimed first: each delivery (or digest batch) is taken with a row-level compare-and-set
    (pending and due, or sending by a dead or expired holder -> sending by me), so two deliverers
    running at once never send one delivery twice, and a killed one's claims are taken over;
  * in order per match: a delivery is not claimed while an earlier event of the same match to the
    same channel is still pending or sending;
  * at least once: a deliverer killed after sending but before recording sends again; the message
    keeps its id (X-Mirrorwatch-Event-Id), so the receiver deduplicates; recorded once;
  * retried with exponential backoff (base * 2^(attempts-1), capped), given up after max_attempts
    (status failed, shown in the log; a delivery given up no longer holds back its match's later ones);
  * digest channels get one message per interval listing their events (one batch at a time).

Webhooks are JSON POSTs signed with HMAC-SHA256 over timestamp and body (mirrorwatch/webhooks.py);
email goes over SMTP with settings from the environment only. Messages carry ids, states,
hub/repo/path and links into the app (and to the hub's repo page); names only for channels with
include_names. No model file or image is ever attached or linked for download."""

from __future__ import annotations

import json
import os
import re
import secrets
import smtplib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import httpx
from sqlalchemy import and_, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from mirrorwatch.errors import InvalidInput, MirrorwatchError, NotFound
from mirrorwatch.hubs.registry import web_url
from mirrorwatch.services.audit import record
from mirrorwatch.services.paging import Page, check_window
from mirrorwatch.services.serial import Utc, read_model
from mirrorwatch.store.db import Database
from mirrorwatch.store.locks import _dead_here, holder_id
from mirrorwatch.store.models import Bank, NotifyChannel, NotifyDelivery, NotifyEvent, utcnow
from mirrorwatch.store.outbox import EVENT_KINDS, TEST
from mirrorwatch.webhooks import new_secret, sign_headers

ENV_PUBLIC_URL = "MIRRORWATCH_PUBLIC_URL"
ENV_SMTP = {k: f"MIRRORWATCH_SMTP_{k.upper()}" for k in ("host", "port", "user", "password", "from", "starttls")}
TRANSPORTS = ("webhook", "email")
STATUSES = ("pending", "sending", "delivered", "failed")
MIN_DIGEST_S = 60
MAX_DIGEST_S = 7 * 86400
MAX_DIGEST_EVENTS = 500
KEEP = object()  # update_channel: leave the digest setting as it is
USER_AGENT = "mirrorwatch-notify/1"
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")


@dataclass
class RetryPolicy:
    """How deliveries are retried: after attempt n, wait min(cap, base * 2^(n-1)) seconds; give up
    after max_attempts. A claim lasts lease_s (longer than one send can take with timeout_s)."""

    base_s: float = 10.0
    cap_s: float = 3600.0
    max_attempts: int = 25
    timeout_s: float = 10.0
    lease_s: float = 60.0

    def delay(self, attempts: int) -> float:
        return min(self.cap_s, self.base_s * (2 ** max(0, attempts - 1)))


# --- read models -----------------------------------------------------------------------------------

@read_model
class ChannelView:
    id: int
    bank_id: int
    bank: str
    transport: str
    target: str
    kinds: list[str]
    digest_s: int | None
    active: bool
    include_names: bool
    created_by: str
    created_at: Utc
    pending: int = 0
    delivered: int = 0
    failed: int = 0


@read_model
class ChannelCreated:
    channel: ChannelView
    secret: str | None  # the webhook's signing secret: shown only in this answer


@read_model
class DeliveryView:
    id: int
    channel_id: int
    bank_id: int
    transport: str
    event_id: int
    kind: str
    match_id: int | None
    status: str
    attempts: int
    next_attempt_at: Utc | None
    last_error: str | None
    delivered_at: Utc | None
    created_at: Utc
    batch: str | None = None


# --- settings --------------------------------------------------------------------------------------

def parse_interval(value: str | int | None) -> int | None:
    """A digest interval: None/""/0/"immediate" for none, else seconds ("900", "15m", "1h", "1d")."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "0", "immediate", "none")):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    else:
        m = re.fullmatch(r"\s*(\d{1,7})\s*([smhd]?)\s*", str(value).lower())
        if not m:
            raise InvalidInput(f"a digest interval is seconds or a number with s, m, h or d (got {str(value)[:40]!r})")
        seconds = int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    if seconds == 0:
        return None
    if not MIN_DIGEST_S <= seconds <= MAX_DIGEST_S:
        raise InvalidInput(f"a digest interval is between {MIN_DIGEST_S} s and {MAX_DIGEST_S // 86400} days")
    return seconds


def _transport(target: str) -> str:
    target = (target or "").strip()
    if len(target) > 2000 or any(ord(c) < 33 for c in target):
        raise InvalidInput("a channel target is a webhook URL or an email address (no spaces, at most 2000 characters)")
    if target.lower().startswith(("http://", "https://")):
        try:
            url = httpx.URL(target)
        except Exception:  # httpx.InvalidURL and friends: a bad port, bad characters
            raise InvalidInput(f"not a usable webhook URL: {target[:100]!r}") from None
        if not url.host or (url.port is not None and not 0 < url.port < 65536):
            raise InvalidInput(f"not a usable webhook URL: {target[:100]!r}")
        return "webhook"
    if target.lower().startswith("mailto:"):
        target = target[7:]
    if _EMAIL.match(target) and len(target) <= 254:
        return "email"
    raise InvalidInput(f"a channel target is an http(s) webhook URL or an email address (got {target[:100]!r})")


def _kinds(kinds: list[str] | str | None) -> list[str]:
    if kinds is None or kinds == "" or kinds == []:
        return list(EVENT_KINDS)
    if isinstance(kinds, str):
        kinds = [k for k in re.split(r"[,\s]+", kinds) if k]
    bad = [k for k in kinds if k not in EVENT_KINDS]
    if bad:
        raise InvalidInput(f"unknown event kind {bad[0][:40]!r} (kinds: {', '.join(EVENT_KINDS)})")
    return [k for k in EVENT_KINDS if k in kinds]


def _bank(s: Session, ref: int | str) -> Bank:
    as_id = int(ref) if isinstance(ref, int) or (str(ref).isdigit() and len(str(ref)) < 12) else None
    bank = s.get(Bank, as_id) if as_id is not None and 0 < as_id < 2**31 else None
    if bank is None and isinstance(ref, str):
        bank = s.scalar(select(Bank).where(Bank.name == ref))
    if bank is None:
        raise NotFound(f"no bank {ref!r}")
    return bank


def _counts(s: Session, ids: list[int]) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = {}
    if ids:
        for cid, status, n in s.execute(select(NotifyDelivery.channel_id, NotifyDelivery.status, func.count())
                                        .where(NotifyDelivery.channel_id.in_(ids))
                                        .group_by(NotifyDelivery.channel_id, NotifyDelivery.status)):
            out.setdefault(cid, {})[status] = n
    return out


def _view(c: NotifyChannel, bank: str, counts: dict[str, int] | None = None) -> ChannelView:
    counts = counts or {}
    return ChannelView(c.id, c.bank_id, bank, c.transport, c.target, list(c.kinds or []), c.digest_s, c.active,
                       c.include_names, c.created_by, c.created_at,
                       counts.get("pending", 0) + counts.get("sending", 0), counts.get("delivered", 0),
                       counts.get("failed", 0))


def add_channel(db: Database, bank: int | str, target: str, *, kinds: list[str] | str | None = None,
                digest: str | int | None = None, include_names: bool = False, user: str = "cli") -> ChannelCreated:
    """Add a webhook or mailbox to a bank. A webhook gets a new signing secret, returned only here."""
    transport = _transport(target)
    target = target.strip()
    if target.lower().startswith("mailto:"):
        target = target[7:]
    kinds_ = _kinds(kinds)
    digest_s = parse_interval(digest)
    secret = new_secret() if transport == "webhook" else None
    now = utcnow()
    with db.session() as s:
        b = _bank(s, bank)
        c = NotifyChannel(bank_id=b.id, transport=transport, target=target, kinds=kinds_, digest_s=digest_s,
                          next_digest_at=now + timedelta(seconds=digest_s) if digest_s else None, active=True,
                          include_names=bool(include_names), secret=secret, created_by=user[:100], created_at=now)
        s.add(c)
        s.flush()
        record(s, user, "notify.add", "notify_channel", c.id, bank=b.id, transport=transport, kinds=kinds_,
               digest_s=digest_s, include_names=bool(include_names))
        return ChannelCreated(_view(c, b.name), secret)


def list_channels(db: Database, *, bank: int | str | None = None) -> list[ChannelView]:
    with db.session() as s:
        q = select(NotifyChannel, Bank.name).join(Bank, Bank.id == NotifyChannel.bank_id).order_by(NotifyChannel.id)
        if bank is not None:
            q = q.where(NotifyChannel.bank_id == _bank(s, bank).id)
        rows = list(s.execute(q))
        counts = _counts(s, [c.id for c, _ in rows])
        return [_view(c, name, counts.get(c.id)) for c, name in rows]


def get_channel(db: Database, channel_id: int) -> ChannelView:
    with db.session() as s:
        row = s.execute(select(NotifyChannel, Bank.name).join(Bank, Bank.id == NotifyChannel.bank_id)
                        .where(NotifyChannel.id == channel_id)).first()
        if row is None:
            raise NotFound(f"no notification channel {channel_id}")
        return _view(row[0], row[1], _counts(s, [channel_id]).get(channel_id))


def update_channel(db: Database, channel_id: int, *, active: bool | None = None, kinds: list[str] | str | None = None,
                   digest: str | int | None | object = KEEP, include_names: bool | None = None,
                   user: str = "cli") -> ChannelView:
    """Change a channel's kinds, digest interval, include_names or active flag."""
    with db.session() as s:
        c = s.get(NotifyChannel, channel_id)
        if c is None:
            raise NotFound(f"no notification channel {channel_id}")
        changed: dict[str, Any] = {}
        if active is not None:
            c.active = changed["active"] = bool(active)
        if kinds is not None:
            c.kinds = changed["kinds"] = _kinds(kinds)
        if digest is not KEEP:
            c.digest_s = changed["digest_s"] = parse_interval(digest)  # type: ignore[arg-type]
            c.next_digest_at = utcnow() + timedelta(seconds=c.digest_s) if c.digest_s else None
        if include_names is not None:
            c.include_names = changed["include_names"] = bool(include_names)
        record(s, user, "notify.change", "notify_channel", channel_id, **changed)
    return get_channel(db, channel_id)


def remove_channel(db: Database, channel_id: int, *, user: str = "cli") -> ChannelView:
    """Remove a channel (its pending deliveries are dropped; its log goes with it)."""
    view = get_channel(db, channel_id)
    with db.session() as s:
        s.execute(delete(NotifyChannel).where(NotifyChannel.id == channel_id))
        record(s, user, "notify.remove", "notify_channel", channel_id, bank=view.bank_id, transport=view.transport)
    return view


def list_deliveries(db: Database, *, bank: int | str | None = None, channel_id: int | None = None,
                    status: str | None = None, limit: int | None = None, offset: int | None = None) -> Page[DeliveryView]:
    """The delivery log, newest first."""
    limit, offset = check_window(limit, offset)
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"a delivery status is one of {', '.join(STATUSES)}")
    with db.session() as s:
        q = (select(NotifyDelivery, NotifyEvent.kind, NotifyChannel.bank_id, NotifyChannel.transport)
             .join(NotifyEvent, NotifyEvent.id == NotifyDelivery.event_id)
             .join(NotifyChannel, NotifyChannel.id == NotifyDelivery.channel_id))
        if bank is not None:
            q = q.where(NotifyChannel.bank_id == _bank(s, bank).id)
        if channel_id is not None:
            q = q.where(NotifyDelivery.channel_id == channel_id)
        if status is not None:
            q = q.where(NotifyDelivery.status == status)
        total = s.scalar(select(func.count()).select_from(q.subquery()))
        rows = s.execute(q.order_by(NotifyDelivery.id.desc()).limit(limit).offset(offset))
        items = [_delivery_view(d, kind, bank_id, transport) for d, kind, bank_id, transport in rows]
    return Page(items, total or 0, limit, offset)


def _delivery_view(d: NotifyDelivery, kind: str, bank_id: int, transport: str) -> DeliveryView:
    return DeliveryView(d.id, d.channel_id, bank_id, transport, d.event_id, kind, d.match_id, d.status, d.attempts,
                        d.next_attempt_at if d.status == "pending" else None, d.last_error, d.delivered_at,
                        d.created_at, d.batch)


def get_delivery(db: Database, delivery_id: int) -> DeliveryView:
    with db.session() as s:
        row = s.execute(select(NotifyDelivery, NotifyEvent.kind, NotifyChannel.bank_id, NotifyChannel.transport)
                        .join(NotifyEvent, NotifyEvent.id == NotifyDelivery.event_id)
                        .join(NotifyChannel, NotifyChannel.id == NotifyDelivery.channel_id)
                        .where(NotifyDelivery.id == delivery_id)).first()
        if row is None:
            raise NotFound(f"no delivery {delivery_id}")
        return _delivery_view(*row)


# --- messages --------------------------------------------------------------------------------------

def _iso(d: datetime | None) -> str | None:
    return d.isoformat(timespec="seconds") + "Z" if d is not None else None


def _app_link(path: str) -> str:
    base = os.environ.get(ENV_PUBLIC_URL, "").rstrip("/")
    return f"{base}{path}"


def event_body(ev: NotifyEvent, *, include_names: bool) -> dict[str, Any]:
    """What a channel is told about one event: the stored payload, names only with include_names,
    links into the app and to the mirror's repo page (never to a file download)."""
    payload = dict(ev.payload or {})
    names = payload.pop("names", None)
    body: dict[str, Any] = {"id": str(ev.id), "kind": ev.kind, "created_at": _iso(ev.created_at),
                            "bank_id": ev.bank_id, **payload}
    links: dict[str, str] = {}
    if ev.match_id is not None:
        links["match"] = _app_link(f"/matches/{ev.match_id}")
    mirror = payload.get("mirror")
    if isinstance(mirror, dict) and mirror.get("hub") and mirror.get("repo_id"):
        page = web_url(str(mirror["hub"]), str(mirror["repo_id"]))
        if page and page.startswith(("http://", "https://")):
            links["repo_page"] = page
    run = payload.get("scan_run")
    if isinstance(run, dict) and run.get("id"):
        links["scan"] = _app_link(f"/scans/{run['id']}")
    if ev.bank_id is not None:
        links["bank"] = _app_link(f"/banks/{ev.bank_id}")
    body["links"] = links
    if include_names and names:
        body["names"] = names
    return body


def _summary_line(body: dict[str, Any]) -> str:
    kind = body.get("kind")
    m, mirror, ch = body.get("match") or {}, body.get("mirror") or {}, body.get("change") or {}
    where = f"{mirror.get('hub')}:{mirror.get('repo_id')}/{mirror.get('path')}" if mirror else ""
    name = (body.get("names") or {}).get("entry")
    who = f" ({name})" if name else ""
    if kind == "match.new":
        return f"new match #{m.get('id')}: entry {m.get('entry_id')}{who} in {where} (tier {m.get('tier')}, score {m.get('score')})"
    if kind in ("match.state", "mirror.gone"):
        what = "mirror gone" if kind == "mirror.gone" else "match"
        return (f"{what} #{m.get('id')}: {ch.get('from')} -> {ch.get('to')} ({ch.get('reason')}"
                f"{', ' + ch['detail'] if ch.get('detail') else ''}) entry {m.get('entry_id')}{who} in {where}")
    if kind == "sweep.failed":
        run = body.get("scan_run") or {}
        return f"sweep failed: run {run.get('id')} of {run.get('source')}: {run.get('reason')}"
    if kind == TEST:
        return f"test message for channel {body.get('channel_id')}"
    return str(kind)


def _email(channel: NotifyChannel, subject: str, bodies: list[dict[str, Any]], message_id: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = os.environ.get(ENV_SMTP["from"]) or "mirrorwatch@localhost"
    msg["To"] = channel.target
    domain = (msg["From"].split("@")[-1].strip("> ") or "localhost")[:100]
    msg["Message-ID"] = make_msgid(idstring=message_id.replace("@", "-"), domain=domain)
    msg["X-Mirrorwatch-Event-Id"] = message_id
    lines = []
    for b in bodies:
        lines.append(f"* {_summary_line(b)}")
        for k, v in (b.get("links") or {}).items():
            lines.append(f"    {k}: {v}")
    lines += ["", "-- ", f"mirrorwatch, bank {channel.bank_id}, channel {channel.id}. "
              "Open the links to review; no model file or image is attached."]
    msg.set_content("\n".join(lines) + "\n")
    return msg


def _smtp_send(msg: EmailMessage, timeout: float) -> None:
    host = os.environ.get(ENV_SMTP["host"])
    if not host:
        raise MirrorwatchError(f"no SMTP server configured (set {ENV_SMTP['host']})")
    try:
        port = int(os.environ.get(ENV_SMTP["port"]) or 587)
    except ValueError:
        raise MirrorwatchError(f"{ENV_SMTP['port']} must be a port number") from None
    starttls = (os.environ.get(ENV_SMTP["starttls"]) or "1").strip().lower() not in ("0", "false", "no", "off")
    with smtplib.SMTP(host, port, timeout=timeout) as smtp:
        smtp.ehlo()
        if starttls:
            smtp.starttls()
            smtp.ehlo()
        user = os.environ.get(ENV_SMTP["user"])
        if user:
            smtp.login(user, os.environ.get(ENV_SMTP["password"]) or "")
        smtp.send_message(msg)


@dataclass
class Outgoing:
    """One message to one channel: a single event, or a digest listing several."""

    channel: NotifyChannel
    message_id: str
    bodies: list[dict[str, Any]]
    digest: bool

    def json_body(self) -> dict[str, Any]:
        if not self.digest:
            return self.bodies[0]
        return {"id": self.message_id, "kind": "digest", "bank_id": self.channel.bank_id,
                "channel_id": self.channel.id, "count": len(self.bodies), "events": self.bodies}

    def subject(self) -> str:
        if self.digest:
            return f"[mirrorwatch] digest: {len(self.bodies)} events (bank {self.channel.bank_id})"
        return f"[mirrorwatch] {_summary_line(self.bodies[0])}"[:200]


Sender = Callable[[Outgoing, RetryPolicy], None]


class Transport:
    """The default sender: webhooks as signed JSON POSTs (one keep-alive client for a pass of the
    deliverer), email over SMTP. Raises on any failure; the caller records it and retries later."""

    def __init__(self) -> None:
        self._client: httpx.Client | None = None

    def __call__(self, out: Outgoing, policy: RetryPolicy) -> None:
        if out.channel.transport == "webhook":
            body = json.dumps(out.json_body(), separators=(",", ":"), sort_keys=True).encode()
            headers = {**sign_headers(out.channel.secret or "", body, out.message_id), "User-Agent": USER_AGENT}
            if self._client is None:
                self._client = httpx.Client(timeout=policy.timeout_s, follow_redirects=False, trust_env=False)
            r = self._client.post(out.channel.target, content=body, headers=headers)
            if not 200 <= r.status_code < 300:
                raise MirrorwatchError(f"HTTP {r.status_code}: {r.text[:200]}")
        elif out.channel.transport == "email":
            _smtp_send(_email(out.channel, out.subject(), out.bodies, out.message_id), policy.timeout_s)
        else:
            raise MirrorwatchError(f"unknown transport {out.channel.transport!r}")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def send(out: Outgoing, policy: RetryPolicy) -> None:
    """Send one message on its own connection (see Transport)."""
    t = Transport()
    try:
        t(out, policy)
    finally:
        t.close()


def _error_text(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, MirrorwatchError) else f"{type(exc).__name__}: {exc}"
    return text[:500]


# --- the deliverer ---------------------------------------------------------------------------------

def _dead_holders(s: Session) -> list[str]:
    """Holders of claims that are processes of this host that no longer exist (SIGKILLed)."""
    holders = s.scalars(select(NotifyDelivery.claimed_by).where(NotifyDelivery.status == "sending").distinct())
    return [h for h in holders if h and _dead_here(h)]


def _claimable(now: datetime, dead: list[str]):
    """A delivery that may be claimed now: pending and due, or sending under a lapsed claim."""
    lapsed = or_(NotifyDelivery.claimed_until < now, NotifyDelivery.claimed_by.in_(dead)) if dead \
        else NotifyDelivery.claimed_until < now
    return or_(and_(NotifyDelivery.status == "pending", NotifyDelivery.next_attempt_at <= now),
               and_(NotifyDelivery.status == "sending", lapsed))


def _earlier_open():
    """An earlier event of the same match to the same channel is not delivered yet."""
    d2 = aliased(NotifyDelivery)
    return exists().where(d2.channel_id == NotifyDelivery.channel_id, d2.match_id == NotifyDelivery.match_id,
                          d2.event_id < NotifyDelivery.event_id, d2.status.in_(("pending", "sending")))


def _claim_now(db: Database, delivery_id: int, me: str, now: datetime, policy: RetryPolicy) -> bool:
    """Claim one delivery whatever its state (a test event, made just now for this)."""
    with db.write_session() as s:
        return s.execute(update(NotifyDelivery).where(NotifyDelivery.id == delivery_id)
                         .values(status="sending", claimed_by=me, claimed_until=now + timedelta(seconds=policy.lease_s),
                                 attempts=NotifyDelivery.attempts + 1)
                         .execution_options(synchronize_session=False)).rowcount == 1


def _claim(db: Database, ids: list[int], me: str, now: datetime, dead: list[str], policy: RetryPolicy) -> dict[int, int]:
    """Claim these deliveries where they are still claimable and first in their match's queue (one
    compare-and-set UPDATE); returns {delivery id: attempts, counting this one} of those I got."""
    until = max(now, utcnow()) + timedelta(seconds=policy.lease_s)
    with db.write_session() as s:
        rows = s.execute(update(NotifyDelivery)
                         .where(NotifyDelivery.id.in_(ids), _claimable(now, dead), ~_earlier_open())
                         .values(status="sending", claimed_by=me, claimed_until=until,
                                 attempts=NotifyDelivery.attempts + 1)
                         .returning(NotifyDelivery.id, NotifyDelivery.attempts)
                         .execution_options(synchronize_session=False)).all()
    return {did: attempts for did, attempts in rows}


def _release(db: Database, ids: list[int], me: str) -> None:
    """Give back claims I did not use (their channel went down in this pass): no attempt counted."""
    if ids:
        with db.write_session() as s:
            s.execute(update(NotifyDelivery).where(NotifyDelivery.id.in_(ids), NotifyDelivery.claimed_by == me,
                                                   NotifyDelivery.status == "sending")
                      .values(status="pending", claimed_by=None, claimed_until=None,
                              attempts=NotifyDelivery.attempts - 1)
                      .execution_options(synchronize_session=False))


def _outcome(error: str | None, attempts: int, policy: RetryPolicy, *, give_up: bool = False) -> dict[str, Any]:
    if error is None:
        return {"status": "delivered", "delivered_at": utcnow(), "last_error": None}
    if give_up or attempts >= policy.max_attempts:
        return {"status": "failed", "last_error": error}
    return {"status": "pending", "last_error": error,
            "next_attempt_at": utcnow() + timedelta(seconds=policy.delay(attempts))}


def _finish(db: Database, where: list, me: str, error: str | None, policy: RetryPolicy, *,
            give_up: bool = False) -> int:
    """Record the outcome of a send for the claimed rows `where` (only while the claim is still mine)."""
    with db.write_session() as s:
        rows = list(s.execute(select(NotifyDelivery.id, NotifyDelivery.attempts)
                              .where(*where, NotifyDelivery.status == "sending", NotifyDelivery.claimed_by == me)))
        for did, attempts in rows:
            values = _outcome(error, attempts, policy, give_up=give_up)
            s.execute(update(NotifyDelivery).where(NotifyDelivery.id == did, NotifyDelivery.claimed_by == me,
                                                   NotifyDelivery.status == "sending")
                      .values(claimed_by=None, claimed_until=None, **values)
                      .execution_options(synchronize_session=False))
    return len(rows)


def _load(db: Database, delivery_ids: list[int]) -> tuple[NotifyChannel, list[NotifyEvent]]:
    with db.session() as s:
        rows = list(s.execute(select(NotifyDelivery.channel_id, NotifyEvent)
                              .join(NotifyEvent, NotifyEvent.id == NotifyDelivery.event_id)
                              .where(NotifyDelivery.id.in_(delivery_ids)).order_by(NotifyEvent.id)))
        channel = s.get(NotifyChannel, rows[0][0])
        s.expunge(channel)
        events = [ev for _, ev in rows]
        for ev in events:
            s.expunge(ev)
    return channel, events


def _send_claimed(db: Database, ids: list[int], me: str, policy: RetryPolicy, sender: Sender, *,
                  batch: str | None = None, give_up_on_error: bool = False) -> str | None:
    """Send what I claimed (one event, or a digest batch) and record it; returns the error or None."""
    channel, events = _load(db, ids)
    bodies = [event_body(ev, include_names=channel.include_names) for ev in events]
    if batch is None:
        for ev, b in zip(events, bodies, strict=True):
            if ev.kind == TEST:
                b["channel_id"] = channel.id
    out = Outgoing(channel, batch or str(events[0].id), bodies, digest=batch is not None)
    error = None
    try:
        sender(out, policy)
    except Exception as exc:  # any failure of the receiver or the network: retried later
        error = _error_text(exc)
    where = [NotifyDelivery.batch == batch, NotifyDelivery.channel_id == channel.id] if batch is not None \
        else [NotifyDelivery.id.in_(ids)]
    _finish(db, where, me, error, policy, give_up=give_up_on_error)
    return error


def _load_many(db: Database, ids: list[int]) -> tuple[dict[int, NotifyChannel], list[tuple[int, int, NotifyEvent]]]:
    """The channels and events of these deliveries: (channels by id, [(delivery, channel, event)] in event order)."""
    with db.session() as s:
        rows = list(s.execute(select(NotifyDelivery.id, NotifyDelivery.channel_id, NotifyEvent)
                              .join(NotifyEvent, NotifyEvent.id == NotifyDelivery.event_id)
                              .where(NotifyDelivery.id.in_(ids)).order_by(NotifyEvent.id)))
        channels = {c.id: c for c in s.scalars(select(NotifyChannel).where(
            NotifyChannel.id.in_({cid for _, cid, _ in rows})))}
        s.expunge_all()
    return channels, [(did, cid, ev) for did, cid, ev in rows]


BATCH = 100


def deliver_due(db: Database, now: datetime | None = None, *, limit: int = 500, policy: RetryPolicy | None = None,
                sender: Sender | None = None) -> dict[str, int]:
    """Send every delivery that is due, up to `limit` (and every digest whose interval has passed);
    returns counts {"delivered", "retrying", "failed", "digests", "skipped"} (deliveries, except
    digests; skipped: taken by another deliverer, or given back because their channel failed in this
    pass). Safe to call often and from several processes at once: deliveries are claimed with a
    compare-and-set before they are sent."""
    policy = policy or RetryPolicy()
    transport = Transport() if sender is None else None
    sender = sender or transport
    now = now or utcnow()
    me = holder_id()
    counts = {"delivered": 0, "retrying": 0, "failed": 0, "digests": 0, "skipped": 0}

    def tally(error: str | None, n: int, ids: list[int]) -> None:
        if error is None:
            counts["delivered"] += n
            return
        with db.session() as s:
            failed = s.scalar(select(func.count()).where(NotifyDelivery.id.in_(ids), NotifyDelivery.status == "failed"))
        counts["failed"] += failed or 0
        counts["retrying"] += n - (failed or 0)

    try:
        with db.session() as s:
            dead = _dead_holders(s)
        down: set[int] = set()  # channels that failed in this pass: the rest of theirs waits for the next
        handled = 0
        while handled < limit:
            with db.session() as s:
                q = (select(NotifyDelivery.id).join(NotifyChannel, NotifyChannel.id == NotifyDelivery.channel_id)
                     .where(NotifyChannel.active.is_(True), NotifyChannel.digest_s.is_(None), _claimable(now, dead),
                            ~_earlier_open()))
                if down:
                    q = q.where(NotifyDelivery.channel_id.not_in(down))
                candidates = list(s.scalars(q.order_by(NotifyDelivery.event_id).limit(min(BATCH, limit - handled))))
            if not candidates:
                break
            claimed = _claim(db, candidates, me, now, dead, policy)
            counts["skipped"] += len(candidates) - len(claimed)
            if not claimed:
                break
            claimed_at = time.monotonic()
            channels, rows = _load_many(db, list(claimed))
            unused = []
            for did, cid, ev in rows:
                # a channel down in this pass, or a slow receiver: give the rest back before the claim
                # could lapse (another deliverer would then send them as well)
                if cid in down or time.monotonic() - claimed_at > policy.lease_s / 2:
                    unused.append(did)
                    continue
                channel = channels[cid]
                out = Outgoing(channel, str(ev.id), [event_body(ev, include_names=channel.include_names)], False)
                error = None
                try:
                    sender(out, policy)
                except Exception as exc:  # any failure of the receiver or the network: retried later
                    error = _error_text(exc)
                values = _outcome(error, claimed[did], policy)
                with db.write_session() as s:
                    s.execute(update(NotifyDelivery).where(NotifyDelivery.id == did, NotifyDelivery.claimed_by == me,
                                                           NotifyDelivery.status == "sending")
                              .values(claimed_by=None, claimed_until=None, **values)
                              .execution_options(synchronize_session=False))
                handled += 1
                if error is None:
                    counts["delivered"] += 1
                else:
                    counts["failed" if values["status"] == "failed" else "retrying"] += 1
                    down.add(cid)
            _release(db, unused, me)
            counts["skipped"] += len(unused)
        counts["digests"] += _deliver_digests(db, now, me, dead, policy, sender, tally)
    finally:
        if transport is not None:
            transport.close()
    return counts


def _deliver_digests(db: Database, now: datetime, me: str, dead: list[str], policy: RetryPolicy, sender: Sender,
                     tally: Callable[[str | None, int, list[int]], None]) -> int:
    sent = 0
    with db.session() as s:
        channels = list(s.execute(select(NotifyChannel.id, NotifyChannel.digest_s, NotifyChannel.next_digest_at)
                                  .where(NotifyChannel.active.is_(True), NotifyChannel.digest_s.is_not(None))
                                  .order_by(NotifyChannel.id)))
    for cid, digest_s, next_at in channels:
        with db.session() as s:
            open_batch = s.scalar(select(NotifyDelivery.batch).where(
                NotifyDelivery.channel_id == cid, NotifyDelivery.batch.is_not(None),
                NotifyDelivery.status.in_(("pending", "sending"))).order_by(NotifyDelivery.event_id).limit(1))
        if open_batch is not None:  # a digest not delivered yet: retry it as it was (same id, same events)
            with db.write_session() as s:
                got = s.execute(update(NotifyDelivery)
                                .where(NotifyDelivery.channel_id == cid, NotifyDelivery.batch == open_batch,
                                       _claimable(now, dead))
                                .values(status="sending", claimed_by=me,
                                        claimed_until=now + timedelta(seconds=policy.lease_s),
                                        attempts=NotifyDelivery.attempts + 1)
                                .execution_options(synchronize_session=False)).rowcount
            batch = open_batch
        else:
            if next_at is not None and next_at > now:
                continue
            with db.session() as s:
                has = s.scalar(select(NotifyDelivery.id).where(NotifyDelivery.channel_id == cid,
                                                               NotifyDelivery.batch.is_(None),
                                                               NotifyDelivery.status == "pending").limit(1))
            if has is None:
                continue
            batch = f"digest-{cid}-{int(now.timestamp())}-{secrets.token_hex(4)}"
            with db.write_session() as s:
                cond = NotifyChannel.next_digest_at.is_(None) if next_at is None else NotifyChannel.next_digest_at == next_at
                won = s.execute(update(NotifyChannel).where(NotifyChannel.id == cid, cond)
                                .values(next_digest_at=now + timedelta(seconds=digest_s))
                                .execution_options(synchronize_session=False)).rowcount
                got = 0
                if won:
                    first = list(s.scalars(select(NotifyDelivery.id).where(
                        NotifyDelivery.channel_id == cid, NotifyDelivery.batch.is_(None),
                        NotifyDelivery.status == "pending").order_by(NotifyDelivery.event_id).limit(MAX_DIGEST_EVENTS)))
                    got = s.execute(update(NotifyDelivery).where(NotifyDelivery.id.in_(first))
                                    .values(batch=batch, status="sending", claimed_by=me,
                                            claimed_until=now + timedelta(seconds=policy.lease_s),
                                            attempts=NotifyDelivery.attempts + 1)
                                    .execution_options(synchronize_session=False)).rowcount
        if not got:
            continue
        with db.session() as s:
            ids = list(s.scalars(select(NotifyDelivery.id).where(NotifyDelivery.channel_id == cid,
                                                                 NotifyDelivery.batch == batch,
                                                                 NotifyDelivery.claimed_by == me,
                                                                 NotifyDelivery.status == "sending")))
        if not ids:
            continue
        error = _send_claimed(db, ids, me, policy, sender, batch=batch)
        tally(error, len(ids), ids)
        sent += error is None
    return sent


def send_test(db: Database, channel_id: int, *, user: str = "cli", policy: RetryPolicy | None = None,
              sender: Sender | None = None) -> DeliveryView:
    """Deliver a test event to one channel now (whatever its digest setting) and return the outcome:
    delivered, or failed with the error (a test is not retried)."""
    policy = policy or RetryPolicy()
    now = utcnow()
    with db.session() as s:
        c = s.get(NotifyChannel, channel_id)
        if c is None:
            raise NotFound(f"no notification channel {channel_id}")
        ev = NotifyEvent(kind=TEST, bank_id=c.bank_id, match_id=None, created_at=now,
                         payload={"message": "mirrorwatch test message: this channel works",
                                  "names": {"requested_by": user}})
        s.add(ev)
        s.flush()
        d = NotifyDelivery(channel_id=c.id, event_id=ev.id, match_id=None, status="pending", attempts=0,
                           next_attempt_at=now, created_at=now)
        s.add(d)
        s.flush()
        did = d.id
        record(s, user, "notify.test", "notify_channel", channel_id, event=ev.id)
    me = holder_id()
    if _claim_now(db, did, me, now, policy):
        _send_claimed(db, [did], me, policy, sender or send, give_up_on_error=True)
    return get_delivery(db, did)


def deliver_loop(db: Database, *, every_s: float = 2.0, policy: RetryPolicy | None = None, limit: int = 500,
                 should_stop: Callable[[], bool] = lambda: False,
                 on_pass: Callable[[dict[str, int]], None] | None = None) -> None:
    """Call deliver_due every `every_s` seconds until should_stop() (a database error in one pass is
    reported through on_pass as {"error": 1} and the loop goes on)."""
    while not should_stop():
        try:
            counts = deliver_due(db, policy=policy, limit=limit)
        except Exception as exc:  # a busy or restarting database: the next pass tries again
            counts = {"error": 1, "detail": _error_text(exc)}  # type: ignore[dict-item]
        if on_pass:
            on_pass(counts)
        if sum(counts.get(k, 0) for k in ("delivered", "retrying", "failed")) >= limit:
            continue  # a full pass: more is waiting
        deadline = time.monotonic() + every_s
        while not should_stop() and time.monotonic() < deadline:
            time.sleep(min(0.1, every_s))
