"""Exchange between two mirrorwatch installations (issue 12, item 3), end to end: the publisher runs
the real `mirrorwatch serve` (uvicorn on 127.0.0.1), the partner runs the real CLI
(`bank subscribe`, `bank import`, `bank export`) on its own database. Faults (a truncated page, a
changed record, a page that lost a record, a replayed page) come from a small proxy in front of the
real server that alters the real server's answers."""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from conftest import run_cli
from mirrorwatch.hashing.forms import FORMS
from mirrorwatch.services.banks import create_bank
from mirrorwatch.services.exchange import FORMAT
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import Audit, Bank, Entry, EntrySignal, ExchangeSubscription

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _hex(i: int, n: int, salt: str) -> str:
    import hashlib

    return hashlib.sha256(f"{salt}-{i}".encode()).hexdigest()[:n]


def build_publisher(path: Path, n: int = 23) -> tuple[int, int]:
    """A publisher bank of n entries, each with a value of every registered hash form (straight from
    the registry), a header signal and a file size; and a second bank. Returns both bank ids."""
    db = Database.open(str(path))
    bank = create_bank(db, "takedowns")
    other = create_bank(db, "private-bank")
    with db.session() as s:
        for i in range(n):
            e = Entry(bank_id=bank.id, key=f"v:{9000 + i}", name=f"Invented Person {i} LoRA v{i % 3 + 1}",
                      name_norm=f"invented person {i} lora v{i % 3 + 1}",
                      url=f"https://civitai.com/models/{7000 + i}?modelVersionId={9000 + i}",
                      civitai_model_id=7000 + i, civitai_version_id=9000 + i, kind="LORA")
            s.add(e)
            s.flush()
            values = {}
            for form in FORMS.values():
                source = values.get(form.derived_from) if form.derived_from else None
                values[form.name] = form.derive(source) if source else _hex(i, form.hex_length, form.name)
            for form, value in values.items():
                if FORMS[form].derived_from and not FORMS[form].stored_when_derived:
                    continue
                s.add(EntrySignal(entry_id=e.id, form=form, value=value))
            s.add(EntrySignal(entry_id=e.id, form="ss_session_id", value=f"{1700000000 + i}"))
            s.add(EntrySignal(entry_id=e.id, form="size", value=str(1_000_000 + i)))
        s.add(Entry(bank_id=other.id, key="n:secret", name="Other Invented Name", name_norm="other invented name"))
    db.engine.dispose()
    return bank.id, other.id


class Server:
    """`mirrorwatch serve` on a free port of 127.0.0.1."""

    def __init__(self, db_path: Path, env: dict[str, str] | None = None) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        full = {**os.environ, "MIRRORWATCH_DB": str(db_path), **(env or {})}
        self.proc = subprocess.Popen([sys.executable, "-m", "mirrorwatch.cli.main", "serve", "--port", str(self.port)],
                                     env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, self.proc.stdout.read()
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.2)

    def stop(self) -> str:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            out = self.proc.communicate(timeout=15)[0]
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            out = self.proc.communicate()[0]
        assert "Traceback" not in out
        return out


class FaultyProxy:
    """Forwards GETs to the real server and alters the answer to request number `at` (1-based):
    "truncate" cuts the body in half, "drop" removes the page's last record (JSON still valid),
    "tamper" renames a record, "replay" answers with the previous page again, "hang" holds the answer
    until `release` is set."""

    def __init__(self, upstream: str, fault: str, at: int) -> None:
        self.upstream, self.fault, self.at, self.n, self.last = upstream, fault, at, 0, None
        self.hanging, self.release = threading.Event(), threading.Event()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                proxy.n += 1
                if proxy.fault == "hang" and proxy.n == proxy.at:
                    proxy.hanging.set()
                    proxy.release.wait(60)
                r = httpx.get(proxy.upstream + self.path, headers={"Authorization": self.headers["Authorization"]})
                body = r.content
                if proxy.n == proxy.at and r.status_code == 200:
                    body = proxy.alter(body)
                proxy.last = r.content
                self.send_response(r.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alter(self, body: bytes) -> bytes:
        if self.fault == "truncate":
            return body[: len(body) // 2]
        if self.fault == "replay":
            return self.last
        page = json.loads(body)
        if self.fault == "drop":
            page["records"].pop()
        elif self.fault == "tamper":
            page["records"][0]["name"] = "Someone Else"
        return json.dumps(page).encode()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def publisher(tmp_path):
    path = tmp_path / "publisher.db"
    bank_id, other_id = build_publisher(path)
    return path, bank_id, other_id


def _token(db_path: Path, *args: str) -> str:
    r = run_cli("user", "token", "create", *args, "--json", db=db_path)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["token"]


def _partner_token(db_path: Path, *banks: str) -> str:
    run_cli("user", "add", "partner-org", "--no-password", db=db_path)
    return _token(db_path, "partner-org", *[a for b in banks for a in ("--exchange", b)])


def _local(db_path: Path, bank: str = "mirror") -> dict[str, dict]:
    """The local bank's entries by origin id: status and every signal."""
    db = Database.open(str(db_path))
    try:
        with db.session() as s:
            bank_id = s.scalar(select(Bank.id).where(Bank.name == bank))
            if bank_id is None:
                return {}
            out = {}
            for e in s.scalars(select(Entry).where(Entry.bank_id == bank_id)):
                sigs = {(x.form, x.value) for x in s.scalars(select(EntrySignal).where(EntrySignal.entry_id == e.id))}
                out[e.origin_id] = {"status": e.status, "name": e.name, "signals": sigs, "origin": e.origin}
            return out
    finally:
        db.engine.dispose()


def _subscription(db_path: Path) -> ExchangeSubscription | None:
    db = Database.open(str(db_path))
    try:
        with db.session() as s:
            return s.scalar(select(ExchangeSubscription))
    finally:
        db.engine.dispose()


def _subscribe(local_db: Path, url: str, token: str, *args: str) -> subprocess.CompletedProcess:
    return run_cli("bank", "subscribe", url, "--bank", "mirror", "--create", "--token-env", "PARTNER_TOKEN", *args,
                   "--json", db=local_db, env={"PARTNER_TOKEN": token})


def _publisher_records(path: Path) -> dict[str, dict]:
    r = run_cli("bank", "export", "takedowns", "--format", "signals", db=path)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    return {x["id"]: x for x in lines[1:-1]}


def test_subscription_interrupted_resumed_idempotent_and_withdrawal_propagated(publisher, tmp_path):
    pub_db, bank_id, _other = publisher
    token = _partner_token(pub_db, "takedowns")
    server = Server(pub_db)
    local_db = tmp_path / "partner.db"
    url = f"{server.base}/api/exchange/banks/{bank_id}/signals"
    try:
        # page 3 of 5 arrives cut in half: pages 1-2 stay applied, page 3 is refused whole
        proxy = FaultyProxy(server.base, "truncate", at=3)
        url = f"{proxy.base}/api/exchange/banks/{bank_id}/signals"
        r = _subscribe(local_db, url, token, "--page-size", "5")
        assert r.returncode != 0
        assert "not JSON" in r.stderr and "nothing applied" in r.stderr
        assert len(_local(local_db)) == 10
        sub = _subscription(local_db)
        assert sub.cursor.endswith(".10") and "truncated" in sub.last_error

        # resumed: the rest, from the first page not applied
        r = _subscribe(local_db, url, token, "--page-size", "5")
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["complete"] and (out["records"], out["added"], out["updated"]) == (13, 13, 0)
        assert _subscription(local_db).last_error is None
        local = _local(local_db)
        published = _publisher_records(pub_db)
        assert set(local) == set(published)
        for rid, rec in published.items():
            want = {(f, v) for f, vals in rec["hashes"].items() for v in vals if f != "autov2"}
            want |= {(f, v) for f, vals in rec["signals"].items() for v in vals} | {("size", str(x)) for x in rec["sizes"]}
            assert local[rid]["signals"] == want
            assert {f for f, _v in local[rid]["signals"]} >= {f for f in FORMS if f != "autov2"}
            assert local[rid]["origin"] == url and local[rid]["name"] == rec["name"]

        # idempotent: a second sync changes nothing
        r = _subscribe(local_db, url, token)
        out = json.loads(r.stdout)
        assert r.returncode == 0 and out["complete"]
        assert (out["records"], out["added"], out["updated"], out["withdrawn"]) == (0, 0, 0, 0)

        # withdrawn at the publisher (CLI, audited) -> a tombstone -> withdrawn here
        first = sorted(published, key=lambda k: published[k]["seq"])[0]
        entry_id = int(first.split(":")[1])
        r = run_cli("bank", "withdraw", str(entry_id), "--reason", "asked by the person depicted", db=pub_db)
        assert r.returncode == 0, r.stderr
        r = _subscribe(local_db, url, token)
        out = json.loads(r.stdout)
        assert r.returncode == 0 and (out["records"], out["withdrawn"], out["added"]) == (1, 1, 0)
        local = _local(local_db)
        assert local[first]["status"] == "withdrawn"
        assert sum(1 for v in local.values() if v["status"] == "active") == 22
        page = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, params={"cursor": sub.cursor}).json()
        tomb = next(x for x in page["records"] if x["id"] == first)
        assert tomb["status"] == "withdrawn" and "name" not in tomb and "hashes" not in tomb
        db = Database.open(str(pub_db))
        with db.session() as s:
            audit = s.scalar(select(Audit).where(Audit.action == "entry.withdraw"))
            assert audit.object_id == str(entry_id) and audit.detail["reason"] == "asked by the person depicted"
        db.engine.dispose()
    finally:
        proxy.close()
        server.stop()


def test_subscriber_killed_mid_sync_resumes(publisher, tmp_path):
    """SIGKILL while a page is in flight: the pages applied stay, the rest comes on the next run."""
    pub_db, bank_id, _other = publisher
    token = _partner_token(pub_db, "takedowns")
    server = Server(pub_db)
    proxy = FaultyProxy(server.base, "hang", at=4)
    local_db = tmp_path / "partner.db"
    url = f"{proxy.base}/api/exchange/banks/{bank_id}/signals"
    try:
        env = {**os.environ, "MIRRORWATCH_DB": str(local_db), "PARTNER_TOKEN": token}
        proc = subprocess.Popen([sys.executable, "-m", "mirrorwatch.cli.main", "bank", "subscribe", url, "--bank",
                                 "mirror", "--create", "--token-env", "PARTNER_TOKEN", "--page-size", "5"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proxy.hanging.wait(120), "the subscriber never asked for page 4"
        deadline = time.monotonic() + 60
        while (_subscription(local_db).cursor or "").rsplit(".", 1)[-1] != "15":  # page 3 applied
            assert time.monotonic() < deadline
            time.sleep(0.2)
        proc.kill()
        proc.wait(30)
        assert len(_local(local_db)) == 15
        proxy.release.set()
        r = _subscribe(local_db, url, token, "--page-size", "5")
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["complete"] and (out["added"], out["records"]) == (8, 8)
        assert len(_local(local_db)) == 23
    finally:
        proxy.close()
        server.stop()


@pytest.mark.parametrize("fault, message", [
    ("drop", "truncated"),
    ("tamper", "do not match its digest"),
    ("replay", "not at the cursor asked for"),
])
def test_bad_pages_refused_with_nothing_applied(publisher, tmp_path, fault, message):
    pub_db, bank_id, _other = publisher
    token = _partner_token(pub_db, "takedowns")
    server = Server(pub_db)
    local_db = tmp_path / "partner.db"
    proxy = FaultyProxy(server.base, fault, at=2)
    try:
        r = _subscribe(local_db, f"{proxy.base}/api/exchange/banks/{bank_id}/signals", token, "--page-size", "10")
        assert r.returncode != 0
        assert message in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
        local = _local(local_db)
        assert len(local) == 10  # page 1 only; nothing of page 2
        assert all(v["name"] != "Someone Else" for v in local.values())
        assert _subscription(local_db).cursor.endswith(".10")
    finally:
        proxy.close()
        server.stop()


def test_signed_feed_verified_and_bad_signature_refused(publisher, tmp_path):
    pub_db, bank_id, _other = publisher
    token = _partner_token(pub_db, "takedowns")
    keys = tmp_path / "keys"
    keys.mkdir()
    assert run_cli("bank", "keygen", str(keys / "publisher")).returncode == 0
    assert run_cli("bank", "keygen", str(keys / "impostor")).returncode == 0
    server = Server(pub_db, env={"MIRRORWATCH_EXCHANGE_SIGN_KEY": str(keys / "publisher.key")})
    url = f"{server.base}/api/exchange/banks/{bank_id}/signals"
    try:
        local_db = tmp_path / "partner.db"
        r = _subscribe(local_db, url, token, "--verify-key", str(keys / "impostor.pub"))
        assert r.returncode != 0 and "not by the key you trust" in r.stderr
        assert _local(local_db) == {}
        r = _subscribe(local_db, url, token, "--verify-key", str(keys / "publisher.pub"))
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["added"] == 23
        # a page whose records were changed after signing: the digest (and so the signature) fails
        proxy = FaultyProxy(server.base, "tamper", at=1)
        try:
            r = _subscribe(local_db, f"{proxy.base}/api/exchange/banks/{bank_id}/signals", token,
                           "--verify-key", str(keys / "publisher.pub"))
        finally:
            proxy.close()
        assert r.returncode != 0 and "digest" in r.stderr
    finally:
        server.stop()


def test_feed_access_control_and_cursors(publisher):
    pub_db, bank_id, other_id = publisher
    partner = _partner_token(pub_db, "takedowns")
    run_cli("user", "add", "boss", "--role", "admin", "--no-password", db=pub_db)
    admin = _token(pub_db, "boss")
    server = Server(pub_db)
    feed = f"{server.base}/api/exchange/banks/{bank_id}/signals"

    def get(url: str, token: str | None, **params):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.get(url, headers=headers, params=params)

    try:
        assert get(feed, None).status_code == 401
        r = get(feed, admin)  # an ordinary token, even an admin's, is no exchange token
        assert r.status_code == 403 and "exchange tokens" in r.json()["error"]
        r = get(f"{server.base}/api/exchange/banks/{other_id}/signals", partner)
        assert r.status_code == 403 and "may not read" in r.json()["error"]
        assert get(f"{server.base}/api/exchange/banks/999/signals", partner).status_code == 403  # existence not told
        for path in ("/api/banks", f"/api/banks/{bank_id}/entries", "/api/me", f"/api/banks/{bank_id}/export"):
            r = get(server.base + path, partner)
            assert r.status_code == 403, path
            assert "scoped to the exchange feed" in r.json()["error"]
        r = httpx.post(f"{server.base}/api/entries/1/withdraw", headers={"Authorization": f"Bearer {partner}"})
        assert r.status_code == 403
        assert httpx.get(server.base + "/banks", headers={"Authorization": f"Bearer {partner}"}).status_code == 403

        page = get(feed, partner, limit=7).json()
        assert page["format"] == FORMAT and page["count"] == 7 and page["has_more"]
        head = page["next_cursor"].rsplit(".", 1)[0]
        r = get(feed, partner, cursor=f"{head}.999999")
        assert r.status_code == 400 and "from the future" in r.json()["error"]
        r = get(feed, partner, cursor="garbage")
        assert r.status_code == 400 and "malformed cursor" in r.json()["error"]
        r = get(feed, partner, cursor="c1." + "0" * 32 + ".3")
        assert r.status_code == 400 and "another bank" in r.json()["error"]
        assert get(feed, partner, limit=0).status_code == 422
        nxt = get(feed, partner, cursor=page["next_cursor"], limit=100).json()
        assert nxt["count"] == 16 and not nxt["has_more"]
        assert get(feed, admin, cursor=page["next_cursor"]).status_code == 403
    finally:
        server.stop()


def test_signed_export_import_round_trip_every_hash_form(publisher, tmp_path):
    pub_db, _bank_id, _other = publisher
    keys = tmp_path / "k"
    assert run_cli("bank", "keygen", str(keys)).returncode == 0
    assert run_cli("bank", "keygen", str(tmp_path / "other")).returncode == 0
    out = tmp_path / "takedowns.signals.jsonl"
    r = run_cli("bank", "export", "takedowns", "--sign-key", f"{keys}.key", "-o", str(out), db=pub_db)
    assert r.returncode == 0, r.stderr
    lines = out.read_text().splitlines()
    assert json.loads(lines[0])["format"] == FORMAT and json.loads(lines[-1])["signature"]

    local = tmp_path / "partner.db"
    run_cli("bank", "create", "mirror", db=local)
    r = run_cli("bank", "import", str(out), "--bank", "mirror", db=local)
    assert r.returncode != 0 and "--verify-key" in r.stderr
    r = run_cli("bank", "import", str(out), "--bank", "mirror", "--verify-key", str(tmp_path / "other.pub"), db=local)
    assert r.returncode != 0 and "not by the key you trust" in r.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines[:5] + [lines[5].replace("Invented", "Changed")] + lines[6:]) + "\n")
    r = run_cli("bank", "import", str(bad), "--bank", "mirror", "--verify-key", f"{keys}.pub", db=local)
    assert r.returncode != 0 and "changed or damaged" in r.stderr
    truncated = tmp_path / "truncated.jsonl"
    truncated.write_text("\n".join(lines[:-3]) + "\n")
    r = run_cli("bank", "import", str(truncated), "--bank", "mirror", "--allow-unsigned", db=local)
    assert r.returncode != 0 and "truncated" in r.stderr
    assert _local(local) == {}

    r = run_cli("bank", "import", str(out), "--bank", "mirror", "--verify-key", f"{keys}.pub", "--json", db=local)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["added"] == 23
    # the partner's own export carries every hash form the publisher's did, value for value
    theirs = {(rec["name"], json.dumps(rec["hashes"], sort_keys=True), json.dumps(rec["signals"], sort_keys=True),
               tuple(rec["sizes"])) for rec in _publisher_records(pub_db).values()}
    r = run_cli("bank", "export", "mirror", db=local)
    mine_lines = [json.loads(x) for x in r.stdout.splitlines()[1:-1]]
    mine = {(rec["name"], json.dumps(rec["hashes"], sort_keys=True), json.dumps(rec["signals"], sort_keys=True),
             tuple(rec["sizes"])) for rec in mine_lines}
    assert mine == theirs
    assert all(set(rec["hashes"]) == set(FORMS) for rec in mine_lines)
    r = run_cli("bank", "import", str(out), "--bank", "mirror", "--verify-key", f"{keys}.pub", "--json", db=local)
    assert json.loads(r.stdout)["unchanged"] == 23  # idempotent


def test_hash_lists_for_other_tools(publisher, tmp_path):
    pub_db, _bank_id, _other = publisher
    sheet = tmp_path / "sheet.csv"
    assert run_cli("bank", "export", "takedowns", "--format", "sheet", "-o", str(sheet), db=pub_db).returncode == 0
    header = sheet.read_text().splitlines()[0].split(",")
    assert header[:2] == ["Model Name", "Civitai URL"] and "SHA256" in header
    # the researchers' sheet reads back into a bank with its hashes
    other = tmp_path / "other.db"
    r = run_cli("bank", "import", str(sheet), "--bank", "copy", "--create", "--json", db=other)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["added"] == 23
    r = run_cli("bank", "export", "takedowns", "--format", "sha256sum", db=pub_db)
    rows = r.stdout.splitlines()
    assert len(rows) == 23 and all(len(x.split("  ")[0]) == 64 for x in rows)
    r = run_cli("bank", "export", "takedowns", "--format", "te-csv", db=pub_db)
    rows = r.stdout.splitlines()
    assert rows[0] == "signal_type,signal_value"
    assert {x.split(",")[0] for x in rows[1:]} == set(FORMS)
    run_cli("bank", "withdraw", "1", db=pub_db)
    r = run_cli("bank", "export", "takedowns", "--format", "sha256sum", db=pub_db)
    assert len(r.stdout.splitlines()) == 22  # withdrawn entries leave the hash lists
