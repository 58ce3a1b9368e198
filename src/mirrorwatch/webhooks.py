"""Signed webhooks: how mirrorwatch signs what it posts, and the helper a receiver checks it with.

Every webhook POST carries

    X-Mirrorwatch-Event-Id: <id>                        (the same on every retry of one message)
    X-Mirrorwatch-Signature: t=<unix seconds>,v1=<hex>

where v1 = HMAC-SHA256(channel secret, f"{t}." + raw body bytes). A receiver calls
:func:`verify_webhook` on the raw body before parsing it: it refuses a forged or altered message
(bad signature), a stale or future timestamp (outside `tolerance`), and, given the set of event ids
it has already handled, a replay (:class:`WebhookReplayed`). Delivery is at least once, so a replay
with a valid signature is also how a retry of a message you already handled looks: answer 2xx and
do nothing.

This module needs only the standard library and mirrorwatch.errors (a receiver that does not install
mirrorwatch can copy it, deriving the two exception classes from Exception)."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping, MutableSet
from typing import Any

from mirrorwatch.errors import MirrorwatchError

SIGNATURE_HEADER = "X-Mirrorwatch-Signature"
EVENT_ID_HEADER = "X-Mirrorwatch-Event-Id"
SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE_S = 300


class WebhookRejected(MirrorwatchError):
    """A webhook that must not be acted on: forged, altered, stale or malformed."""

    http_status = 401


class WebhookReplayed(WebhookRejected):
    """A correctly signed message whose event id was already handled (a replay, or a retry)."""

    http_status = 409


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The hex HMAC-SHA256 of `{timestamp}.{body}` under the secret."""
    return hmac.new(secret.encode(), f"{int(timestamp)}.".encode() + body, hashlib.sha256).hexdigest()


def sign_headers(secret: str, body: bytes, event_id: str, *, now: float | None = None) -> dict[str, str]:
    """The headers of one signed POST."""
    t = int(time.time() if now is None else now)
    return {SIGNATURE_HEADER: f"t={t},v1={signature(secret, body, t)}", EVENT_ID_HEADER: str(event_id),
            "Content-Type": "application/json"}


def _header(headers: Mapping[str, str] | Any, name: str) -> str | None:
    getter = getattr(headers, "get", None)
    if getter is None:
        return None
    value = getter(name)
    if value is None:  # a plain dict with other spelling
        want = name.lower()
        for k, v in (headers.items() if hasattr(headers, "items") else []):
            if isinstance(k, str) and k.lower() == want:
                return v
    return value


def verify_webhook(secret: str, headers: Mapping[str, str], body: bytes, now: float | None = None,
                   tolerance: float = DEFAULT_TOLERANCE_S, seen_ids: MutableSet[str] | None = None) -> dict[str, Any]:
    """Check one received webhook and return its parsed JSON body.

    `headers` is the request's headers (any mapping; names are case-insensitive), `body` the raw
    bytes as received, `now` the current unix time (default: the clock). Raises WebhookRejected for
    a missing or malformed signature header, a timestamp more than `tolerance` seconds old or ahead,
    a signature that does not match (forged, altered body, wrong secret) or a body that is not JSON;
    WebhookReplayed when `seen_ids` already holds the event id. A message that passes has its id
    added to `seen_ids` (keep ids for longer than `tolerance`)."""
    if not isinstance(body, bytes | bytearray):
        raise WebhookRejected("the body must be the raw bytes received")
    raw = _header(headers, SIGNATURE_HEADER)
    event_id = _header(headers, EVENT_ID_HEADER)
    if not raw:
        raise WebhookRejected(f"no {SIGNATURE_HEADER} header")
    if not event_id:
        raise WebhookRejected(f"no {EVENT_ID_HEADER} header")
    stamp: int | None = None
    sigs: list[str] = []
    for part in str(raw).split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit() and len(value) <= 12:
            stamp = int(value)
        elif key == "v1" and value:
            sigs.append(value.strip().lower())
    if stamp is None or not sigs:
        raise WebhookRejected(f"malformed {SIGNATURE_HEADER} header (want t=<unix seconds>,v1=<hex>)")
    now = time.time() if now is None else now
    if abs(now - stamp) > tolerance:
        raise WebhookRejected(f"stale signature: signed {int(now - stamp)} s from now, tolerance {int(tolerance)} s")
    want = signature(secret, bytes(body), stamp)
    if not any(hmac.compare_digest(want, s) for s in sigs):
        raise WebhookRejected("signature does not match (forged, altered, or signed with another secret)")
    if seen_ids is not None and str(event_id) in seen_ids:
        raise WebhookReplayed(f"event {event_id} was already received")
    try:
        data = json.loads(bytes(body))
    except ValueError:
        raise WebhookRejected("the body is not JSON") from None
    if not isinstance(data, dict) or str(data.get("id")) != str(event_id):
        raise WebhookRejected("the body's id does not match the signed event id header")
    if seen_ids is not None:
        seen_ids.add(str(event_id))
    return data
