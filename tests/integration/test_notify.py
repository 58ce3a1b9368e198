"""Notifications end to end: the outbox written with the changes it reports, webhooks delivered to a
real receiver on 127.0.0.1 (down then up, two deliverers at once, a killed deliverer's claim),
digests, email through a real SMTP server (aiosmtpd), and the include_names flag."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from mirrorwatch.services import notify
from mirrorwatch.services.review import decide
from mirrorwatch.store.models import (
    Match,
    NotifyDelivery,
    NotifyEvent,
    utcnow,
)
from mirrorwatch.store.outbox import MATCH_NEW, MATCH_STATE, MIRROR_GONE, SWEEP_FAILED
from mirrorwatch.sweep import runner
from mirrorwatch.sweep.recheck import recheck
from mirrorwatch.sweep.runner import Sweep, SweepOptions
from mirrorwatch.testhub import Hub, RepoFile, generate_repos
from notifyfixtures import NAME, small_world
from pytest_testhub import hf_env, testhub  # noqa: F401
from sweepfixtures import anydb, bank_sha, hf, make_bank, planted  # noqa: F401
from webhook_receiver import Receiver, free_port

FAST = notify.RetryPolicy(base_s=0.01, cap_s=0.05, max_attempts=1000, timeout_s=5)


def events(db, kind: str | None = None) -> list[NotifyEvent]:
    with db.session() as s:
        q = select(NotifyEvent).order_by(NotifyEvent.id)
        if kind:
            q = q.where(NotifyEvent.kind == kind)
        return list(s.scalars(q))


def drain(db, *, rounds: int = 400, **kw) -> None:
    for _ in range(rounds):
        notify.deliver_due(db, policy=FAST, **kw)
        with db.session() as s:
            if s.scalar(select(NotifyDelivery.id).where(NotifyDelivery.status.in_(("pending", "sending")))) is None:
                return
        time.sleep(0.02)
    raise AssertionError("deliveries still open")


def assert_once_in_order(rec: Receiver, db, channel_id: int) -> None:
    with db.session() as s:
        want = set(s.scalars(select(NotifyDelivery.event_id).where(NotifyDelivery.channel_id == channel_id)))
        assert set(s.scalars(select(NotifyDelivery.status).where(NotifyDelivery.channel_id == channel_id))) == {"delivered"}
    got = [int(b["id"]) for b in rec.events()]
    assert len(got) == len(set(got)), "an event was taken twice"
    assert set(got) == want, "an event was lost"
    per_match: dict[int, list[int]] = {}
    for b in rec.events():
        if b.get("match"):
            per_match.setdefault(b["match"]["id"], []).append(int(b["id"]))
    assert all(ids == sorted(ids) for ids in per_match.values()), per_match


# --- the outbox ------------------------------------------------------------------------------------

def test_sweep_recheck_and_decisions_write_their_events(anydb, testhub):  # noqa: F811
    make_bank(anydb, 4)
    hub = Hub(generate_repos(6, seed=5, planted=planted(4, extra_files=False)))
    running = testhub(hub)
    chan = notify.add_channel(anydb, 1, "http://127.0.0.1:9/hook").channel
    Sweep(anydb, hf(running), SweepOptions(scope={"sort": "createdAt"}, headers=False)).run()
    with anydb.session() as s:
        matches = list(s.scalars(select(Match.id).order_by(Match.id)))
    new = events(anydb, MATCH_NEW)
    assert len(matches) == 4 and sorted(e.match_id for e in new) == matches
    first = new[0].payload
    assert first["match"]["state"] == "new" and first["mirror"]["hub"] == "hf"
    assert first["mirror"]["repo_id"].startswith("reuploader-") and first["mirror"]["path"] == "lora.safetensors"
    assert first["names"]["entry"].startswith("Invented Person")  # stored, sent only with include_names
    # a reviewer's decision
    decide(anydb, [matches[0]], "confirmed", None, "rex")
    ev = events(anydb, MATCH_STATE)[-1]
    assert ev.match_id == matches[0]
    assert ev.payload["change"] == {"from": "new", "to": "confirmed", "by": "reviewer", "reason": "decision"}
    # another match's mirror removed, then back (recheck): system transitions. (Which repo holds which
    # match follows the sweep's order of work: the one removed is read from the events, never assumed.)
    victim = next(e.payload["mirror"]["repo_id"] for e in new if e.match_id != matches[0])
    hub.remove(victim)
    recheck(anydb, hf(running))
    gone = events(anydb, MIRROR_GONE)
    assert len(gone) == 1 and gone[0].payload["change"]["to"] == "gone"
    assert gone[0].payload["change"]["detail"] == "repo removed"
    state = [e.payload["change"] for e in events(anydb, MATCH_STATE) if e.match_id == gone[0].match_id]
    assert state == [{"from": "new", "to": "gone", "by": "system", "reason": "mirror_removed", "detail": "repo removed"}]
    with anydb.session() as s:
        n_deliveries = len(list(s.scalars(select(NotifyDelivery.id).where(NotifyDelivery.channel_id == chan.id))))
    assert n_deliveries == len(events(anydb))


def test_a_file_gone_seen_by_the_sweep_and_back_on_recheck(db, testhub):  # noqa: F811
    make_bank(db, 2)
    hub = Hub(generate_repos(3, seed=9, planted=planted(2, extra_files=False)))
    running = testhub(hub)
    opts = SweepOptions(scope={"sort": "createdAt"}, headers=False, resume=False)
    Sweep(db, hf(running), opts).run()
    hub.update_files("reuploader-0/lora-0", [RepoFile("other.safetensors", size=10, sha256="ab" * 32)])
    Sweep(db, hf(running), opts).run()  # the sweep itself sees the matched file gone
    gone = events(db, MIRROR_GONE)
    assert len(gone) == 1 and gone[0].payload["mirror"]["repo_id"] == "reuploader-0/lora-0"
    assert gone[0].payload["change"]["detail"] == "file gone"
    hub.update_files("reuploader-0/lora-0", [RepoFile("lora.safetensors", size=10, sha256=bank_sha(0))])
    recheck(db, hf(running))  # the mirror is back: the match reopens as new
    back = [e.payload["change"] for e in events(db, MATCH_STATE) if e.match_id == gone[0].match_id]
    assert [(c["from"], c["to"], c["reason"]) for c in back] == [("new", "gone", "mirror_removed"),
                                                                  ("gone", "new", "mirror_back")]


def test_a_rolled_back_sweep_transaction_leaves_no_event(anydb, testhub, monkeypatch):  # noqa: F811
    make_bank(anydb, 6)
    notify.add_channel(anydb, 1, "http://127.0.0.1:9/hook")
    running = testhub(Hub(generate_repos(10, seed=2, planted=planted(6))), page_size=4)
    real = runner.match_repo
    calls = {"n": 0}

    def records_then_dies(*args, **kw):
        found = real(*args, **kw)  # the matches and their events are written into the batch's transaction ...
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("a bug after matching")  # ... which is then rolled back
        return found

    monkeypatch.setattr(runner, "match_repo", records_then_dies)
    out = Sweep(anydb, hf(running), SweepOptions(scope={"sort": "createdAt"}, concurrency=1, headers=False)).run()
    assert out.status == "failed"
    with anydb.session() as s:
        matches = set(s.scalars(select(Match.id)))
        assert set(s.scalars(select(NotifyDelivery.event_id))) == {e.id for e in events(anydb)}
    new = events(anydb, MATCH_NEW)
    assert {e.match_id for e in new} == matches and len(new) == len(matches) < 6
    failed = events(anydb, SWEEP_FAILED)
    assert len(failed) == 1 and failed[0].bank_id is None
    assert "a bug after matching" in failed[0].payload["scan_run"]["reason"]
    assert failed[0].payload["scan_run"]["id"] == out.run_id


def test_an_event_no_channel_listens_to_has_no_delivery(db):
    b1, (mid,) = small_world(db, 1, bank="one")  # its match.new is before the channel: not sent
    chan = notify.add_channel(db, b1, "http://127.0.0.1:9/hook", kinds=["match.state"]).channel
    _, m2 = small_world(db, 1, bank="two")  # another bank: not this channel's
    decide(db, [mid, m2[0]], "confirmed", None, "rex")
    with db.session() as s:
        rows = list(s.execute(select(NotifyDelivery.channel_id, NotifyEvent.kind, NotifyEvent.match_id)
                              .join(NotifyEvent, NotifyEvent.id == NotifyDelivery.event_id)))
    assert rows == [(chan.id, MATCH_STATE, mid)]


# --- webhooks ---------------------------------------------------------------------------------------

def test_receiver_down_then_up_every_event_once_in_order(db):
    port = free_port()
    bank, mids = small_world(db, 4)
    made = notify.add_channel(db, bank, f"http://127.0.0.1:{port}/hook")
    # later events of the same matches: decisions back and forth
    for state in ("confirmed", "second_look", "dismissed", "new"):
        decide(db, mids[:2], state, None, "rex")
    decide(db, mids[2:], "confirmed", None, "rex")
    # the receiver is down: nothing delivered, everything retried later
    counts = notify.deliver_due(db, policy=FAST)
    assert counts["delivered"] == 0 and counts["retrying"] == 1  # the rest of a down channel waits
    with db.session() as s:
        first = s.scalar(select(NotifyDelivery).order_by(NotifyDelivery.event_id).limit(1))
        assert first.status == "pending" and first.attempts == 1 and "ConnectError" in first.last_error
        assert first.next_attempt_at > utcnow() - timedelta(seconds=1)
    time.sleep(0.1)
    notify.deliver_due(db, policy=FAST)
    with Receiver(made.secret, port) as rec:
        drain(db)
    assert_once_in_order(rec, db, made.channel.id)
    assert len(rec.events()) == 2 * 4 + 2 and rec.rejected == [] and rec.duplicates == 0
    with db.session() as s:
        retried = s.scalar(select(NotifyDelivery).order_by(NotifyDelivery.event_id).limit(1))
        assert retried.attempts >= 3 and retried.delivered_at is not None and retried.last_error is None


def test_a_failing_receiver_is_retried_with_backoff_and_given_up(db):
    bank, mids = small_world(db, 1)
    with Receiver("", free_port()) as rec:
        made = notify.add_channel(db, bank, rec.url)
        rec.secret, rec.status = made.secret, 500
        decide(db, mids, "confirmed", None, "rex")
        policy = notify.RetryPolicy(base_s=100, cap_s=400, max_attempts=4)
        delays = []
        now = utcnow()
        for _ in range(4):
            notify.deliver_due(db, now=now, policy=policy)
            with db.session() as s:
                d = s.scalar(select(NotifyDelivery))
            if d.status == "failed":
                break
            delays.append(round((d.next_attempt_at - utcnow()).total_seconds()))
            assert notify.deliver_due(db, now=now, policy=policy)["delivered"] == 0  # not due yet
            now = d.next_attempt_at + timedelta(seconds=1)
    assert delays == [100, 200, 400]  # base * 2^(n-1), capped
    assert d.status == "failed" and d.attempts == 4 and d.last_error.startswith("HTTP 500")
    assert rec.accepted == []


def test_a_slow_receiver_gets_its_claims_given_back_before_they_lapse(db):
    bank, mids = small_world(db, 6)
    with Receiver("", free_port()) as rec:
        made = notify.add_channel(db, bank, rec.url)
        rec.secret, rec.delay_s = made.secret, 0.15
        decide(db, mids, "confirmed", None, "rex")
        # a claim lasts 0.4 s: after 0.2 s of sending, the rest of the batch is given back and claimed afresh
        policy = notify.RetryPolicy(base_s=0.01, cap_s=0.05, timeout_s=5, lease_s=0.4)
        counts = notify.deliver_due(db, policy=policy)
    assert counts["delivered"] == 6 and counts["skipped"] >= 1
    with db.session() as s:
        assert [(d.status, d.attempts) for d in s.scalars(select(NotifyDelivery))] == [("delivered", 1)] * 6
    assert rec.duplicates == 0
    assert_once_in_order(rec, db, made.channel.id)


def test_two_deliverers_at_once_send_each_event_once_in_order(anydb):  # noqa: F811
    bank, mids = small_world(anydb, 5)
    for state in ("confirmed", "second_look", "confirmed", "dismissed"):
        decide(anydb, mids, state, None, "rex")
    with Receiver("", free_port()) as rec:
        made = notify.add_channel(anydb, bank, rec.url)
        rec.secret = made.secret
        # (the channel was added after the events: give it the backlog the way the outbox would have)
        with anydb.session() as s:
            for ev in s.scalars(select(NotifyEvent).order_by(NotifyEvent.id)):
                s.add(NotifyDelivery(channel_id=made.channel.id, event_id=ev.id, match_id=ev.match_id,
                                     status="pending", attempts=0, next_attempt_at=utcnow()))
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def run() -> None:
            barrier.wait()
            try:
                drain(anydb)
            except BaseException as exc:  # pragma: no cover - what the test is about
                errors.append(exc)

        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert errors == []
    assert len(rec.events()) == 5 * 5 and rec.duplicates == 0
    assert_once_in_order(rec, anydb, made.channel.id)


def test_a_killed_deliverers_claim_is_taken_over_and_the_receiver_deduplicates(db):
    bank, mids = small_world(db, 2)
    with Receiver("", free_port()) as rec:
        made = notify.add_channel(db, bank, rec.url)
        rec.secret = made.secret
        with db.session() as s:
            for ev in s.scalars(select(NotifyEvent)):
                s.add(NotifyDelivery(channel_id=made.channel.id, event_id=ev.id, match_id=ev.match_id,
                                     status="pending", attempts=0, next_attempt_at=utcnow()))
        # a deliverer sent event 1 and was SIGKILLed before recording it: its claim names a dead process
        first = events(db)[0]
        body = json.dumps(notify.event_body(first, include_names=False)).encode()
        from mirrorwatch.webhooks import sign_headers

        assert rec.handle(sign_headers(made.secret, body, str(first.id)), body) == 200
        import socket

        with db.session() as s:
            s.execute(update(NotifyDelivery).where(NotifyDelivery.event_id == first.id).values(
                status="sending", attempts=1, claimed_by=f"{socket.gethostname()[:150]} pid 999999999 thread 1",
                claimed_until=utcnow() + timedelta(hours=1)))
        drain(db)
    # at least once: sent again with the same id; the receiver took it once and saw one duplicate
    assert [int(b["id"]) for b in rec.events()].count(first.id) == 1 and rec.duplicates == 1
    assert_once_in_order(rec, db, made.channel.id)


def test_include_names_is_off_by_default(db):
    bank, mids = small_world(db, 2)
    with Receiver("", free_port()) as plain, Receiver("", free_port()) as named:
        a = notify.add_channel(db, bank, plain.url)
        b = notify.add_channel(db, bank, named.url, include_names=True)
        plain.secret, named.secret = a.secret, b.secret
        decide(db, mids, "confirmed", None, "rex")
        drain(db)
    assert len(plain.events()) == len(named.events()) == 2
    for body in plain.events():
        assert "names" not in body and NAME not in json.dumps(body) and "rex" not in json.dumps(body)
        assert body["match"]["id"] in mids and body["mirror"]["repo_id"].startswith("reuploader/")
        assert body["links"]["match"].endswith(f"/matches/{body['match']['id']}")
        assert body["links"]["repo_page"].startswith("https://huggingface.co/reuploader/")
        assert "resolve" not in json.dumps(body["links"])  # never a download link
    assert {b["names"]["entry"] for b in named.events()} == {f"{NAME} 0", f"{NAME} 1"}
    assert {b["names"]["reviewer"] for b in named.events()} == {"rex"}


# --- digests ----------------------------------------------------------------------------------------

def test_a_digest_channel_gets_one_message_per_interval(db):
    bank, mids = small_world(db, 3)
    with Receiver("", free_port()) as rec:
        made = notify.add_channel(db, bank, rec.url, digest="1h")
        rec.secret = made.secret
        decide(db, mids, "confirmed", None, "rex")
        t0 = utcnow()
        assert notify.deliver_due(db, now=t0, policy=FAST)["digests"] == 0  # the interval has not passed
        assert rec.accepted == []
        rec.status = 500  # the first digest fails: retried as it was, with the same id and events
        assert notify.deliver_due(db, now=t0 + timedelta(hours=1, seconds=1), policy=FAST)["digests"] == 0
        decide(db, mids[:2], "dismissed", None, "rex")  # arrives while the first digest is open
        rec.status = 200
        time.sleep(0.1)
        assert notify.deliver_due(db, now=t0 + timedelta(hours=1, seconds=2), policy=FAST)["digests"] == 1
        assert notify.deliver_due(db, now=t0 + timedelta(hours=1, seconds=3), policy=FAST)["digests"] == 0
        assert notify.deliver_due(db, now=t0 + timedelta(hours=2, seconds=2), policy=FAST)["digests"] == 1
    assert [m["kind"] for m in rec.accepted] == ["digest", "digest"]
    first, second = rec.accepted
    assert [e["kind"] for e in first["events"]] == ["match.state"] * 3
    assert first["count"] == 3 and first["id"].startswith(f"digest-{made.channel.id}-")
    assert [e["change"]["to"] for e in second["events"]] == ["dismissed", "dismissed"]
    assert_once_in_order(rec, db, made.channel.id)


# --- email ------------------------------------------------------------------------------------------

class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos), envelope.original_content or envelope.content))
        return "250 OK"


@pytest.fixture
def smtp(monkeypatch):
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("MIRRORWATCH_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("MIRRORWATCH_SMTP_PORT", str(port))
    monkeypatch.setenv("MIRRORWATCH_SMTP_STARTTLS", "0")
    monkeypatch.setenv("MIRRORWATCH_SMTP_FROM", "mirrorwatch@example.org")
    monkeypatch.setenv("MIRRORWATCH_PUBLIC_URL", "https://mw.example.org")
    yield inbox
    controller.stop()


def test_email_messages_carry_ids_links_and_no_attachment(db, smtp):
    import email
    from email import policy as email_policy

    bank, mids = small_world(db, 2)
    notify.add_channel(db, bank, "team@example.org")
    notify.add_channel(db, bank, "named@example.org", include_names=True, kinds=["match.state"])
    decide(db, [mids[0]], "confirmed", None, "rex")
    drain(db)
    assert [to for to, _ in smtp.messages] == [["team@example.org"], ["named@example.org"]]
    msg = email.message_from_bytes(smtp.messages[0][1], policy=email_policy.default)
    assert msg["From"] == "mirrorwatch@example.org" and msg["To"] == "team@example.org"
    assert msg["Subject"].startswith(f"[mirrorwatch] match #{mids[0]}: new -> confirmed")
    ev = events(db, MATCH_STATE)[0]
    assert msg["X-Mirrorwatch-Event-Id"] == str(ev.id) and msg["Message-ID"]
    assert not msg.is_multipart() and msg.get_content_type() == "text/plain"
    text = msg.get_content()
    assert f"https://mw.example.org/matches/{mids[0]}" in text and "https://huggingface.co/reuploader/" in text
    assert NAME not in text and "rex" not in text
    named = email.message_from_bytes(smtp.messages[1][1], policy=email_policy.default)
    assert f"{NAME} 0" in named.get_content()


def test_an_email_digest_lists_its_events(db, smtp):
    import email
    from email import policy as email_policy

    bank, mids = small_world(db, 3)
    made = notify.add_channel(db, bank, "team@example.org", digest="15m")
    decide(db, mids, "confirmed", None, "rex")
    notify.deliver_due(db, now=utcnow() + timedelta(minutes=16), policy=FAST)
    assert len(smtp.messages) == 1
    msg = email.message_from_bytes(smtp.messages[0][1], policy=email_policy.default)
    assert msg["Subject"] == f"[mirrorwatch] digest: 3 events (bank {bank})"
    assert msg["X-Mirrorwatch-Event-Id"].startswith(f"digest-{made.channel.id}-")
    lines = [line for line in msg.get_content().splitlines() if line.startswith("* ")]
    assert len(lines) == 3 and all("new -> confirmed" in line for line in lines)


def test_email_without_a_server_configured_is_a_clear_error(db, monkeypatch):
    monkeypatch.delenv("MIRRORWATCH_SMTP_HOST", raising=False)
    bank, _ = small_world(db, 1)
    c = notify.add_channel(db, bank, "team@example.org").channel
    d = notify.send_test(db, c.id, user="ada")
    assert d.status == "failed" and "MIRRORWATCH_SMTP_HOST" in d.last_error
