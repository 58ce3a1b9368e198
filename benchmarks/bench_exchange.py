"""Exchange benchmark (issue 12, item 3): a partner's first sync of a large bank over loopback, then a
day with 1,000 changes.

    ./dev bench exchange                       # 1,000,000 entries (target: first sync < 5 minutes)
    ./dev bench exchange --entries 100000      # a tenth, for a busy machine

The publisher's bank is generated with bulk inserts into the real schema (each entry: name, Civitai
URL and ids, SHA256 and CRC32 like the researchers' sheet); the partner token is made through the
real services, scoped to that bank. The publisher is `uvicorn mirrorwatch.web.asgi:app` on
127.0.0.1; the partner runs the real `subscribe` service (the code behind `mirrorwatch bank
subscribe`) into its own SQLite database. Then the publisher changes 1,000 entries (500 new, 300 that
learn a BLAKE3, 200 withdrawn) and the partner syncs again. Reported: seconds, records per second,
pages, and the bytes on the wire (gzip) for both syncs."""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sqlite3
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_web import _free_port, _tree_cpu, flush_entries, serve, start_bank_db  # noqa: E402

TARGET_SECONDS = 300


def _sha(i: int, salt: str = "x") -> str:
    return hashlib.sha256(f"{salt}{i}".encode()).hexdigest()


def generate(path: Path, n: int) -> tuple[int, str]:
    """The publisher's database with one bank of n entries; returns (bank id, partner token)."""
    from mirrorwatch.services import users
    from mirrorwatch.store.db import Database

    tmp, bank_id, _admin_token = start_bank_db(path, "takedowns", "exchange benchmark")
    con = sqlite3.connect(tmp)
    con.execute("PRAGMA journal_mode=WAL")
    now = datetime(2026, 11, 1).isoformat(sep=" ")
    entries, signals = [], []
    for i in range(1, n + 1):
        name = f"Invented Person {i} LoRA v{i % 5 + 1}"
        entries.append((i, bank_id, f"v:{i}", name, name.lower(), f"https://civitai.com/models/{i}?modelVersionId={i}",
                        i, i, "LORA", "bench", i, now, now))
        signals.append((i, "sha256", _sha(i), "import", now))
        signals.append((i, "crc32", _sha(i, "c")[:8], "import", now))
        if len(entries) >= 50_000:
            flush_entries(con, entries, signals)
            entries, signals = [], []
    flush_entries(con, entries, signals)
    con.commit()
    con.close()
    db = Database.open(str(tmp))
    users.add_user(db, "partner", "viewer", None, actor="bench")
    _, token = users.create_token(db, "partner", "exchange", scope={"exchange_read": [bank_id]}, actor="bench")
    db.engine.dispose()
    tmp.replace(path)
    for suffix in ("-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    return bank_id, token


def change_a_day(path: Path, bank_id: int, n: int) -> None:
    """1,000 changes at the publisher, through the real services where a person would make them."""
    from sqlalchemy import update

    from mirrorwatch.services.exchange import mark_changed, withdraw_entry
    from mirrorwatch.store.db import Database
    from mirrorwatch.store.models import Entry, EntrySignal

    db = Database.open(str(path))
    with db.session() as s:
        for i in range(n + 1, n + 501):
            e = Entry(bank_id=bank_id, key=f"v:{i}", name=f"Invented Person {i}", name_norm=f"invented person {i}",
                      civitai_model_id=i, civitai_version_id=i)
            s.add(e)
            s.flush()
            s.add(EntrySignal(entry_id=e.id, form="sha256", value=_sha(i)))
        learned = list(range(1000, 1300))
        for i in learned:
            s.add(EntrySignal(entry_id=i, form="blake3", value=_sha(i, "b"), origin="mirror"))
        s.execute(update(Entry).where(Entry.id.in_(learned)).values(updated_at=datetime(2026, 11, 2)))
        mark_changed(s, learned)
    for i in range(2000, 2200):
        withdraw_entry(db, i, user="bench")
    db.engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--page-size", type=int, default=5000)
    ap.add_argument("--data", type=Path, default=ROOT / "bench-data" / "exchange")
    args = ap.parse_args()

    from mirrorwatch.services.banks import create_bank
    from mirrorwatch.services.subscribe import subscribe
    from mirrorwatch.store.db import Database

    args.data.mkdir(parents=True, exist_ok=True)
    pub = args.data / f"publisher-{args.entries}.db"
    partner = args.data / f"partner-{args.entries}.db"
    for p in (pub, partner):
        for suffix in ("", "-wal", "-shm"):
            Path(str(p) + suffix).unlink(missing_ok=True)
    shutil.rmtree(args.data / "home", ignore_errors=True)
    os.environ["MIRRORWATCH_HOME"] = str(args.data / "home")
    t0 = time.perf_counter()
    bank_id, token = generate(pub, args.entries)
    print(f"generated a {args.entries:,}-entry bank in {time.perf_counter() - t0:.0f} s")
    port = _free_port()
    proc = serve(pub, port, 1)
    try:
        url = f"http://127.0.0.1:{port}/api/exchange/banks/{bank_id}/signals"
        db = Database.open(str(partner))
        create_bank(db, "mirror")
        t0, c0, s0 = time.perf_counter(), time.process_time(), _tree_cpu(proc.pid)
        first = subscribe(db, url, "mirror", token, limit=args.page_size)
        t_first = time.perf_counter() - t0
        cpu_client, cpu_server = time.process_time() - c0, _tree_cpu(proc.pid) - s0
        assert first.complete and first.counts.added == args.entries, first.to_dict()
        change_a_day(pub, bank_id, args.entries)
        t0 = time.perf_counter()
        day = subscribe(db, url, "mirror", token, limit=args.page_size)
        t_day = time.perf_counter() - t0
        c = day.counts
        assert (c.added, c.updated, c.withdrawn) == (500, 300, 200), day.to_dict()
        t0 = time.perf_counter()
        idle = subscribe(db, url, "mirror", token, limit=args.page_size)
        t_idle = time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    rate = args.entries / t_first
    projected = 1_000_000 / rate
    print(f"\nexchange benchmark: {args.entries:,} entries, page size {args.page_size}, loopback, SQLite both sides")
    print(f"{'':28}{'seconds':>10}{'records':>12}{'pages':>8}{'bytes (wire)':>16}")
    print(f"{'first sync':28}{t_first:>10.1f}{first.records:>12,}{first.pages:>8}{first.bytes:>16,}")
    print(f"{'a day: 1,000 changes':28}{t_day:>10.2f}{day.records:>12,}{day.pages:>8}{day.bytes:>16,}")
    print(f"{'nothing changed':28}{t_idle:>10.2f}{idle.records:>12,}{idle.pages:>8}{idle.bytes:>16,}")
    print(f"\nfirst sync: {rate:,.0f} records/s; {first.bytes / max(first.records, 1):.0f} wire bytes per record")
    print(f"first sync CPU: server {cpu_server:.1f} s, partner {cpu_client:.1f} s (they overlap: the partner applies a "
          f"page while the next is served); load average now {os.getloadavg()[0]:.1f}")
    if args.entries != 1_000_000:
        scale = 1_000_000 / args.entries
        print(f"projected first sync of 1,000,000 entries: {projected:.0f} s at this run's speed; "
              f"{max(cpu_server, cpu_client) * scale:.0f}-{(cpu_server + cpu_client) * scale:.0f} s of CPU-bound "
              f"time on an otherwise idle 2-core machine (target < {TARGET_SECONDS} s)")
    else:
        print(f"target: first sync < {TARGET_SECONDS} s: {'met' if t_first < TARGET_SECONDS else 'MISSED'}")


if __name__ == "__main__":
    main()
