"""The watcher: one per database, running the scheduler until asked to stop.

One active watcher per database: the watcher holds the `sweep_lock` row named "watcher"
(`store.locks`: a heartbeat thread refreshes it; a holder that died is taken over, at once when it
was a process of this host, else STALE_AFTER after its last heartbeat). A second watcher waits, says
so, and takes over when the first is gone. Before each job, and now and then during one, the watcher
checks that it still holds the lock; a watcher that lost it (its database unreachable for longer
than STALE_AFTER, and another watcher took over) stops with an error.

Stopping: SIGTERM or SIGINT sets the stop event; the running job finishes the transaction it is in
(a sweep: the batch of repos it is writing), records its run as interrupted (resumed by the next
run, which the next watcher starts at once), and the watcher exits 0. A second signal stops at once
(KeyboardInterrupt: the open transaction is rolled back; the run is still resumable).

The `watcher` row records who runs it, since when, its last sign of life, and how it stopped."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select, update

from mirrorwatch.display import safe_text
from mirrorwatch.errors import Conflict
from mirrorwatch.services.watchstate import WATCHER_KEY
from mirrorwatch.store.db import Database
from mirrorwatch.store.fit import fit_text
from mirrorwatch.store.locks import HEARTBEAT_EVERY_S, SweepBusy, SweepLockHandle, acquire_sweep_lock
from mirrorwatch.store.models import SweepLock, Watcher, utcnow
from mirrorwatch.watch.clock import Clock, SystemClock
from mirrorwatch.watch.config import WatchConfig, format_duration
from mirrorwatch.watch.scheduler import Scheduler


class WatcherLockLost(Conflict):
    """Another watcher took this database over (this one's heartbeats stopped reaching it)."""


def _stderr(message: str) -> None:
    """One line per event on stderr (the journal, under systemd); hub-controlled text (repo ids in
    errors) made safe to print."""
    print(f"{utcnow().isoformat(timespec='seconds')}Z {safe_text(message)}", file=sys.stderr, flush=True)


class WatchRunner:
    """Runs a watch config against a database: waits for the lock, runs the scheduler, stops cleanly."""

    def __init__(self, db: Database, config: WatchConfig, *, clock: Clock | None = None,
                 say: Callable[[str], None] = _stderr, wait_every_s: float = 5.0, max_sleep_s: float = 30.0,
                 beat_every_s: float = HEARTBEAT_EVERY_S) -> None:
        self.db = db
        self.config = config
        self.clock = clock or SystemClock()
        self.say = say
        self.wait_every_s = wait_every_s
        self.max_sleep_s = max_sleep_s
        self.beat_every_s = beat_every_s
        self.stop = threading.Event()
        self.stop_reason: str | None = None
        self.lock: SweepLockHandle | None = None
        self.lost = False
        self.scheduler: Scheduler | None = None
        self._last_beat = 0.0

    # -- stopping ------------------------------------------------------------------------------------------
    def request_stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        self.stop.set()

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT: stop after the current transaction; the same signal again: stop at once."""

        def handler(signum: int, _frame: object) -> None:
            name = signal.Signals(signum).name
            if self.stop.is_set():
                raise KeyboardInterrupt
            self.request_stop(f"signal {name}")
            self.say(f"{name}: stopping after the current transaction (send it again to stop at once)")

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, handler)

    # -- the lock ------------------------------------------------------------------------------------------
    def _holder(self) -> tuple[str, datetime] | None:
        with self.db.session() as s:
            row = s.scalar(select(SweepLock).where(SweepLock.scope_key == WATCHER_KEY))
            return (row.holder, row.heartbeat_at) if row is not None else None

    def acquire(self) -> bool:
        """Take the watcher lock, waiting for another watcher to stop; False if asked to stop first."""
        told: str | None = None
        while not self.stop.is_set():
            try:
                self.lock = acquire_sweep_lock(self.db, WATCHER_KEY, "watch")
                if told is not None:
                    self.say("the other watcher is gone: taking over")
                return True
            except SweepBusy:
                other = self._holder()
                if other is not None and other[0] != told:
                    told = other[0]
                    self.say(f"another watcher is running on this database ({other[0]}, last heartbeat "
                             f"{other[1].isoformat(timespec='seconds')}Z): waiting for it to stop")
            self.clock.sleep(self.wait_every_s, self.stop)
        return False

    def _check_lock(self) -> None:
        if self.lock is not None and not self.lock.held():
            self.lost = True
            self.request_stop("lost the watcher lock")
            raise WatcherLockLost("this watcher lost its lock: another watcher took the database over "
                                  "(this one's heartbeats stopped reaching the database); stopping")

    def alive(self) -> None:
        """A sign of life (throttled): the watcher row's heartbeat; and a check that the lock is ours."""
        now = time.monotonic()
        if now - self._last_beat < self.beat_every_s:
            return
        self._last_beat = now
        with contextlib.suppress(Exception):  # a busy database: the next sign of life tries again
            if self.lock is not None and not self.lock.held():
                self.lost = True
                self.request_stop("lost the watcher lock")
                return
            with self.db.session() as s:
                s.execute(update(Watcher).where(Watcher.name == WATCHER_KEY, Watcher.holder == self.lock.holder)
                          .values(heartbeat_at=utcnow()))

    def _mark(self, *, started: bool, reason: str | None = None) -> None:
        assert self.lock is not None
        now = utcnow()
        with self.db.session() as s:
            row = s.get(Watcher, WATCHER_KEY)
            if started:
                if row is None:
                    row = Watcher(name=WATCHER_KEY, holder=self.lock.holder)
                    s.add(row)
                row.holder, row.started_at, row.heartbeat_at = self.lock.holder, now, now
                row.stopped_at, row.stop_reason = None, None
            elif row is not None and row.holder == self.lock.holder:
                row.heartbeat_at, row.stopped_at, row.stop_reason = now, now, fit_text(reason or "stopped", 300)

    # -- running -------------------------------------------------------------------------------------------
    def run(self, *, until: datetime | None = None) -> None:
        """Wait for the lock, run jobs as they fall due until stopped (or `until`, for tests); release."""
        for note in self.config.notes:
            self.say(f"note: {note}")
        if not self.acquire():
            self.say(f"stopped ({self.stop_reason}) while waiting for the other watcher")
            return
        reason = "stopped"
        try:
            self._mark(started=True)
            self.say("watching: " + ", ".join(f"{j.name} every {format_duration(j.every)}" for j in self.config.jobs))
            self.scheduler = Scheduler(self.db, self.config.jobs, self.clock, self.stop, say=self.say,
                                       alive=self.alive, before_job=self._check_lock, max_sleep_s=self.max_sleep_s)
            self.scheduler.sync()
            self.scheduler.run(until=until)
            if self.lost:
                raise WatcherLockLost("this watcher lost its lock: another watcher took the database over; stopping")
            reason = self.stop_reason or "ran until its end time"
        except KeyboardInterrupt:
            reason = f"{self.stop_reason or 'interrupted'}, then stopped at once"
            raise
        except BaseException as exc:
            reason = f"stopped by an error: {type(exc).__name__}: {exc}"
            raise
        finally:
            with contextlib.suppress(Exception):
                self._mark(started=False, reason=reason)
            with contextlib.suppress(Exception):
                self.lock.release()
            self.say(f"watcher stopped: {reason}")
