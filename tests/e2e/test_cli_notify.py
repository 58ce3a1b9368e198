"""`mirrorwatch notify ...` as a user runs it: add (secret shown once), list, test, log, remove, bad
input refused with a message; `deliver --loop` as a process that is SIGKILLed, restarted and stopped
with SIGTERM, with every event reaching a real receiver on 127.0.0.1 once, in order per match."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from mirrorwatch.services.review import decide
from mirrorwatch.store.db import Database
from notifyfixtures import small_world
from webhook_receiver import Receiver, free_port


def _world(db_path, n: int) -> list[int]:
    db = Database.open(str(db_path))
    _, mids = small_world(db, n, bank="cli-bank")
    db.engine.dispose()
    return mids


def test_add_list_test_log_remove(cli, db_path):
    _world(db_path, 1)
    with Receiver("", free_port()) as rec:
        r = cli("notify", "add", "cli-bank", rec.url, "--kinds", "match.new,match.state", "--json")
        assert r.returncode == 0, r.stderr
        made = json.loads(r.stdout)
        rec.secret = made["secret"]
        cid = made["channel"]["id"]
        listed = cli("notify", "list", "--json")
        assert [c["id"] for c in json.loads(listed.stdout)] == [cid] and made["secret"] not in listed.stdout
        t = cli("notify", "test", str(cid))
        assert t.returncode == 0 and "delivered" in t.stdout
        assert [e["kind"] for e in rec.events()] == ["test"]
    down = cli("notify", "test", str(cid))
    assert down.returncode == 1 and "ConnectError" in down.stderr and "Traceback" not in down.stderr
    log = json.loads(cli("notify", "log", "--channel", str(cid), "--json").stdout)
    assert [d["status"] for d in log["items"]] == ["failed", "delivered"]
    assert cli("notify", "remove", str(cid)).returncode == 0
    assert json.loads(cli("notify", "list", "--json").stdout) == []


def test_bad_input_is_refused_with_a_message(cli, db_path):
    _world(db_path, 1)
    for args, message in ((("notify", "add", "cli-bank", "ftp://example.org/x"), "webhook URL or an email address"),
                          (("notify", "add", "nope", "team@example.org"), "no bank"),
                          (("notify", "add", "cli-bank", "team@example.org", "--digest", "1s"), "digest interval"),
                          (("notify", "add", "cli-bank", "team@example.org", "--kinds", "all"), "unknown event kind"),
                          (("notify", "test", "99"), "no notification channel 99"),
                          (("notify", "log", "--status", "lost"), "delivery status")):
        r = cli(*args)
        assert r.returncode != 0 and message in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)


def test_deliver_loop_survives_sigkill_and_stops_on_sigterm(cli, db_path):
    mids = _world(db_path, 3)
    port = free_port()
    made = json.loads(cli("notify", "add", "cli-bank", f"http://127.0.0.1:{port}/hook", "--json").stdout)
    db = Database.open(str(db_path))
    for state in ("confirmed", "second_look", "new", "confirmed"):
        decide(db, mids, state, None, "rex")
    env = {**os.environ, "MIRRORWATCH_DB": str(db_path)}
    args = [sys.executable, "-m", "mirrorwatch.cli.main", "notify", "deliver", "--loop", "--every", "0.2",
            "--retry-base", "0.1", "--retry-cap", "0.5", "--json"]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)  # the receiver is down: retries pile up
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        with Receiver(made["secret"], port) as rec:
            proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            deadline = time.monotonic() + 60
            while len(rec.events()) < 12 and time.monotonic() < deadline:
                time.sleep(0.1)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert all(set(json.loads(line)) >= {"delivered", "retrying"} for line in out.splitlines())
    ids = [int(e["id"]) for e in rec.events()]
    assert len(ids) == 12 == len(set(ids))
    for mid in mids:
        mine = [int(e["id"]) for e in rec.events() if e["match"]["id"] == mid]
        assert mine == sorted(mine) and [e["change"]["to"] for e in rec.events() if e["match"]["id"] == mid] == [
            "confirmed", "second_look", "new", "confirmed"]
