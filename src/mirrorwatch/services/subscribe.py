"""Keeping a local bank in sync with another mirrorwatch's feed (`mirrorwatch bank subscribe`).

The subscription (table exchange_subscription) holds the feed URL and the cursor of the last page
applied. A sync asks for the page after that cursor, checks all of it (format, bank, cursor continuity,
count, digest of the records, each record, and the signature when a key is trusted), then applies the
page and moves the cursor in ONE transaction: a page is applied whole or not at all, an interrupted
sync resumes at the first page it had not applied, and applying a page twice changes nothing.
The token comes from the environment only and is never stored."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import select

from mirrorwatch.errors import InvalidInput, MirrorwatchError, NotFound
from mirrorwatch.match.exact import match_stored_files_for_values
from mirrorwatch.services.audit import record
from mirrorwatch.services.exchange import (
    _CURSOR,
    FORMAT,
    PAGE_DEFAULT,
    PAGE_MAX,
    ApplyCounts,
    BadFeed,
    apply_records,
    check_record,
    make_cursor,
    page_message,
    records_digest,
)
from mirrorwatch.services.signing import VerifyKey
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import Bank, ExchangeSubscription, utcnow

MAX_PAGE_BYTES = 256 * 1024 * 1024
_UID = re.compile(r"^[0-9a-f]{32}$")
_FEED_PATH = re.compile(r"/api/exchange/banks/[0-9]+(/signals)?/?$")


class FeedUnavailable(MirrorwatchError):
    """The feed could not be reached or answered with an error."""

    exit_code = 6
    http_status = 502


@dataclass
class SyncResult:
    bank: str
    url: str
    pages: int = 0
    records: int = 0
    cursor: str | None = None
    complete: bool = False
    bytes: int = 0  # as transferred (compressed)
    counts: ApplyCounts = field(default_factory=ApplyCounts)

    def to_dict(self) -> dict[str, Any]:
        return {"bank": self.bank, "url": self.url, "pages": self.pages, "records": self.records,
                "cursor": self.cursor, "complete": self.complete, "bytes": self.bytes, **self.counts.to_dict()}


def feed_url(url: str) -> str:
    """The feed URL of a bank: `http(s)://host/api/exchange/banks/ID/signals` (the /signals may be left off)."""
    url = url.strip()
    parsed = httpx.URL(url) if url else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidInput(f"{url[:100]!r} is not an http(s) URL of a bank feed")
    if parsed.query or parsed.fragment:
        raise InvalidInput("give the feed URL without a query: the cursor is kept by the subscription")
    if not _FEED_PATH.search(parsed.path):
        raise InvalidInput("a feed URL ends in /api/exchange/banks/<id>/signals")
    path = parsed.path.rstrip("/")
    return str(parsed.copy_with(path=path if path.endswith("/signals") else path + "/signals"))


def check_page(page: Any, asked: str | None, remote_uid: str | None, verify_key: VerifyKey | None) -> tuple[str, list]:
    """A page checked end to end (raises BadFeed); returns the bank uid and the checked records."""
    if not isinstance(page, dict) or page.get("format") != FORMAT:
        raise BadFeed(f"the answer is not a {FORMAT} page")
    bank = page.get("bank")
    uid = bank.get("uid") if isinstance(bank, dict) else None
    if not isinstance(uid, str) or not _UID.match(uid):
        raise BadFeed("the page names no bank uid")
    if remote_uid is not None and uid != remote_uid:
        raise BadFeed(f"the feed now serves another bank ({uid}, subscribed to {remote_uid}): nothing applied")
    expected = asked if asked is not None else make_cursor(uid, 0)
    if page.get("cursor") != expected:
        raise BadFeed(f"the page starts at {str(page.get('cursor'))[:60]!r}, not at the cursor asked for ({expected})")
    records = page.get("records")
    if not isinstance(records, list) or page.get("count") != len(records):
        raise BadFeed(f"the page is truncated: it announces {page.get('count')!r} records and holds "
                      f"{len(records) if isinstance(records, list) else 'none'}")
    if page.get("digest") != records_digest(records):
        raise BadFeed("the page's records do not match its digest: it was changed or truncated on the way")
    if not isinstance(page.get("has_more"), bool):
        raise BadFeed("the page does not say whether more follow (has_more)")
    if verify_key is not None:
        verify_key.verify(page_message(page), page.get("signature"), page.get("key_id"), "a feed page")
    m_from, m_next = _CURSOR.match(expected), _CURSOR.match(str(page.get("next_cursor", "")))
    if m_from is None or m_next is None or m_next.group(1) != uid:
        raise BadFeed("the page's next_cursor is malformed or names another bank")
    seq = int(m_from.group(2))
    checked = []
    for i, rec in enumerate(records):
        inc = check_record(rec, f"record {i + 1} of the page")
        if inc.seq is None or inc.seq <= seq:
            raise BadFeed(f"record {i + 1} of the page is out of sequence order")
        seq = inc.seq
        checked.append(inc)
    if seq != int(m_next.group(2)):
        raise BadFeed("the page's next_cursor does not follow its last record")
    if page["has_more"] and not records:
        raise BadFeed("the page is empty but says more follow")
    return uid, checked


def _get(client: httpx.Client, url: str, cursor: str | None, limit: int) -> tuple[Any, int]:
    params: dict[str, Any] = {"limit": limit}
    if cursor:
        params["cursor"] = cursor
    try:
        with client.stream("GET", url, params=params) as resp:
            parts, size = [], 0
            for piece in resp.iter_bytes():
                parts.append(piece)
                size += len(piece)
                if size > MAX_PAGE_BYTES:
                    raise BadFeed(f"a feed page is larger than {MAX_PAGE_BYTES >> 20} MiB")
            status, body, wire = resp.status_code, b"".join(parts), resp.num_bytes_downloaded
    except httpx.HTTPError as exc:
        raise FeedUnavailable(f"cannot read the feed {url}: {type(exc).__name__}: {exc}") from None
    if status != 200:
        try:
            why = json.loads(body).get("error")
        except (ValueError, AttributeError):
            why = None
        raise FeedUnavailable(f"the feed answered {status}: {str(why or body[:200])[:300]}")
    try:
        return json.loads(body), wire
    except (ValueError, UnicodeDecodeError):
        raise BadFeed("the feed's answer is not JSON (truncated or damaged): nothing applied") from None


def subscribe(db: Database, url: str, bank_name: str, token: str, *, verify_key: VerifyKey | None = None,
              limit: int = PAGE_DEFAULT, max_pages: int | None = None, timeout: float = 120.0, user: str = "cli",
              transport: httpx.BaseTransport | None = None) -> SyncResult:
    """Sync `bank_name` from the feed at `url` until the feed has no more (or `max_pages` pages)."""
    url = feed_url(url)
    if not token:
        raise InvalidInput("no token: put the partner's exchange token in an environment variable")
    if not 1 <= limit <= PAGE_MAX:
        raise InvalidInput(f"page size must be 1 to {PAGE_MAX}")
    with db.session() as s:
        bank = s.scalar(select(Bank).where(Bank.name == bank_name))
        if bank is None:
            raise NotFound(f"no bank named {bank_name!r}; create it with `mirrorwatch bank create {bank_name}`")
        bank_id = bank.id
        sub = s.scalar(select(ExchangeSubscription).where(ExchangeSubscription.bank_id == bank_id,
                                                          ExchangeSubscription.url == url))
        if sub is None:
            sub = ExchangeSubscription(bank_id=bank_id, url=url, counts={})
            s.add(sub)
            s.flush()
            record(s, user, "exchange.subscribe", "bank", bank_id, url=url)
        sub_id, cursor, remote = sub.id, sub.cursor, sub.remote_bank
    result = SyncResult(bank_name, url, cursor=cursor)
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    try:
        with httpx.Client(headers=headers, timeout=timeout, transport=transport, follow_redirects=False) as client, \
                ThreadPoolExecutor(1) as pool:
            # the next page is fetched (and parsed) while this one is checked and applied
            ahead = pool.submit(_get, client, url, cursor, limit)
            while max_pages is None or result.pages < max_pages:
                page, size = ahead.result()
                ahead = None
                result.bytes += size
                uid, records = check_page(page, cursor, remote, verify_key)
                more = page["has_more"] and (max_pages is None or result.pages + 1 < max_pages)
                if more:
                    ahead = pool.submit(_get, client, url, page["next_cursor"], limit)
                with db.write_session() as s:
                    sub = s.get(ExchangeSubscription, sub_id)
                    if sub is None or sub.cursor != cursor:
                        raise BadFeed("another sync of this subscription ran meanwhile: nothing applied; run again")
                    counts, values = apply_records(s, bank_id, records, origin=url)
                    if values:
                        counts.matches = match_stored_files_for_values(s, values)
                    sub.cursor, sub.remote_bank, sub.last_sync_at, sub.last_error = page["next_cursor"], uid, utcnow(), None
                    total = dict(sub.counts or {})
                    for k, v in counts.to_dict().items():
                        total[k] = total.get(k, 0) + v
                    sub.counts = total
                cursor, remote = page["next_cursor"], uid
                result.cursor = cursor
                result.pages += 1
                result.records += len(records)
                result.counts.add(counts)
                if not page["has_more"]:
                    result.complete = True
                    break
                if ahead is None:
                    break
    except MirrorwatchError as exc:
        with db.session() as s:
            sub = s.get(ExchangeSubscription, sub_id)
            if sub is not None:
                sub.last_error = str(exc)[:2000]
        raise
    with db.session() as s:
        record(s, user, "exchange.sync", "bank", bank_id, url=url, pages=result.pages, complete=result.complete,
               **result.counts.to_dict())
    return result


@dataclass
class SubscriptionView:
    id: int
    bank: str
    url: str
    remote_bank: str | None
    cursor: str | None
    last_sync_at: Any
    last_error: str | None
    counts: dict[str, Any]


def list_subscriptions(db: Database) -> list[SubscriptionView]:
    with db.session() as s:
        return [SubscriptionView(x.id, name, x.url, x.remote_bank, x.cursor, x.last_sync_at, x.last_error,
                                 dict(x.counts or {}))
                for x, name in s.execute(select(ExchangeSubscription, Bank.name)
                                         .join(Bank, Bank.id == ExchangeSubscription.bank_id)
                                         .order_by(ExchangeSubscription.id))]
