"""Benchmark: `mirrorwatch watch` stopped and killed mid-sweep, and handed over between watchers.

    .venv/bin/python benchmarks/bench_watch.py                       # 3,000 repos, 5 SIGTERMs, 5 SIGKILLs
    .venv/bin/python benchmarks/bench_watch.py --repos 20000 --terms 10 --kills 10

The test hub runs in its own process (bench_sweep.HubProcess). A watcher (one job: `sweep hf`) is
stopped with SIGTERM at random moments mid-sweep (time from the signal to exit 0), then SIGKILLed
at random moments (time for the next watcher to take the locks over and start the sweep again),
then left to finish: its matches must be exactly the planted ones, each once, in one sweep run.
Last, the time a waiting second watcher (--wait-every 1s) needs to take over after the first stops.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sweep import HubProcess, bank_sha


def make_bank(db, n: int) -> None:
    from mirrorwatch.services.banks import create_bank
    from mirrorwatch.store.models import Entry, EntrySignal

    create_bank(db, "bench")
    with db.session() as s:
        for i in range(n):
            e = Entry(bank_id=1, key=f"sha256:{bank_sha(i)}", name=f"Bench Entry {i}", name_norm=f"bench entry {i}")
            s.add(e)
            s.flush()
            s.add(EntrySignal(entry_id=e.id, form="sha256", value=bank_sha(i)))


class Watch:
    def __init__(self, db_path: Path, cfg: Path, log: Path, *extra: str) -> None:
        self.log = log
        env = dict(os.environ, MIRRORWATCH_DB=str(db_path))
        self.out = log.open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "mirrorwatch.cli.main", "watch", str(cfg), *extra],
                                     env=env, stdout=self.out, stderr=subprocess.STDOUT)

    def wait_text(self, text: str, timeout: float = 300) -> float:
        start = time.monotonic()
        while text not in self.log.read_text():
            if self.proc.poll() is not None or time.monotonic() - start > timeout:
                raise SystemExit(f"watcher did not print {text!r}:\n{self.log.read_text()}")
            time.sleep(0.01)
        return time.monotonic() - start


def fetched(db) -> int:
    from sqlalchemy import select

    from mirrorwatch.store.models import ScanRun

    with db.session() as s:
        run = s.scalar(select(ScanRun).order_by(ScanRun.id.desc()))
        return int((run.counts or {}).get("fetched", 0)) if run else 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repos", type=int, default=3000)
    ap.add_argument("--planted", type=int, default=60)
    ap.add_argument("--latency-ms", type=float, default=2.0)
    ap.add_argument("--terms", type=int, default=5)
    ap.add_argument("--kills", type=int, default=5)
    args = ap.parse_args()

    from sqlalchemy import func, select

    from mirrorwatch.store.db import Database
    from mirrorwatch.store.models import Match, ScanRun

    hub = HubProcess(args.repos, args.planted, args.latency_ms)
    rng = random.Random(5)
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        db_path = tmpd / "watch.db"
        db = Database.open(str(db_path))
        make_bank(db, args.planted)
        cfg = tmpd / "watch.toml"
        cfg.write_text(f'[hubs.hf]\nendpoint = "{hub.url}"\nsweep_every = "1h"\n')
        stops: list[float] = []
        takeovers: list[float] = []
        n = 0
        for sig, count in ((signal.SIGTERM, args.terms), (signal.SIGKILL, args.kills)):
            for _ in range(count):
                n += 1
                w = Watch(db_path, cfg, tmpd / f"w{n}.log")
                takeovers.append(w.wait_text("sweep hf: started"))
                start = fetched(db)
                target = start + rng.randint(10, max(11, args.repos // (4 * (args.terms + args.kills))))
                while w.proc.poll() is None and fetched(db) < target:
                    time.sleep(0.01)
                time.sleep(rng.uniform(0, 0.2))
                sent = time.monotonic()
                w.proc.send_signal(sig)
                rc = w.proc.wait(120)
                if sig == signal.SIGTERM:
                    stops.append(time.monotonic() - sent)
                    assert rc == 0, (rc, w.log.read_text())
        last = Watch(db_path, cfg, tmpd / "last.log")
        takeovers.append(last.wait_text("sweep hf: started"))
        last.wait_text("sweep hf: ok", timeout=1800)
        second = Watch(db_path, cfg, tmpd / "second.log", "--wait-every", "1s")
        second.wait_text("another watcher is running")
        sent = time.monotonic()
        last.proc.send_signal(signal.SIGTERM)
        assert last.proc.wait(60) == 0
        second.wait_text("watching")
        handover = time.monotonic() - sent
        second.proc.send_signal(signal.SIGTERM)
        assert second.proc.wait(60) == 0
        with db.session() as s:
            matches = s.scalar(select(func.count()).select_from(Match))
            distinct = s.scalar(select(func.count(func.distinct(Match.entry_id))))
            runs = [(r.status, (r.checkpoint or {}).get("resumes", 0)) for r in s.scalars(select(ScanRun))]
    hub.stop()
    print(f"hub: {args.repos} repos ({args.planted} planted), {args.latency_ms} ms per request")
    print(f"SIGTERM mid-sweep x{len(stops)}: exit 0 after median {statistics.median(stops):.2f} s, "
          f"max {max(stops):.2f} s")
    print(f"restart (process start, lock take-over, sweep resumed) x{len(takeovers)}: median "
          f"{statistics.median(takeovers):.2f} s, max {max(takeovers):.2f} s")
    print(f"second watcher takes over after the first stops: {handover:.2f} s (--wait-every 1s)")
    print(f"matches {matches} (planted {args.planted}, distinct entries {distinct}); sweep runs {runs}")
    assert matches == distinct == args.planted and len(runs) == 1 and runs[0][0] == "finished"


if __name__ == "__main__":
    main()
