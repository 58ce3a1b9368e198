"""The receiver helper refuses forged, altered, replayed and stale webhooks (mirrorwatch.webhooks)."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from mirrorwatch.webhooks import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    WebhookRejected,
    WebhookReplayed,
    new_secret,
    sign_headers,
    verify_webhook,
)

NOW = 1_800_000_000
SECRET = "whsec_unit-test-secret"
BODY = json.dumps({"id": "41", "kind": "match.new", "match": {"id": 7}}).encode()


def test_a_signed_message_verifies_and_is_taken_once():
    headers = sign_headers(SECRET, BODY, "41", now=NOW)
    # the documented format: t=<unix>,v1=<hex of HMAC-SHA256(secret, "<t>." + body)>
    want = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER] == f"t={NOW},v1={want}"
    assert headers[EVENT_ID_HEADER] == "41"
    seen: set[str] = set()
    lower = {k.lower(): v for k, v in headers.items()}  # header names are case-insensitive
    assert verify_webhook(SECRET, lower, BODY, now=NOW + 5, seen_ids=seen)["match"] == {"id": 7}
    assert seen == {"41"}
    with pytest.raises(WebhookReplayed):
        verify_webhook(SECRET, headers, BODY, now=NOW + 6, seen_ids=seen)


@pytest.mark.parametrize("case", ["wrong secret", "altered body", "forged hex", "no signature", "malformed",
                                  "no event id", "id mismatch"])
def test_forged_messages_are_refused(case):
    headers = sign_headers(SECRET, BODY, "41", now=NOW)
    body = BODY
    if case == "wrong secret":
        headers = sign_headers(new_secret(), BODY, "41", now=NOW)
    elif case == "altered body":
        body = BODY.replace(b'"id": 7', b'"id": 8')
    elif case == "forged hex":
        headers[SIGNATURE_HEADER] = f"t={NOW},v1={'0' * 64}"
    elif case == "no signature":
        del headers[SIGNATURE_HEADER]
    elif case == "malformed":
        headers[SIGNATURE_HEADER] = "sha256=abc"
    elif case == "no event id":
        del headers[EVENT_ID_HEADER]
    elif case == "id mismatch":  # a valid signature replayed under another event id header
        headers[EVENT_ID_HEADER] = "42"
    seen: set[str] = set()
    with pytest.raises(WebhookRejected) as exc:
        verify_webhook(SECRET, headers, body, now=NOW, seen_ids=seen)
    assert not isinstance(exc.value, WebhookReplayed)
    assert seen == set()


@pytest.mark.parametrize("offset", [-301, 301, -86400])
def test_stale_or_future_timestamps_are_refused(offset):
    headers = sign_headers(SECRET, BODY, "41", now=NOW + offset)
    with pytest.raises(WebhookRejected, match="stale"):
        verify_webhook(SECRET, headers, BODY, now=NOW, tolerance=300)


def test_a_replay_of_an_old_message_with_a_new_timestamp_fails_the_signature():
    old = sign_headers(SECRET, BODY, "41", now=NOW - 3600)
    sig = old[SIGNATURE_HEADER].split(",v1=")[1]
    headers = {**old, SIGNATURE_HEADER: f"t={NOW},v1={sig}"}
    with pytest.raises(WebhookRejected, match="does not match"):
        verify_webhook(SECRET, headers, BODY, now=NOW)
