"""Where request work runs: hash lookups and pages in the app's small default thread pool (web/app.py),
name searches apart, so that they never slow hash lookups down.

A name search costs tens of milliseconds even with its bounded plan (bank/search.py); a hash lookup
about one. Run in the same pool, eight clients searching names kept every thread busy and hash
lookups queued behind them (issue 13: median 3.6 s). Threads alone do not fix it: the ranking is
Python, and a hash lookup then waits for the GIL. So:

  * a name query runs whole (ranking and reading the entries) in one of NAME_SEARCH_PROCESSES
    helper processes at a lower CPU priority (nice +10): no GIL shared with the server, and the OS
    gives the CPU to hash lookups and pages first. The server only awaits the answer.
  * without helpers (in-memory SQLite, NAME_SEARCH_PROCESSES=0, or a helper that died), name
    queries run on NAME_SEARCH_THREADS threads of their own, never the default pool's;
  * waiting is bounded: past NAME_SEARCH_QUEUE waiting searches, a new one is refused at once with
    503 and Retry-After instead of piling up."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import threading
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from fastapi.concurrency import run_in_threadpool

from mirrorwatch.bank.search import search_names
from mirrorwatch.errors import MirrorwatchError
from mirrorwatch.services.lookup import LookupResult, classify_query, lookup
from mirrorwatch.store.db import Database

NAME_SEARCH_THREADS = max(1, int(os.environ.get("MIRRORWATCH_NAME_SEARCH_THREADS", "2")))
NAME_SEARCH_PROCESSES = max(0, int(os.environ.get("MIRRORWATCH_NAME_SEARCH_PROCESSES", "1")))
NAME_SEARCH_QUEUE = max(1, int(os.environ.get("MIRRORWATCH_NAME_SEARCH_QUEUE", "64")))
NAME_SEARCH_NICE = 10


class SearchBusy(MirrorwatchError):
    """Too many name searches are waiting: try again shortly."""

    http_status = 503
    http_headers = {"Retry-After": "1"}


# --- the helper process side ---------------------------------------------------------------------

_DBS: OrderedDict[str, Database] = OrderedDict()


def _helper_init() -> None:
    with contextlib.suppress(OSError):  # not permitted: still a separate GIL
        os.nice(NAME_SEARCH_NICE)


def _helper_lookup(url: str, query: str, limit: int, bank: str | None) -> LookupResult:
    db = _DBS.pop(url, None) or Database.open(url, migrate=False)
    _DBS[url] = db
    while len(_DBS) > 4:  # bounded: a few databases per helper (tests open many)
        _DBS.popitem(last=False)[1].engine.dispose()
    return lookup(db, query, limit=limit, bank=bank, name_search=_search)


def _search(db: Database, query: str, limit: int) -> tuple[list[int], dict[int, float]]:
    return search_names(db, query, limit=limit)


# --- the server side -----------------------------------------------------------------------------

class _NamePool:
    def __init__(self, threads: int, processes: int, queue: int) -> None:
        self.threads, self.processes, self.queue = threads, processes, queue
        self._executor: ThreadPoolExecutor | None = None
        self._helpers: ProcessPoolExecutor | None = None
        self._pending = 0
        self._lock = threading.Lock()

    def _threads(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="mw-name-search")
            return self._executor

    def _helper_pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._helpers is None:
                self._helpers = ProcessPoolExecutor(max_workers=self.processes, mp_context=mp.get_context("spawn"),
                                                    initializer=_helper_init)
            return self._helpers

    async def _in_helper(self, db: Database, query: str, limit: int, bank: str | None) -> LookupResult | None:
        """The lookup in a helper process, or None when there is none to use."""
        if self.processes == 0 or ":memory:" in db.url or db.url == "sqlite://":
            return None
        pool = self._helper_pool()
        try:
            return await asyncio.wrap_future(pool.submit(_helper_lookup, db.url, query, limit, bank))
        except BrokenProcessPool:  # a helper died (killed, out of memory): start afresh next time
            with self._lock:
                if self._helpers is pool:
                    self._helpers = None
            pool.shutdown(wait=False, cancel_futures=True)
            return None

    async def run(self, db: Database, query: str, *, limit: int, bank: str | None) -> LookupResult:
        with self._lock:
            if self._pending >= self.queue:
                raise SearchBusy("too many name searches at once: try again in a moment")
            self._pending += 1
        try:
            result = await self._in_helper(db, query, limit, bank)
            if result is None:
                loop = asyncio.get_running_loop()
                result = await loop.run_in_executor(
                    self._threads(), lambda: lookup(db, query, limit=limit, bank=bank, name_search=_search))
            return result
        finally:
            with self._lock:
                self._pending -= 1


NAME_POOL = _NamePool(NAME_SEARCH_THREADS, NAME_SEARCH_PROCESSES, NAME_SEARCH_QUEUE)


async def run_lookup(db: Database, query: str, *, limit: int = 20, bank: str | None = None) -> LookupResult:
    """services.lookup.lookup, on the pool its kind belongs to (classifying costs microseconds)."""
    kind = classify_query(query) if query.strip() and len(query) <= 2000 else "other"
    if kind == "name":
        return await NAME_POOL.run(db, query, limit=limit, bank=bank)
    return await run_in_threadpool(lookup, db, query, limit=limit, bank=bank)
