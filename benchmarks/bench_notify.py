"""Benchmark: notification latency and delivery guarantees, on loopback.

    ./dev bench notify                                   # 5 latency trials, 20 outages, 5 SIGKILLs
    ./dev bench notify --trials 10 --outages 40 --kills 10 --matches 40
    ./dev bench notify --deliverer "notify deliver --loop --every 0.5"   # (or the watcher's command)

1. Latency: a new re-upload appears on the local test hub (a real HTTP server, read through the real
   huggingface_hub client); one incremental sweep cycle finds it and writes the match and its
   `match.new` event in one transaction; the deliverer (a separate process, `mirrorwatch notify
   deliver --loop`) posts it to a webhook receiver on 127.0.0.1. Printed: the sweep cycle, the time
   from the sweep's start to the webhook's arrival, and from the sweep's end (commit) to the
   arrival. Target: arrival within one sweep cycle + 5 s.
2. Guarantees: while reviewer decisions keep producing events (several per match), the receiver is
   taken down --outages times and the deliverer is SIGKILLed --kills times (and restarted). At the
   end every event must have reached the receiver exactly once after deduplication by event id
   (at-least-once on the wire: redeliveries after a kill are counted), each delivery recorded
   delivered once, and the events of each match in order.

The receiver verifies every signature with mirrorwatch.webhooks.verify_webhook (tests/support)."""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "support"))
os.environ.setdefault("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
os.environ.pop("HF_TOKEN", None)

from webhook_receiver import Receiver, free_port  # noqa: E402

DEFAULT_DELIVERER = "notify deliver --loop --every 0.5 --retry-base 0.2 --retry-cap 2 --timeout 2"


def bank_sha(i: int) -> str:
    return hashlib.sha256(f"bench-notify-{i}".encode()).hexdigest()


class Deliverer:
    """The delivering process: started, SIGKILLed and restarted on demand."""

    def __init__(self, db_url: str, command: str, log: Path) -> None:
        self.args = [sys.executable, "-m", "mirrorwatch.cli.main", "--db", db_url, *shlex.split(command)]
        self.log = log
        self.proc: subprocess.Popen | None = None
        self.kills = 0

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=out, env=dict(os.environ))

    def kill_and_restart(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.kills += 1
        self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def wait_for(pred, timeout: float, step: float = 0.01) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return False


def setup(db_url: str, entries: int):
    from mirrorwatch.services.banks import create_bank
    from mirrorwatch.store.db import Database
    from mirrorwatch.store.models import Entry, EntrySignal

    db = Database.open(db_url)
    bank = create_bank(db, "bench-notify")
    with db.session() as s:
        for i in range(entries):
            e = Entry(bank_id=bank.id, key=f"k{i}", name=f"Bench Person {i}", name_norm=f"bench person {i}")
            s.add(e)
            s.flush()
            s.add(EntrySignal(entry_id=e.id, form="sha256", value=bank_sha(i)))
    return db, bank.id


def latency(db, running, rec: Receiver, trials: int, timeout: float) -> list[tuple[float, float, float]]:
    from mirrorwatch.hubs.huggingface.hub import HuggingFaceHub
    from mirrorwatch.sweep.runner import Sweep, SweepOptions
    from mirrorwatch.testhub import Repo, RepoFile

    out = []
    for t in range(trials):
        rid = f"fresh-uploader/reupload-{t}"
        running.hub.add(Repo(rid, files=[RepoFile("lora.safetensors", size=140_000_000 + t, sha256=bank_sha(t))],
                             created_at=datetime.now(UTC).replace(tzinfo=None)))
        seen = len(rec.events())
        t0 = time.monotonic()
        summary = Sweep(db, HuggingFaceHub(running.url), SweepOptions(scope={"sort": "createdAt"}, headers=False,
                                                                      concurrency=4)).run()
        t1 = time.monotonic()
        if summary.counts["matches"] != 1:
            raise SystemExit(f"trial {t}: the sweep found {summary.counts['matches']} matches, not 1")

        def arrived(rid=rid, seen=seen) -> bool:
            return any(e.get("kind") == "match.new" and e["mirror"]["repo_id"] == rid for e in rec.events()[seen:])

        if not wait_for(arrived, timeout):
            raise SystemExit(f"trial {t}: no webhook within {timeout} s after the sweep")
        t2 = time.monotonic()
        out.append((t1 - t0, t2 - t0, t2 - t1))
    return out


def warm_up(db, bank_id: int, rec: Receiver) -> None:
    """Wait until the deliverer process is up: one event through it (not counted below)."""
    from mirrorwatch.store.outbox import MATCH_STATE, emit

    with db.session() as s:
        emit(s, MATCH_STATE, bank_id=bank_id, payload={"warm_up": True})
    if not wait_for(lambda: any(e.get("warm_up") for e in rec.events()), 60):
        raise SystemExit("the deliverer did not deliver the warm-up event within 60 s (see its log)")


def chaos(db, bank_id: int, rec: Receiver, deliverer: Deliverer, *, outages: int, kills: int, matches: int,
          seconds_per_outage: float, seed: int) -> dict:
    from sqlalchemy import select

    from mirrorwatch.services.review import decide
    from mirrorwatch.store.models import Entry, Match

    rng = random.Random(seed)
    prng = random.Random(seed + 1)  # the producer thread's own
    with db.session() as s:
        mids = list(s.scalars(select(Match.id).join(Entry).where(Entry.bank_id == bank_id).order_by(Match.id)))
    mids = mids[:matches]
    cycle = ["confirmed", "second_look", "new"]
    stop = threading.Event()
    made = {"decisions": 0}

    def produce() -> None:  # reviewers at work: every match moves new -> confirmed -> second_look -> new ...
        k = 0
        while not stop.is_set():
            batch = prng.sample(mids, k=max(1, len(mids) // 4))
            states = {m: s for m, s in zip(mids, _states(db, mids), strict=True)}
            for state in cycle:
                ok = [m for m in batch if _next(states[m]) == state]
                if ok:
                    decide(db, ok, state, None, "bench")
                    made["decisions"] += len(ok)
            k += 1
            time.sleep(0.05)

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    schedule = sorted([("outage", rng.uniform(0, 1)) for _ in range(outages)]
                      + [("kill", rng.uniform(0, 1)) for _ in range(kills)], key=lambda x: x[1])
    for what, _ in schedule:
        if what == "outage":
            rec.stop()
            time.sleep(rng.uniform(0.3, 1.0) * seconds_per_outage)
            rec.start()
            time.sleep(rng.uniform(0.3, 1.0) * seconds_per_outage)
        else:
            time.sleep(rng.uniform(0.05, 0.6))
            deliverer.kill_and_restart()
    stop.set()
    producer.join(30)
    return made


def _next(state: str) -> str:
    return {"new": "confirmed", "confirmed": "second_look", "second_look": "new"}.get(state, "")


def _states(db, mids: list[int]) -> list[str]:
    from sqlalchemy import select

    from mirrorwatch.store.models import Match

    with db.session() as s:
        got = dict(s.execute(select(Match.id, Match.state).where(Match.id.in_(mids))).all())
    return [got[m] for m in mids]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", help="database URL (default: a temporary SQLite file)")
    ap.add_argument("--repos", type=int, default=300, help="background repos on the test hub")
    ap.add_argument("--trials", type=int, default=5, help="latency trials (one new re-upload each)")
    ap.add_argument("--matches", type=int, default=20, help="matches whose events the outage phase produces")
    ap.add_argument("--outages", type=int, default=20)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--outage-s", type=float, default=1.5, help="longest down (and up) time of one outage")
    ap.add_argument("--deliverer", default=DEFAULT_DELIVERER,
                    help=f"mirrorwatch arguments of the delivering process (default: {DEFAULT_DELIVERER!r})")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (database, deliverer log)")
    args = ap.parse_args()

    from sqlalchemy import func, select

    from mirrorwatch.hubs.huggingface.hub import HuggingFaceHub
    from mirrorwatch.services import notify
    from mirrorwatch.store.models import NotifyDelivery
    from mirrorwatch.sweep.runner import Sweep, SweepOptions
    from mirrorwatch.testhub import Hub, Repo, RepoFile, generate_repos, serve

    tmp = Path(tempfile.mkdtemp(prefix="bench-notify-"))
    os.environ["MIRRORWATCH_HOME"] = str(tmp / "home")
    db_url = args.db or f"sqlite:///{tmp / 'notify.db'}"
    entries = args.trials + args.matches
    db, bank_id = setup(db_url, entries)
    running = serve(Hub(generate_repos(args.repos, seed=11)))
    rec = Receiver("", free_port()).start()
    made = notify.add_channel(db, bank_id, rec.url, kinds=["match.new", "match.state"], user="bench")
    rec.secret = made.secret
    cid = made.channel.id
    deliverer = Deliverer(db_url, args.deliverer, tmp / "deliverer.log")
    deliverer.start()
    try:
        # a first sweep of the background (nothing to find), then the latency trials
        Sweep(db, HuggingFaceHub(running.url), SweepOptions(scope={"sort": "createdAt"}, headers=False)).run()
        warm_up(db, bank_id, rec)
        lat = latency(db, running, rec, args.trials, timeout=60)
        # the matches of the guarantee phase (their match.new events are delivered too)
        for i in range(args.trials, entries):
            running.hub.add(Repo(f"bulk-uploader/lora-{i}", files=[RepoFile("lora.safetensors", size=150_000_000 + i,
                                                                               sha256=bank_sha(i))]))
        Sweep(db, HuggingFaceHub(running.url), SweepOptions(scope={"sort": "createdAt"}, headers=False)).run()
        t0 = time.monotonic()
        produced = chaos(db, bank_id, rec, deliverer, outages=args.outages, kills=args.kills, matches=args.matches,
                         seconds_per_outage=args.outage_s, seed=args.seed)
        chaos_s = time.monotonic() - t0

        def settled() -> bool:
            with db.session() as s:
                return not s.scalar(select(func.count()).where(NotifyDelivery.channel_id == cid,
                                                               NotifyDelivery.status.in_(("pending", "sending"))))

        t1 = time.monotonic()
        ok = wait_for(settled, 600, step=0.2)
        drain_s = time.monotonic() - t1
    finally:
        deliverer.stop()
        rec.stop()
        running.stop()

    with db.session() as s:
        rows = list(s.execute(select(NotifyDelivery.event_id, NotifyDelivery.status, NotifyDelivery.attempts,
                                     NotifyDelivery.match_id).where(NotifyDelivery.channel_id == cid)))
    want = {r.event_id for r in rows}
    got = [int(b["id"]) for b in rec.events()]
    lost = want - set(got)
    dup_after_dedupe = len(got) - len(set(got))
    statuses = {st: sum(1 for r in rows if r.status == st) for st in ("pending", "sending", "delivered", "failed")}
    per_match: dict[int, list[int]] = {}
    for b in rec.events():
        if b.get("match"):
            per_match.setdefault(b["match"]["id"], []).append(int(b["id"]))
    out_of_order = sum(1 for ids in per_match.values() if ids != sorted(ids))

    print(f"database: {'SQLite file' if db_url.startswith('sqlite') else db_url.split('@')[-1]}, "
          f"test hub with {args.repos} background repos, deliverer: mirrorwatch {args.deliverer}")
    print("\n1. latency: new re-upload on the hub -> webhook received (one sweep cycle + delivery)")
    print(f"   {'trial':>5} {'sweep cycle s':>14} {'sweep start -> webhook s':>25} {'commit -> webhook s':>20}")
    for i, (sweep_s, total_s, after_s) in enumerate(lat):
        print(f"   {i:>5} {sweep_s:>14.2f} {total_s:>25.2f} {after_s:>20.2f}")
    worst_after = max(a for _, _, a in lat)
    print(f"   median sweep start -> webhook {statistics.median(t for _, t, _ in lat):.2f} s; worst commit -> webhook "
          f"{worst_after:.2f} s (target: within the sweep cycle + 5 s: {'met' if worst_after <= 5 else 'NOT met'})")
    print(f"\n2. guarantees over {args.outages} receiver outages and {deliverer.kills} SIGKILLs of the deliverer "
          f"({chaos_s:.0f} s of churn, {produced['decisions']} decisions; all settled {drain_s:.1f} s later: {ok})")
    print(f"   events for the channel        {len(want)}")
    print(f"   received (unique event ids)   {len(set(got))}")
    print(f"   lost                          {len(lost)}")
    print(f"   duplicated after dedupe by id {dup_after_dedupe}")
    print(f"   redelivered on the wire       {rec.duplicates}  (at least once; the receiver drops them by id)")
    print(f"   refused by the receiver       {len(rec.rejected)}")
    print(f"   deliveries recorded           {statuses}")
    print(f"   attempts per delivery         max {max(r.attempts for r in rows)}, "
          f"mean {statistics.mean(r.attempts for r in rows):.2f}")
    print(f"   matches out of order          {out_of_order} of {len(per_match)}")
    db.engine.dispose()
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    good = ok and not lost and not dup_after_dedupe and out_of_order == 0 and statuses["delivered"] == len(want)
    print(f"\nresult: {'PASS' if good else 'FAIL'}")
    if not good:
        sys.exit(1)


if __name__ == "__main__":
    main()
