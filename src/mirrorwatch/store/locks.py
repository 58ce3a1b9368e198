"""A lock the database holds: one sweep per hub scope at a time, across processes and hosts.

The lock is a `sweep_lock` row keyed by the scope; its holder (host and pid) refreshes a heartbeat
while it runs. A holder that crashed stops refreshing, and once its heartbeat is older than
`STALE_AFTER` (at once when the holder was a process of this host that no longer exists) the next
sweep takes the lock over (an atomic compare-and-set on the old heartbeat, so
two takers cannot both win)."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from mirrorwatch.errors import Conflict
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import ScanRun, SweepLock, utcnow
from mirrorwatch.store.upsert import insert_missing

STALE_AFTER = timedelta(seconds=120)
HEARTBEAT_EVERY_S = 10.0


class SweepBusy(Conflict):
    """Another sweep of the same scope holds the lock."""


def holder_id() -> str:
    return f"{socket.gethostname()[:150]} pid {os.getpid()} thread {threading.get_ident()}"


def _dead_here(holder: str) -> bool:
    """Whether a holder is a process of this host that no longer exists (killed, crashed)."""
    parts = holder.split(" ")
    if len(parts) < 3 or parts[0] != socket.gethostname()[:150] or parts[1] != "pid" or not parts[2].isdigit():
        return False
    try:
        os.kill(int(parts[2]), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists (another user's process)
        return False
    return False


class SweepLockHandle:
    """A held lock: `beat()` refreshes it (a background thread does so every HEARTBEAT_EVERY_S),
    `release()` gives it back."""

    def __init__(self, db: Database, key: str, holder: str, *, every_s: float = HEARTBEAT_EVERY_S) -> None:
        self.db, self.key, self.holder = db, key, holder
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(every_s,), daemon=True, name="sweep-lock")
        self._thread.start()

    def _loop(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            with contextlib.suppress(Exception):  # a busy database: the next beat tries again
                self.beat()

    def beat(self, run_id: int | None = None) -> None:
        values: dict = {"heartbeat_at": utcnow()}
        if run_id is not None:
            values["run_id"] = run_id
        with self.db.session() as s:
            s.execute(update(SweepLock).where(SweepLock.scope_key == self.key, SweepLock.holder == self.holder)
                      .values(**values))

    def held(self) -> bool:
        """Whether this handle still holds its lock (a holder whose heartbeats stopped reaching the
        database for STALE_AFTER may have been taken over)."""
        with self.db.session() as s:
            return s.scalar(select(SweepLock.holder).where(SweepLock.scope_key == self.key)) == self.holder

    def release(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        with self.db.session() as s:
            s.execute(delete(SweepLock).where(SweepLock.scope_key == self.key, SweepLock.holder == self.holder))


def _describe(s, lock: SweepLock) -> str:
    run = s.get(ScanRun, lock.run_id) if lock.run_id is not None else None
    started = (run.started_at if run is not None else lock.started_at).isoformat(timespec="seconds") + "Z"
    what = f"run {lock.run_id}" if lock.run_id is not None else "a sweep starting"
    return (f"another sweep of this scope is running ({what}, started {started}, {lock.holder}, "
            f"last heartbeat {lock.heartbeat_at.isoformat(timespec='seconds')}Z); wait for it to end, "
            f"or for its lock to expire {int(STALE_AFTER.total_seconds())} s after its last heartbeat")


def acquire_sweep_lock(db: Database, key: str, source: str, *, now: datetime | None = None,
                       every_s: float = HEARTBEAT_EVERY_S) -> SweepLockHandle:
    """Take the lock of scope `key`, or raise SweepBusy naming the holder."""
    holder = holder_id()
    now = now or utcnow()
    with db.session() as s:
        got = insert_missing(s, SweepLock, [{"scope_key": key, "source": source, "run_id": None, "holder": holder,
                                              "started_at": now, "heartbeat_at": now}], ("scope_key",))
        if not got:
            lock = s.scalar(select(SweepLock).where(SweepLock.scope_key == key))
            if lock is None:  # released between our insert and our read: try once more
                got = insert_missing(s, SweepLock, [{"scope_key": key, "source": source, "run_id": None,
                                                      "holder": holder, "started_at": now, "heartbeat_at": now}],
                                     ("scope_key",))
            elif lock.heartbeat_at < now - STALE_AFTER or _dead_here(lock.holder):  # its holder died: take over
                got = s.execute(
                    update(SweepLock)
                    .where(SweepLock.scope_key == key, SweepLock.holder == lock.holder,
                           SweepLock.heartbeat_at == lock.heartbeat_at)
                    .values(holder=holder, run_id=None, started_at=now, heartbeat_at=now)
                    .execution_options(synchronize_session=False)
                ).rowcount
            if not got:
                if lock is None:
                    lock = s.scalar(select(SweepLock).where(SweepLock.scope_key == key))
                raise SweepBusy(_describe(s, lock) if lock is not None else "another sweep of this scope is starting")
    return SweepLockHandle(db, key, holder, every_s=every_s)
