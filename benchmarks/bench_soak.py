"""Soak run (on demand, not CI): sweeps in a loop against the local test hub while the web app is
under load, with the resident memory (RSS) of the sweep process and of the server sampled every few
seconds. Loopback only, bounded in time.

    ./dev bench soak --minutes 30          # the issue's soak run
    ./dev bench soak --minutes 4 --warmup 1

Reports RSS at the end of the warm-up and at the end, and the slope after warm-up (MB per minute, a
least-squares fit) for both processes, with the number of sweeps, web requests and errors. Memory is
"flat after warm-up" when the slope times the run's length is small next to the RSS.

Each sweep is a full listing of the hub (every repo read again: --no-resume and a fresh database
every --fresh-every sweeps, so hashes are fetched and matches written, not only skipped), through the
real huggingface_hub client and the sweep runner, in its own process. The web load is the lookup API,
the search page, the review queue and the scans page over a few keep-alive connections from this process."""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import random
import secrets
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_sweep import HubProcess, bank_sha
from bench_web import _free_port, serve, session_cookie


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def make_db(path: Path, plants: int) -> str:
    from mirrorwatch.services import users
    from mirrorwatch.services.banks import create_bank
    from mirrorwatch.store.db import Database
    from mirrorwatch.store.models import Entry, EntrySignal

    db = Database.open(str(path))
    create_bank(db, "soak")
    with db.session() as s:
        for i in range(max(plants, 2000)):
            e = Entry(bank_id=1, key=f"k{i}", name=f"Soak Person {i}", name_norm=f"soak person {i}")
            s.add(e)
            s.flush()
            s.add(EntrySignal(entry_id=e.id, form="sha256", value=bank_sha(i)))
    users.add_user(db, "bench", "admin", "bench-password", actor="bench")
    _, token = users.create_token(db, "bench", "bench", actor="bench")
    db.engine.dispose()
    return token


def sweeper(db_path: str, url: str, until: float, out_q) -> None:
    """The sweep process: full sweeps back to back until `until`."""
    from mirrorwatch.hubs.huggingface.hub import HuggingFaceHub
    from mirrorwatch.store.db import Database
    from mirrorwatch.sweep.runner import Sweep, SweepOptions

    os.environ.pop("HF_TOKEN", None)
    db = Database.open(db_path)
    hub = HuggingFaceHub(url, token="")
    n = errors = 0
    while time.time() < until:
        opts = SweepOptions(scope={"sort": "createdAt"}, concurrency=8, resume=False, headers=False)
        try:
            summary = Sweep(db, hub, opts).run()
            errors += summary.status != "finished"
            out_q.put(("sweep", summary.counts.get("listed", 0), summary.counts.get("fetched", 0), summary.seconds))
        except Exception as exc:  # a failing sweep is a finding, not the end of the soak
            errors += 1
            out_q.put(("error", repr(exc)[:200], 0, 0.0))
        n += 1
        if n % 3 == 0:  # forget what was swept, so the next sweeps fetch and match again
            with db.session() as s:
                from sqlalchemy import text

                s.execute(text("DELETE FROM hub_repo"))
    out_q.put(("done", n, errors, 0.0))


def web_load(port: int, token: str, cookie: str, until: float, stats: dict) -> None:
    import httpx

    rng = random.Random(threading.get_ident())
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
        while time.time() < until:
            k = rng.random()
            try:
                if k < 0.5:
                    r = c.get(f"/api/lookup?q={bank_sha(rng.randrange(4000))}",
                              headers={"Authorization": f"Bearer {token}"})
                elif k < 0.8:
                    r = c.get(f"/search?q=soak+person+{rng.randrange(2000)}", headers={"Cookie": cookie})
                else:
                    r = c.get("/queue" if k < 0.9 else "/scans", headers={"Cookie": cookie})
                stats["requests"] += 1
                if r.status_code >= 400:
                    stats["errors"] += 1
            except httpx.HTTPError:
                stats["errors"] += 1


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope in MB per minute of (seconds, MB) points."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    den = sum((t - mx) ** 2 for t, _ in points)
    return 60 * sum((t - mx) * (v - my) for t, v in points) / den if den else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=None, help="minutes of warm-up (default: a fifth, at most 5)")
    ap.add_argument("--repos", type=int, default=1500)
    ap.add_argument("--plants", type=int, default=100)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--every", type=float, default=5.0, help="seconds between RSS samples")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    warmup_s = 60 * (args.warmup if args.warmup is not None else min(5.0, args.minutes / 5))
    work = Path(tempfile.mkdtemp(prefix="mw-soak-"))
    hub = HubProcess(args.repos, args.plants, latency_ms=1.0)
    server = None
    sweep_proc = None
    try:
        db_path = work / "soak.db"
        token = make_db(db_path, args.plants)
        os.environ["MIRRORWATCH_SECRET_KEY"] = secrets.token_urlsafe(32)
        port = _free_port()
        server = serve(db_path, port, 1)
        cookie = session_cookie(port)
        start = time.time()
        until = start + 60 * args.minutes
        ctx = mp.get_context("spawn")
        q = ctx.Queue()
        sweep_proc = ctx.Process(target=sweeper, args=(str(db_path), hub.url, until, q), daemon=True)
        sweep_proc.start()
        stats = {"requests": 0, "errors": 0}
        threads = [threading.Thread(target=web_load, args=(port, token, cookie, until, stats), daemon=True)
                   for _ in range(args.connections)]
        for t in threads:
            t.start()
        samples: list[tuple[float, float | None, float | None]] = []
        events: list[tuple] = []
        while time.time() < until and sweep_proc.is_alive():
            samples.append((time.time() - start, rss_mb(sweep_proc.pid), rss_mb(server.pid)))
            with contextlib.suppress(Exception):
                while True:
                    events.append(q.get_nowait())
            if not args.json:
                t, a, b = samples[-1]
                print(f"{t:7.0f}s  sweep RSS {a or 0:7.1f} MB  server RSS {b or 0:7.1f} MB  "
                      f"sweeps {sum(e[0] == 'sweep' for e in events):4d}  web requests {stats['requests']:7d}",
                      flush=True)
            time.sleep(args.every)
        for t in threads:
            t.join(60)
        sweep_proc.join(300)
        with contextlib.suppress(Exception):
            while True:
                events.append(q.get_nowait())
    finally:
        if sweep_proc is not None and sweep_proc.is_alive():
            sweep_proc.terminate()
        if server is not None:
            server.terminate()
            server.wait(10)
        hub.stop()
        shutil.rmtree(work, ignore_errors=True)

    def report(index: int) -> dict:
        pts = [(s[0], s[index]) for s in samples if s[index] is not None]
        warm = [p for p in pts if p[0] >= warmup_s] or pts
        return {"rss_warmup_end_mb": round(warm[0][1], 1), "rss_end_mb": round(pts[-1][1], 1),
                "rss_max_mb": round(max(v for _, v in pts), 1),
                "slope_mb_per_min": round(slope(warm), 3)}

    sweeps = [e for e in events if e[0] == "sweep"]
    out = {"minutes": args.minutes, "warmup_minutes": warmup_s / 60, "repos": args.repos,
           "sweeps": len(sweeps), "sweep_errors": sum(e[0] == "error" for e in events)
           + next((e[2] for e in events if e[0] == "done"), 0),
           "repos_fetched": sum(e[2] for e in sweeps), "web_requests": stats["requests"],
           "web_errors": stats["errors"], "sweep_process": report(1), "server": report(2)}
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"\nsoak: {args.minutes:g} min ({warmup_s / 60:g} min warm-up), {args.repos} repos, "
          f"{out['sweeps']} sweeps ({out['repos_fetched']} repos fetched, {out['sweep_errors']} errors), "
          f"{out['web_requests']} web requests ({out['web_errors']} errors)")
    print(f"{'process':14} {'RSS warm-up end':>16} {'RSS end':>9} {'RSS max':>9} {'slope MB/min':>13}")
    for name, key in (("sweep", "sweep_process"), ("server", "server")):
        r = out[key]
        print(f"{name:14} {r['rss_warmup_end_mb']:14.1f}MB {r['rss_end_mb']:7.1f}MB {r['rss_max_mb']:7.1f}MB "
              f"{r['slope_mb_per_min']:13.3f}")


if __name__ == "__main__":
    main()
