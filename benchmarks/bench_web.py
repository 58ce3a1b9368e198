"""Web benchmark: a 1,000,000-entry bank and 100,000 matches, served by uvicorn on the SQLite default,
loaded from a second process with 32 concurrent keep-alive connections.

    ./dev bench web                      # generate (cached under ./bench-data/), serve, load, report
    ./dev bench web --seconds 20 --workers 2
    ./dev bench web --postgres postgresql+psycopg://user:pw@127.0.0.1:5432/mw_bench   # and the same on PostgreSQL

Measured for each of the lookup API (by SHA256), the search page (a name) and the model page:
  * closed loop: 32 connections sending back to back — the most requests per second the server does;
    latency then includes queueing behind the other 31 connections;
  * open loop: requests sent on a fixed schedule (default 500/s) spread over the 32 connections, latency
    counted from the scheduled send time (no coordinated omission) — what a client sees at that load.
Targets (issue 5): lookup API p99 < 20 ms and >= 500 requests/s, no errors.

The database is generated with bulk inserts into the real schema (migrations run first), users and
tokens through the real services. The load generator is a minimal asyncio HTTP/1.1 client (it only
needs Content-Length bodies), so that it costs less CPU than the server it measures."""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench-data"
N_ENTRIES = 1_000_000
N_MATCHES = 100_000
N_REPOS = 30_000
N_AUTHORS = 5_000
GEN_VERSION = 1
SYLL = ["ka", "lo", "mi", "ra", "ven", "to", "sha", "el", "dar", "ni", "qu", "sol", "bri", "an", "tes", "mor",
        "ly", "ze", "ph", "or", "ia", "den", "cas", "rin", "vo", "ul", "fe", "gar", "ho", "ix"]


def _sha(i: int, salt: str = "e") -> str:
    import hashlib

    return hashlib.sha256(f"{salt}{i}".encode()).hexdigest()


def _word(rng: random.Random, parts: int) -> str:
    return "".join(rng.choice(SYLL) for _ in range(parts)).capitalize()


def generate(path: Path) -> None:
    """Build the benchmark database (about a minute); reused while GEN_VERSION is unchanged."""
    from mirrorwatch.text.names import normalise_name

    t0 = time.perf_counter()
    tmp, bank_id, token = start_bank_db(path, "Benchmark bank", "1M synthetic removed models")

    rng = random.Random(20261129)
    firsts = sorted({_word(rng, 2) for _ in range(3000)})[:1000]
    lasts = sorted({_word(rng, 3) for _ in range(6000)})[:2000]
    con = sqlite3.connect(tmp)
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-200000")
    now = datetime(2026, 11, 1)
    stamp = now.isoformat(sep=" ")
    with con:
        chunk_e, chunk_s = [], []
        for i in range(1, N_ENTRIES + 1):
            name = f"{firsts[i % len(firsts)]} {lasts[(i // len(firsts)) % len(lasts)]} LoRA"
            if i % 7 == 0:
                name += f" v{i % 5 + 1}"
            chunk_e.append((i, bank_id, f"v:{2_000_000 + i}", name, normalise_name(name),
                            f"https://civitai.com/models/{1_000_000 + i}?modelVersionId={2_000_000 + i}",
                            1_000_000 + i, 2_000_000 + i, "LORA", "bench.csv", i + 1, stamp, stamp))
            chunk_s.append((i, "sha256", _sha(i), "import:bench.csv", stamp))
            if len(chunk_e) == 50_000:
                flush_entries(con, chunk_e, chunk_s)
                chunk_e, chunk_s = [], []
        flush_entries(con, chunk_e, chunk_s)
        con.execute("INSERT INTO import_run (bank_id, filename, fmt, user, at, counts, rejected) VALUES "
                    "(?, 'bench.csv', 'csv', 'bench', ?, ?, '[]')",
                    (bank_id, stamp, json.dumps({"rows": N_ENTRIES, "added": N_ENTRIES})))
        authors = [f"{_word(rng, 2).lower()}{n}" for n in range(N_AUTHORS)]
        repos = []
        for r in range(1, N_REPOS + 1):
            author = authors[min(int(rng.paretovariate(1.2)) - 1, N_AUTHORS - 1) if r % 3 else r % N_AUTHORS]
            created = now - timedelta(days=rng.randint(0, 365))
            repos.append((r, "hf", f"{author}/{rng.choice(['LORA', 'Test-model', 'loras', 'models'])}-{r}", author,
                          created.isoformat(sep=" "), created.isoformat(sep=" "), "a" * 40, 0, 0, "live",
                          created.isoformat(sep=" "), stamp))
        con.executemany("INSERT INTO hub_repo (id, hub, repo_id, author, created_at, last_modified, sha, gated, "
                        "disabled, status, first_seen, last_seen) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", repos)
        files, matches = [], []
        states = ["new"] * 6 + ["confirmed", "dismissed", "second_look", "reported"]
        picked = rng.sample(range(1, N_ENTRIES + 1), N_MATCHES)
        for k, eid in enumerate(picked, 1):
            repo = rng.randint(1, N_REPOS)
            seen = now - timedelta(days=rng.randint(0, 90), seconds=rng.randint(0, 86400))
            files.append((k, repo, f"lora_{k}.safetensors", "a" * 40, 150_000_000, _sha(eid), "{}", "present",
                          seen.isoformat(sep=" "), stamp))
            ev = json.dumps([{"tier": 1, "kind": "hash", "form": "sha256", "value": _sha(eid)}])
            matches.append((k, eid, k, 1, 1.0, ev, rng.choice(states), seen.isoformat(sep=" "), stamp))
        con.executemany("INSERT INTO hub_file (id, repo_pk, path, revision, size, sha256, hashes, status, first_seen, "
                        "last_seen) VALUES (?,?,?,?,?,?,?,?,?,?)", files)
        con.executemany("INSERT INTO match (id, entry_id, hub_file_id, tier, score, evidence, state, created_at, "
                        "updated_at) VALUES (?,?,?,?,?,?,?,?,?)", matches)
    con.execute("ANALYZE")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    meta = {"version": GEN_VERSION, "token": token, "matched": picked[:5000], "firsts": firsts[:200],
            "lasts": lasts[:200]}
    tmp.replace(path)
    path.with_suffix(".json").write_text(json.dumps(meta))
    print(f"generated {N_ENTRIES:,} entries, {N_MATCHES:,} matches in {time.perf_counter() - t0:.0f} s -> {path}")


def start_bank_db(path: Path, bank_name: str, description: str) -> tuple[Path, int, str]:
    """A new database beside `path` (`.tmp.db`, renamed into place once filled) holding one bank, the
    `bench` admin and an API token, made through the real services: (tmp path, bank id, token)."""
    from mirrorwatch.services import users
    from mirrorwatch.services.banks import create_bank
    from mirrorwatch.store.db import Database

    tmp = path.with_suffix(".tmp.db")
    for p in (tmp, Path(str(tmp) + "-wal"), Path(str(tmp) + "-shm")):
        p.unlink(missing_ok=True)
    db = Database.open(str(tmp))
    bank = create_bank(db, bank_name, description=description, user="bench")
    users.add_user(db, "bench", "admin", "bench-password", actor="bench")
    _, token = users.create_token(db, "bench", "bench", actor="bench")
    db.engine.dispose()
    return tmp, bank.id, token


def flush_entries(con: sqlite3.Connection, entries: list, signals: list) -> None:
    """Bulk-insert entry and entry_signal rows (the FTS trigger indexes the names)."""
    con.executemany("INSERT INTO entry (id, bank_id, key, name, name_norm, url, civitai_model_id, civitai_version_id, "
                    "kind, imported_from, row, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", entries)
    con.executemany("INSERT INTO entry_signal (entry_id, form, value, origin, created_at) VALUES (?,?,?,?,?)", signals)


# --- load generator --------------------------------------------------------------------------------

class Conn:
    """One keep-alive HTTP/1.1 connection: send a GET, read status, headers and a Content-Length body."""

    def __init__(self, host: str, port: int, headers: str) -> None:
        self.host, self.port, self.headers = host, port, headers
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> tuple[int, int]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.headers}\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        m = re.search(rb"(?i)content-length: *(\d+)", head)
        n = int(m.group(1)) if m else 0
        body = await self.reader.readexactly(n)
        if re.search(rb"(?i)connection: *close", head):
            self.writer.close()
            self.writer = None
        return status, len(body)


async def _closed(host, port, headers, paths, conns, seconds):
    lat, errors, done = [], 0, 0
    end = time.perf_counter() + seconds

    async def worker(i):
        nonlocal errors, done
        c = Conn(host, port, headers)
        rng = random.Random(i)
        while time.perf_counter() < end:
            t = time.perf_counter()
            try:
                status, _ = await c.get(rng.choice(paths))
            except (OSError, asyncio.IncompleteReadError):
                errors += 1
                c.writer = None
                continue
            lat.append(time.perf_counter() - t)
            done += 1
            if status >= 400:
                errors += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(conns)))
    return lat, errors, done / (time.perf_counter() - t0)


async def _open(host, port, headers, paths, conns, seconds, rate):
    """Requests on a fixed schedule; latency from the scheduled time (includes waiting for a free conn)."""
    lat, errors = [], 0
    free: asyncio.Queue[Conn] = asyncio.Queue()
    for _ in range(conns):
        free.put_nowait(Conn(host, port, headers))
    rng = random.Random(7)
    n = int(rate * seconds)
    t0 = time.perf_counter() + 0.05

    async def one(k):
        nonlocal errors
        sched = t0 + k / rate
        delay = sched - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        c = await free.get()
        try:
            status, _ = await c.get(rng.choice(paths))
            if status >= 400:
                errors += 1
        except (OSError, asyncio.IncompleteReadError):
            errors += 1
            c.writer = None
        finally:
            free.put_nowait(c)
        lat.append(time.perf_counter() - sched)

    await asyncio.gather(*(one(k) for k in range(n)))
    return lat, errors, n / (time.perf_counter() - t0)


def _load(q, mode, host, port, headers, paths, conns, seconds, rate):
    c0 = time.process_time()
    if mode == "closed":
        res = asyncio.run(_closed(host, port, headers, paths, conns, seconds))
    else:
        res = asyncio.run(_open(host, port, headers, paths, conns, seconds, rate))
    q.put((*res, time.process_time() - c0))


def _tree_cpu(root: int) -> float:
    """CPU seconds used so far by a process and its children (uvicorn's workers), from /proc."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == root or int(fields[1]) == root:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def run_load(mode, port, headers, paths, conns, seconds, rate=0.0, server_pid=None):
    """Run the load in a second process (so it does not share the server's interpreter)."""
    q = mp.get_context("spawn").Queue()
    p = mp.get_context("spawn").Process(target=_load, args=(q, mode, "127.0.0.1", port, headers, paths, conns,
                                                              seconds, rate))
    cpu0 = _tree_cpu(server_pid) if server_pid else 0.0
    p.start()
    lat, errors, rps, client_cpu = q.get()
    p.join()
    server_cpu = _tree_cpu(server_pid) - cpu0 if server_pid else float("nan")
    lat.sort()
    pct = (lambda f: lat[min(len(lat) - 1, int(f * len(lat)))] * 1000) if lat else (lambda f: float("nan"))
    n = max(len(lat), 1)
    return {"requests": len(lat), "errors": errors, "rps": rps, "p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99),
            "mean": statistics.fmean(lat) * 1000 if lat else float("nan"),
            "server_cpu_ms": server_cpu * 1000 / n, "client_cpu_ms": client_cpu * 1000 / n}


# --- PostgreSQL --------------------------------------------------------------------------------------

def load_postgres(sqlite_file: Path, url: str) -> None:
    """The generated SQLite database copied into PostgreSQL (an emptied public schema, migrated by the
    real code, then every table by COPY and its id sequence moved past the copied ids), so both
    backends serve the same rows."""
    import sqlalchemy as sa

    from mirrorwatch.store.db import Database

    t0 = time.perf_counter()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
    db = Database.open(url)
    src = sqlite3.connect(sqlite_file)
    pg_tables = sa.inspect(db.engine).get_table_names()
    with db.engine.begin() as conn:
        raw = conn.connection.driver_connection
        from mirrorwatch.store.models import Base

        in_sqlite = {name for (name,) in src.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for table in (t.name for t in Base.metadata.sorted_tables):  # parents before children
            if table not in pg_tables or table not in in_sqlite:
                continue
            pg_cols = {c["name"] for c in sa.inspect(conn).get_columns(table)}
            cols = [r[1] for r in src.execute(f'PRAGMA table_info("{table}")') if r[1] in pg_cols]
            names = ", ".join(f'"{c}"' for c in cols)
            with raw.cursor() as cur, cur.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
                for row in src.execute(f'SELECT {names} FROM "{table}"'):
                    copy.write_row(row)
            if "id" in cols:
                conn.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                     f"(SELECT coalesce(max(id), 0) + 1 FROM \"{table}\"), false)"))
    src.close()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    db.engine.dispose()
    print(f"copied {sqlite_file.name} into PostgreSQL in {time.perf_counter() - t0:.0f} s", flush=True)


def _tree_rss_mb(root: int) -> float:
    """Resident memory of a process and its children (uvicorn's workers, name-search helpers), MB."""
    pids = {root}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            if parent == root:
                pids.add(int(entry))
    for pid in list(pids):  # and their children (helpers of workers)
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) not in pids:
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                            pids.add(int(entry))
                except OSError:
                    continue
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


# --- server ----------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(db_path: Path | str, port: int, workers: int) -> subprocess.Popen:
    env = {**os.environ, "MIRRORWATCH_DB": str(db_path), "MIRRORWATCH_SECRET_KEY": secrets.token_urlsafe(32)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "mirrorwatch.web.asgi:app", "--host", "127.0.0.1", "--port",
         str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log"],
        env=env, start_new_session=True,
    )
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("the server did not start")


def session_cookie(port: int) -> str:
    import httpx

    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
        page = c.get("/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        r = c.post("/login", data={"name": "bench", "password": "bench-password", "csrf_token": csrf})
        assert r.status_code in (200, 303), r.status_code
        return f"mw_session={c.cookies.get('mw_session')}"


def _row(label: str, mode: str, r: dict) -> None:
    print(f"{label:44} {mode:14} {r['rps']:7.0f} {r['p50']:7.1f} {r['p90']:7.1f} {r['p99']:7.1f} {r['errors']:6d} "
          f"{r['server_cpu_ms']:9.2f} {r['client_cpu_ms']:9.2f}", flush=True)


def measure(db_ref: Path | str, backend: str, meta: dict, args) -> dict:
    """Serve db_ref with uvicorn, run the load against each endpoint, print and return the figures."""
    port = _free_port()
    proc = serve(db_ref, port, args.workers)
    try:
        token_h = f"Authorization: Bearer {meta['token']}\r\n"
        cookie_h = f"Cookie: {session_cookie(port)}\r\n"
        rng = random.Random(1)
        matched = meta["matched"]
        lookup_paths = [f"/api/lookup?q={_sha(rng.choice(matched) if k % 2 else rng.randint(1, N_ENTRIES))}"
                        for k in range(2000)]
        names = [f"{rng.choice(meta['firsts'])} {rng.choice(meta['lasts'])}" for _ in range(500)]
        search_paths = [f"/search?q={quote(n)}" for n in names]
        model_paths = [f"/entries/{rng.choice(matched)}" for _ in range(2000)]
        targets = [("lookup API (GET /api/lookup?q=<sha256>)", token_h, lookup_paths),
                   ("search page (GET /search?q=<name>)", cookie_h, search_paths),
                   ("model page (GET /entries/<id>)", cookie_h, model_paths)]
        for _, h, paths in targets:  # warm caches (vocabulary, database pages, prepared statements)
            run_load("closed", port, h, paths, 4, 1.5)
        results = {}
        print(f"\nmirrorwatch web benchmark: {N_ENTRIES:,} entries, {N_MATCHES:,} matches, {backend}, uvicorn "
              f"workers={args.workers}, {args.connections} connections, {os.cpu_count()} CPUs\n")
        print(f"{'endpoint':44} {'mode':14} {'req/s':>7} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'errors':>6} "
              f"{'server':>9} {'client':>9}")
        print(f"{'':44} {'':14} {'':>7} {'':>7} {'':>7} {'':>7} {'':>6} {'CPU ms/req':>9} {'CPU ms/req':>9}")
        keys = ("lookup", "search", "model")
        targets = [t for k, t in zip(keys, targets, strict=True) if not args.only or k in args.only]
        for label, h, paths in targets:
            closed = run_load("closed", port, h, paths, args.connections, args.seconds, server_pid=proc.pid)
            results[f"{label} [closed]"] = closed
            _row(label, "closed loop", closed)
            # open loop at the target rate, and at 70% of what the closed loop reached when that is
            # lower (the latency a client sees at a load the server sustains)
            rates = [args.rate] + ([0.7 * closed["rps"]] if 0.7 * closed["rps"] < args.rate else [])
            for rate in rates:
                r = run_load("open", port, h, paths, args.connections, args.seconds, rate, server_pid=proc.pid)
                results[f"{label} [open {rate:.0f}/s]"] = r
                _row(label, f"open {rate:.0f}/s", r)
        results["server RSS MB"] = {"value": _tree_rss_mb(proc.pid)}
        print(f"\nserver RSS (uvicorn, its workers and their name-search helpers): "
              f"{results['server RSS MB']['value']:.0f} MB")
        if not any(k.startswith("lookup") for k in results):
            return results
        lk_closed = results[f"{targets[0][0]} [closed]"]
        lk_open = results[f"{targets[0][0]} [open {args.rate:.0f}/s]"]
        ok = lk_closed["rps"] >= 500 and lk_open["p99"] < 20 and lk_closed["errors"] == lk_open["errors"] == 0
        load = os.getloadavg()
        print(f"load average during the run (all processes on the machine): {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
        cpu_req = lk_closed["server_cpu_ms"] + lk_closed["client_cpu_ms"]
        print(f"lookup API: {lk_closed['server_cpu_ms']:.2f} ms server CPU per request -> at most "
              f"{1000 * (os.cpu_count() or 1) / cpu_req:.0f} req/s on {os.cpu_count()} idle CPUs with this load generator"
              + (" (PostgreSQL's own CPU not counted)" if backend != "SQLite" else ""))
        print(f"targets: lookup API >= 500 req/s ({lk_closed['rps']:.0f}), p99 < 20 ms at {args.rate:.0f}/s "
              f"({lk_open['p99']:.1f} ms), no errors -> {'met' if ok else 'NOT met'}")
        return results
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="duration of each load run")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--rate", type=float, default=500.0, help="open-loop request rate (the target)")
    ap.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    ap.add_argument("--only", choices=("lookup", "search", "model"), action="append",
                    help="measure only these endpoints (repeatable)")
    ap.add_argument("--regenerate", action="store_true")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON too")
    ap.add_argument("--postgres", nargs="?", const=os.environ.get("MIRRORWATCH_BENCH_PG", ""), default=None,
                    metavar="URL", help="also serve the same rows from PostgreSQL (URL, else $MIRRORWATCH_BENCH_PG; "
                                        "its public schema is emptied first) and compare")
    ap.add_argument("--only-postgres", action="store_true", help="with --postgres: skip the SQLite run")
    args = ap.parse_args()
    if args.postgres == "":
        raise SystemExit("--postgres needs a URL (or MIRRORWATCH_BENCH_PG)")

    DATA.mkdir(exist_ok=True)
    db_path = DATA / "web-1m.db"
    meta_path = db_path.with_suffix(".json")
    fresh = db_path.exists() and meta_path.exists() and json.loads(meta_path.read_text()).get("version") == GEN_VERSION
    if args.regenerate or not fresh:
        generate(db_path)
    meta = json.loads(meta_path.read_text())
    every: dict[str, dict] = {}
    if not (args.postgres and args.only_postgres):
        run_copy = DATA / "web-1m.run.db"  # serve a copy: logins write audit rows
        shutil.copyfile(db_path, run_copy)
        for suffix in ("-wal", "-shm"):
            Path(str(run_copy) + suffix).unlink(missing_ok=True)
        every["SQLite"] = measure(run_copy, "SQLite", meta, args)
    if args.postgres:
        load_postgres(db_path, args.postgres)
        every["PostgreSQL"] = measure(args.postgres, "PostgreSQL", meta, args)
    if len(every) > 1:
        print("\nside by side (req/s | p99 ms):")
        print(f"{'':60}" + "".join(f"{b:>22}" for b in every))
        for key in every["SQLite"]:
            if key in every["PostgreSQL"] and "rps" in every["SQLite"][key]:
                print(f"{key:60}" + "".join(f"{r[key]['rps']:>10.0f} | {r[key]['p99']:>7.1f} ms" for r in every.values()))
        print(f"{'server RSS MB':60}" + "".join(f"{r['server RSS MB']['value']:>22.0f}" for r in every.values()))
    if args.json:
        print(json.dumps(every, indent=2))


if __name__ == "__main__":
    main()
