"""The sweep loop: list repos page by page, keep candidates, fetch their hashes concurrently,
persist each repo (and its matches) in its own transaction, checkpoint as it goes.

Resumable: a sweep killed at any moment (SIGKILL included) and started again with the same
parameters continues the same scan run. Repos already recorded at their current commit sha are
skipped, so nothing is fetched or matched twice, and nothing recorded is lost.

Stoppable: `stop` (a callable, e.g. the watcher's SIGTERM flag) is asked between pages and between
write transactions; a stopped sweep keeps what it wrote, ends `interrupted`, and is resumed likewise.

One sweep per hub scope at a time (`store.locks`: a lock row with a heartbeat, so a crashed holder's
lock expires); sweeps of different scopes may run at once (the writes are conflict-tolerant). A
repo whose rows the database refuses is recorded as an error, never the whole sweep; a sweep that
dies of an exception is recorded `failed` with the reason (and resumed by the next sweep of the same
scope), never `finished`."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from mirrorwatch.config import content_cap
from mirrorwatch.errors import DatabaseUnavailable
from mirrorwatch.hubs.base import (
    DEFAULT_REPO_TYPE,
    DISABLED,
    GATED,
    LIVE,
    Hub,
    ListingPage,
    ListingProblem,
    RemoteFile,
    RepoFiles,
    RepoListing,
    Scope,
    SkipRepo,
    is_weight_file,
    split_typed_id,
)
from mirrorwatch.match.evidence import FileEvidence
from mirrorwatch.match.repo import RepoMatches, match_repo
from mirrorwatch.match.robust import indexes_for
from mirrorwatch.store.db import Database
from mirrorwatch.store.fit import fit_row, fit_text
from mirrorwatch.store.locks import SweepLockHandle, acquire_sweep_lock
from mirrorwatch.store.models import HubRepo, ScanError, ScanRun, utcnow
from mirrorwatch.store.outbox import SWEEP_FAILED, emit
from mirrorwatch.sweep.enrich import (
    ContentRunner,
    EngineLost,
    EnrichOptions,
    StoredReads,
    enrich,
    stored_reads,
)
from mirrorwatch.sweep.ledger import Ledger
from mirrorwatch.sweep.persist import mark_gone, record_error, record_repo, repo_key, upsert_repo

# Asked to stop, a sweep keeps writing what it has already fetched for at most this long (a batch at a
# time), so a stop (SIGTERM to `mirrorwatch watch`) ends within seconds.
STOP_GRACE_S = 3.0
# At most this many repos per write transaction (workers may run far ahead of the writer).
WRITE_BATCH = 64

PERSIST_PART = 2_000  # files of one repo written and matched at a time (a big repo in several parts)
COUNT_KEYS = ("pages", "listed", "candidates", "unchanged", "fetched", "files", "hashes", "matches",
              "skipped", "errors", "disabled", "api_requests", "resolver_requests", "throttled",
              "headers_read", "header_bytes", "header_matches", "fingerprinted", "fingerprint_matches",
              "learned", "unhashed", "content_reads")


@dataclass
class SweepOptions:
    scope: Scope = field(default_factory=lambda: Scope())  # author, search, filter, sort, repos, since
    extensions: tuple[str, ...] = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf")
    min_size: int | None = None
    max_size: int | None = None
    concurrency: int = 8
    resume: bool = True
    checkpoint_every_s: float = 1.0
    headers: bool = True  # tier 2: bounded header reads of safetensors files
    deep: bool = False  # content tier: transient download, full AutoV3 and weight fingerprint
    # the content tier's per-file read cap (MIRRORWATCH_CONTENT_CAP): larger files are hashed from a
    # stream, never copied or fingerprinted (not a parameter of the run's scope)
    content_cap: int = field(default_factory=content_cap)

    def params(self) -> dict[str, Any]:
        scope = {k: _clean(v) for k, v in self.scope.items() if v not in (None, [], "", {})}
        if isinstance(scope.get("since"), datetime):
            scope["since"] = scope["since"].isoformat()
        if isinstance(scope.get("since_by_type"), dict):
            scope["since_by_type"] = {t: d.isoformat() if isinstance(d, datetime) else d
                                      for t, d in scope["since_by_type"].items()}
        return {"scope": scope, "extensions": list(self.extensions), "min_size": self.min_size,
                "max_size": self.max_size, "headers": self.headers, "deep": self.deep}


def _clean(value: Any) -> Any:
    """A scope value for the run's params: strings without NULs (PostgreSQL refuses them)."""
    if isinstance(value, str):
        return fit_text(value, None)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def typed_id(repo_type: str, repo_id: str) -> str:
    """A repo id as people read it in scan errors: `datasets/ns/name` for a non-model repo (the
    hub's URL form), the id itself for a model (or a hub's only type)."""
    return repo_id if repo_type in (DEFAULT_REPO_TYPE, "folder") else f"{repo_type}s/{repo_id}"


@dataclass(frozen=True)
class TypeEnd:
    """The listing of one repo type is over (`failed`: why it stopped early)."""

    repo_type: str
    failed: str | None = None


def scope_key(source: str, params: dict[str, Any]) -> str:
    """The lock key of a sweep: its hub and parameters."""
    return hashlib.sha256(json.dumps([source, params], sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Fetched:
    """What a worker brings back for one repo: its files' hashes and the evidence read (by path)."""

    files: RepoFiles
    evidence: dict[str, FileEvidence]


@dataclass
class SweepSummary:
    run_id: int
    status: str
    counts: dict[str, int]
    resumed: bool
    seconds: float
    quota: dict[str, Any]
    reason: str | None = None  # why a failed (or lost-engine/database, interrupted) sweep stopped
    exit_code: int | None = None  # the error's exit code when its content engine or database went away
    engine: dict[str, int] | None = None  # the content engine's own counts (Ray tasks, results written)

    def to_dict(self) -> dict[str, Any]:
        out = {"run_id": self.run_id, "status": self.status, "resumed": self.resumed,
               "seconds": round(self.seconds, 2), "counts": self.counts, "quota": self.quota}
        if self.reason:
            out["reason"] = self.reason
        if self.engine is not None:
            out["engine"] = self.engine
        return out


def lost_reason(db: Database, exc: BaseException) -> tuple[str, int] | None:
    """(message, exit code) when `exc` means the sweep's content engine or its database went away
    (a server restart, a lost connection), not a bug or bad data; None otherwise."""
    if isinstance(exc, EngineLost):
        return str(exc), exc.exit_code
    if isinstance(exc, DatabaseUnavailable):
        return str(exc), exc.exit_code
    if isinstance(exc, DBAPIError):
        lost = exc.connection_invalidated or (not db.is_sqlite and isinstance(exc, OperationalError | InterfaceError))
        if lost:
            return (f"the database connection was lost ({_first_line(exc.orig)}); what was written is kept, the "
                    "run is recorded interrupted, and the same scan run again resumes it"), DatabaseUnavailable.exit_code
    return None


def _first_line(exc: BaseException | None) -> str:
    text = str(exc or "").strip()
    return (text.splitlines() or [type(exc).__name__])[0][:300]


def _unavailable(db: Database, exc: DBAPIError) -> Exception:
    """A lost database outside the run's own bookkeeping (taking the lock, opening or closing the
    run): DatabaseUnavailable (else the error itself)."""
    lost = lost_reason(db, exc)
    return exc if lost is None else DatabaseUnavailable(lost[0])


class Sweep:
    """One sweep of one hub, through the hub port (`hubs.base.Hub`)."""

    def __init__(self, db: Database, hub: Hub, options: SweepOptions,
                 progress: Callable[[dict[str, int], dict[str, Any]], None] | None = None,
                 stop: Callable[[], bool] | None = None, content: ContentRunner | None = None) -> None:
        self.db = db
        self.hub = hub
        self.options = options
        self.content = content  # where files' content work runs (None: in the sweep's threads)
        self.progress = progress
        # Asked between pages and between batches: once it says True, the sweep finishes the batch it
        # is writing, keeps what was already fetched, and ends "interrupted" (resumed next time).
        self.stop = stop
        self.counts: dict[str, int] = dict.fromkeys(COUNT_KEYS, 0)
        self.run_id: int | None = None
        self.resumed = False
        self._last_checkpoint = 0.0
        self._seen: set[tuple[str, str]] = set()
        self._types_listed: set[str] = set()  # repo types whose listing a resumed run already finished
        self._leftover: Ledger | None = None  # content work a lost engine left, when this sweep runs without one

    # -- scan run bookkeeping --------------------------------------------------------------------
    def _open_run(self) -> None:
        params = self.options.params()
        with self.db.session() as s:
            run = None
            if self.options.resume:
                run = s.scalar(
                    select(ScanRun)
                    .where(ScanRun.source == self.hub.name, ScanRun.status.in_(("running", "interrupted", "failed")))
                    .order_by(ScanRun.id.desc())
                )
                # (we hold this scope's lock: a run still marked running belongs to a dead process;
                # a failed run is resumed only when it crashed, not when the hub's listing failed)
                if run is not None and (run.params != params or (
                        run.status == "failed" and not (run.checkpoint or {}).get("crashed"))):
                    run = None
            if run is None:
                run = ScanRun(source=self.hub.name, params=params, checkpoint={}, counts={}, status="running")
                s.add(run)
                s.flush()
            else:
                self.resumed = True
                types = (run.checkpoint or {}).get("types")
                if isinstance(types, dict):
                    self._types_listed = {t for t, v in types.items() if v == "listed"}
                self.counts.update({k: int(v) for k, v in (run.counts or {}).items() if k in self.counts})
                run.status = "running"
                run.checkpoint = {**(run.checkpoint or {}), "resumes": int((run.checkpoint or {}).get("resumes", 0)) + 1,
                                  "crashed": False}
                run.finished_at = None
            run.heartbeat_at = utcnow()
            self.run_id = run.id

    def _save_counts(self, s: Session, *, status: str | None = None, checkpoint: dict | None = None) -> None:
        run = s.get(ScanRun, self.run_id)
        quota = self._quota()
        self.counts["throttled"] = sum(int(p.get("throttled") or 0) for p in quota.values())
        run.counts = dict(self.counts)
        run.heartbeat_at = utcnow()
        if checkpoint is not None:
            run.checkpoint = {**(run.checkpoint or {}), **checkpoint, "quota": quota}
        if status:
            run.status = status
            if status in ("finished", "failed"):
                run.finished_at = utcnow()

    def _quota(self) -> dict[str, Any]:
        return self.hub.quota()

    def _record_scan_error(self, s: Session, repo_id: str | None, reason: str, path: str | None = None,
                           repo_type: str | None = None) -> None:
        if repo_id is not None and repo_type is not None:
            repo_id = typed_id(repo_type, repo_id)
        s.add(ScanError(**fit_row(ScanError, {"scan_run_id": self.run_id, "repo_id": repo_id, "path": path,
                                              "reason": reason[:2000]})))
        self.counts["errors"] += 1

    def _tick(self) -> None:
        if self.progress:
            self.progress(self.counts, self._quota())

    # -- listing -----------------------------------------------------------------------------
    def repo_types(self) -> list[str]:
        """The repo types this sweep lists, in order: the scope's, else every type of the hub."""
        hub_types = tuple(self.hub.repo_types)
        wanted = self.options.scope.get("repo_types") or list(hub_types)
        return [t for t in hub_types if t in wanted]

    def _listings(self) -> Iterator[ListingPage | TypeEnd]:
        """Pages of listings (and listing problems), deduplicated, stopped at `since`, one repo type
        after the other; a `TypeEnd` after each type (the sweep checkpoints it: a resumed run does
        not list a type again once its listing finished)."""
        scope = self.options.scope
        hub_types = tuple(self.hub.repo_types)
        if scope.get("repos"):
            page: ListingPage = []
            default_types = [t for t in hub_types if t in (scope.get("repo_types") or hub_types[:1])]
            for text in scope["repos"]:
                rtype, rid = split_typed_id(text, hub_types)
                for t in [rtype] if rtype else default_types:
                    try:
                        page.append(self.hub.repo_listing(rid, t))
                    except Exception as exc:  # missing, private or failing repo: record and go on
                        page.append(ListingProblem(typed_id(t, rid),
                                                   f"cannot read repo: {type(exc).__name__}: {str(exc)[:200]}"))
            yield page
            return
        date_attr = "last_modified" if scope.get("sort") == "lastModified" else "created_at"
        for rtype in self.repo_types():
            if rtype in self._types_listed:
                continue
            since = scope.get("since") or (scope.get("since_by_type") or {}).get(rtype)
            if isinstance(since, str):
                since = datetime.fromisoformat(since)
            failed = yield from self._type_pages(Scope(**{**scope, "repo_type": rtype, "since": since}), rtype,
                                                 since, date_attr)
            yield TypeEnd(rtype, failed)

    def _type_pages(self, scope: Scope, rtype: str, since: datetime | None,
                    date_attr: str) -> Iterator[ListingPage]:
        """One repo type's pages; returns why its listing stopped early (None: it ran to its end)."""
        repeats = 0
        pages = iter(self.hub.list_pages(scope))
        while True:
            try:
                hub_page = next(pages)
            except StopIteration:
                return None
            except (DBAPIError, KeyboardInterrupt):
                raise
            except SkipRepo as exc:
                return str(exc)
            except Exception as exc:  # listing failed after the client's retries
                return f"listing stopped: {type(exc).__name__}: {str(exc)[:300]}"
            self.counts["pages"] += 1
            out: ListingPage = []
            fresh = 0
            stop = False
            for listing in hub_page:
                if isinstance(listing, ListingProblem):
                    out.append(ListingProblem(typed_id(rtype, listing.repo_id), listing.reason)
                               if listing.repo_id is not None else listing)
                    continue
                listing.repo_type = rtype  # (the type being listed, whatever a hub forgot to set)
                key = (listing.repo_type, listing.repo_id)
                if key in self._seen:
                    continue
                fresh += 1
                self._seen.add(key)
                when = getattr(listing, date_attr)
                if since is not None and when is not None and when < since:
                    stop = True
                    break
                out.append(listing)
            yield out
            if stop:
                return None
            repeats = repeats + 1 if fresh == 0 else 0  # (empty pages that link on count too)
            if repeats >= 2:
                return "the hub's pagination repeats pages (a Link loop): listing stopped"

    # -- the loop ----------------------------------------------------------------------------
    def _is_candidate(self, listing: RepoListing) -> bool:
        if listing.paths is None:
            return True  # unknown contents: ask
        return any(is_weight_file(p, self.options.extensions) for p in listing.paths)

    def _size_ok(self, f: RemoteFile) -> bool:
        o = self.options
        if f.size is None:
            return True
        return not ((o.min_size is not None and f.size < o.min_size) or (o.max_size is not None and f.size > o.max_size))

    def run(self) -> SweepSummary:
        """Sweep the scope; raises SweepBusy when another sweep of the same scope is running, and
        DatabaseUnavailable when the database goes away before the run is recorded."""
        try:
            lock = acquire_sweep_lock(self.db, scope_key(self.hub.name, self.options.params()), self.hub.name)
        except DBAPIError as exc:
            raise _unavailable(self.db, exc) from None
        try:
            return self._run(lock)
        except DBAPIError as exc:  # (opening the run: nothing was swept yet)
            raise _unavailable(self.db, exc) from None
        finally:
            try:
                lock.release()
            except DBAPIError as exc:  # the database is gone: the lock expires (its holder is dead or stale)
                if lost_reason(self.db, exc) is None:
                    raise

    def _run(self, lock: SweepLockHandle) -> SweepSummary:
        started = time.monotonic()
        self._open_run()
        lock.beat(self.run_id)
        if getattr(self.content, "settle", None) is None and self.hub.reads_bytes:
            ledger = Ledger(self.db, self.hub.name)
            self._leftover = ledger if ledger.any() else None
        status = "finished"
        crash: str | None = None
        failure: str | None = None
        exit_code: int | None = None  # of a run stopped because its engine or database went away
        pool = ThreadPoolExecutor(max_workers=max(1, self.options.concurrency), thread_name_prefix="sweep")
        inflight: dict[Future[Fetched], RepoListing] = {}
        try:
            # (the hub's listing failures are caught per repo type in _listings; our own are crashes)
            several = len(self.repo_types()) > 1
            pages = self._listings()
            listed_all = False
            while not self._stopping():
                try:
                    page = next(pages)
                except StopIteration:
                    listed_all = True
                    break
                if isinstance(page, TypeEnd):
                    self._drain(inflight, 0)  # the type's repos are all written before it counts as listed
                    with self.db.session() as s:
                        if page.failed is not None:
                            prefix = f"{page.repo_type}s: " if several else ""
                            failure = prefix + page.failed
                            self._record_scan_error(s, None, failure)
                            status = "failed"
                        else:
                            self._types_listed.add(page.repo_type)
                        self._save_counts(s, checkpoint={"types": {t: "listed" for t in sorted(self._types_listed)}})
                    continue
                self._handle_page(page, pool, inflight)
            self._drain(inflight, 0)
            if inflight or (status == "finished" and not listed_all):  # asked to stop
                status = "interrupted" if status == "finished" else status
                for fut in inflight:
                    fut.cancel()
                self._drain(inflight, 0, done_only=True)
        except KeyboardInterrupt:
            status = "interrupted"
            for fut in inflight:
                fut.cancel()
            raise
        except Exception as exc:  # the database or a bug: the run is failed (resumable), never finished
            for fut in inflight:
                fut.cancel()
            lost = lost_reason(self.db, exc)
            if lost is not None:  # the content engine or the database went away: stopped, not broken
                status, crash, exit_code = "interrupted", lost[0], lost[1]
            else:
                status = "failed"
                crash = f"sweep stopped by an error: {type(exc).__name__}: {str(exc)[:500]}"
        finally:
            pool.shutdown(wait=status != "interrupted", cancel_futures=True)
            checkpoint: dict[str, Any] = {"finished_listing": status == "finished"}
            if crash:
                checkpoint.update(crashed=status == "failed", reason=crash)
            recorded = self._record_end(status, checkpoint, crash, failure, retry=exit_code is not None)
            if not recorded and crash is not None and exit_code is not None:
                crash += ("; the database could not be reached to record it either (the run shows as running "
                          "until its heartbeat is stale, and is resumed then)")
            if self.options.deep:
                indexes_for(self.db).flush()
            self._tick()
        return SweepSummary(self.run_id, status, dict(self.counts), self.resumed, time.monotonic() - started,
                            self._quota(), reason=crash, exit_code=exit_code, engine=self._engine_stats())

    def _record_end(self, status: str, checkpoint: dict[str, Any], crash: str | None, failure: str | None, *,
                    retry: bool) -> bool:
        """Record how the run ended (with the outbox event of a failed or lost run, in the same
        transaction); after a lost database, tried again a few times while the server comes back.
        Whether it was recorded."""
        for attempt in range(4 if retry else 1):
            try:
                with self.db.session() as s:
                    if crash:
                        self._record_scan_error(s, None, crash)
                    self._save_counts(s, status=status, checkpoint=checkpoint)
                    if status == "failed" or crash:  # the outbox, in the transaction that records the end
                        emit(s, SWEEP_FAILED, bank_id=None, payload={"scan_run": {
                            "id": self.run_id, "source": self.hub.name, "status": status,
                            "reason": (crash or failure or "")[:500], "counts": dict(self.counts)}})
                return True
            except Exception:
                if crash is None:
                    raise  # (a crash stays marked running, its heartbeat stops: shown stalled, resumed)
                if attempt < (3 if retry else 0):
                    time.sleep(1.0 + attempt)
        return False

    def _engine_stats(self) -> dict[str, int] | None:
        stats = getattr(self.content, "stats", None)
        return stats() if callable(stats) else None

    def _handle_page(self, page: ListingPage, pool: ThreadPoolExecutor,
                     inflight: dict[Future[Fetched], RepoListing]) -> None:
        listings = [x for x in page if isinstance(x, RepoListing)]
        known: dict[tuple[str, str], tuple[str | None, str]] = {}
        if listings:
            with self.db.session() as s:
                for rtype in sorted({x.repo_type for x in listings}):
                    keys = {repo_key(x.repo_id): x.repo_id for x in listings if x.repo_type == rtype}
                    ids = list(keys)
                    for i in range(0, len(ids), 500):
                        for rid, sha, st in s.execute(
                            select(HubRepo.repo_id, HubRepo.sha, HubRepo.status).where(
                                HubRepo.hub == self.hub.name, HubRepo.repo_type == rtype,
                                HubRepo.repo_id.in_(ids[i : i + 500])
                            )
                        ):
                            known[(rtype, keys.get(rid, rid))] = (sha, st)
        to_fetch: list[tuple[RepoListing, bool]] = []
        with self.db.write_session() as s:
            for x in page:
                if isinstance(x, ListingProblem):
                    self._record_scan_error(s, x.repo_id, x.reason)
                    self.counts["skipped"] += 1
            self.counts["listed"] += len(page)
            for listing in listings:
                if listing.private:
                    continue
                prev = known.get((listing.repo_type, listing.repo_id))
                if listing.disabled:
                    self.counts["disabled"] += 1
                    if prev is None or prev[1] != DISABLED:
                        self._guarded(s, listing, lambda listing=listing: upsert_repo(
                            s, self.hub.name, listing, status=DISABLED, sha=listing.sha))
                    continue
                if not self._is_candidate(listing):
                    continue
                self.counts["candidates"] += 1
                if prev is not None and listing.sha and prev[0] == listing.sha:
                    self.counts["unchanged"] += 1
                    continue
                to_fetch.append((listing, prev is not None))
            reads: dict[tuple[str, str], StoredReads] = {}
            if self.options.headers or self.options.deep:
                for rtype in sorted({x.repo_type for x, known_before in to_fetch if known_before}):
                    got = stored_reads(s, self.hub.name, [repo_key(x.repo_id) for x, known_before in to_fetch
                                                          if known_before and x.repo_type == rtype], rtype)
                    reads.update({(rtype, rid): r for rid, r in got.items()})
            for listing, _ in to_fetch:
                inflight[pool.submit(self._fetch, listing,
                                     reads.get((listing.repo_type, repo_key(listing.repo_id)), {}))] = listing
            self._save_counts(s)
        self._drain(inflight, self.options.concurrency * 2)

    def _fetch(self, listing: RepoListing, done: StoredReads) -> Fetched:
        """Worker thread: hashes from the hub, then the robust tiers' reads (headers, content).
        Talks to the hub only, never to the database."""
        result = self.hub.fetch_files(listing, None)
        result.files = [f for f in result.files if is_weight_file(f.path, self.options.extensions) and self._size_ok(f)]
        opts = EnrichOptions(headers=self.options.headers, deep=self.options.deep,
                             deep_max_file=self.options.content_cap)
        return Fetched(result, enrich(self.hub, result, opts, done, self.content))

    def _stopping(self) -> bool:
        return self.stop is not None and self.stop()

    def _drain(self, inflight: dict[Future[Fetched], RepoListing], keep: int, *, done_only: bool = False) -> None:
        """Persist finished fetches until at most `keep` are in flight (one transaction per batch
        of whole repos, so a kill loses at most the batch being written, and never half a repo).
        Once asked to stop (`done_only`), persist what has already been fetched, a batch at a time,
        for at most STOP_GRACE_S, and forget the rest (fetched again by the resumed sweep)."""
        deadline = time.monotonic() + STOP_GRACE_S
        while len(inflight) > keep and not (self._stopping() and not done_only):
            if done_only:
                ready = [fut for fut in inflight if fut.done() and not fut.cancelled()]
                if not ready or time.monotonic() > deadline:
                    inflight.clear()
                    return
                done = set(ready[:WRITE_BATCH])
            else:
                finished, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
                done = set(list(finished)[:WRITE_BATCH])  # (the rest: the next transaction)
            # (in repo order: two sweeps writing the same repos take their locks in the same order)
            batch = sorted(((inflight.pop(fut), fut) for fut in done), key=lambda b: (b[0].repo_type, b[0].repo_id))
            with self.db.write_session() as s:
                for listing, fut in batch:
                    self._guarded(s, listing, lambda listing=listing, fut=fut: self._persist(s, listing, fut))
                self._save_counts(s)
            settle = getattr(self.content, "settle", None)  # (recorded content work now persisted)
            if settle is not None:
                settle([listing.repo_id for listing, _ in batch])
            elif self._leftover is not None:  # an engine's work left by an earlier, lost run: done here instead
                self._leftover.settle([listing.repo_id for listing, _ in batch], pending=True)
            self._tick()

    def _guarded(self, s: Session, listing: RepoListing, write: Callable[[], None]) -> None:
        """One repo's writes in a savepoint: a conflict with a concurrent writer is retried once; a
        row the database refuses skips that repo (recorded with the reason), never the sweep."""
        counts = dict(self.counts)
        reason = ""
        for attempt in range(1, 4):
            try:
                with s.begin_nested():
                    write()
                return
            except DBAPIError as exc:
                if lost_reason(self.db, exc) is not None:  # the database went away, not this repo's rows
                    self.counts = dict(counts)
                    raise
                self.counts = dict(counts)
                reason = f"database refused the repo: {type(exc.orig).__name__}: {str(exc.orig)[:300]}"
                # a concurrent writer's row (unique key) or a deadlock between two sweeps: try again
                transient = isinstance(exc, IntegrityError) or getattr(exc.orig, "sqlstate", None) in ("40P01", "40001")
                if not transient:
                    break
                time.sleep(0.05 * attempt)
        try:
            with s.begin_nested():
                record_error(s, self.hub.name, listing, reason)
        except DBAPIError:
            pass
        self._record_scan_error(s, listing.repo_id, reason, repo_type=listing.repo_type)
        self.counts["skipped"] += 1

    def _persist(self, s: Session, listing: RepoListing, fut: Future[Fetched]) -> None:
        try:
            fetched = fut.result()
        except EngineLost:  # the content engine is gone: stop (interrupted, resumable), do not skip every repo
            raise
        except DBAPIError as exc:  # the content engine's record (the ledger) lost its database: stop likewise
            if lost_reason(self.db, exc) is not None:
                raise
            reason = f"unexpected {type(exc).__name__}: {str(exc)[:300]}"
            with s.begin_nested():
                record_error(s, self.hub.name, listing, reason)
            self._record_scan_error(s, listing.repo_id, reason, repo_type=listing.repo_type)
            self.counts["skipped"] += 1
            return
        except Exception as exc:  # SkipRepo, or a bug/unexpected answer: one repo must not stop the sweep
            reason = str(exc) if isinstance(exc, SkipRepo) else f"unexpected {type(exc).__name__}: {str(exc)[:300]}"
            with s.begin_nested():
                record_error(s, self.hub.name, listing, reason)
            self._record_scan_error(s, listing.repo_id, reason, repo_type=listing.repo_type)
            self.counts["skipped"] += 1
            return
        result = fetched.files
        files = result.files  # already filtered by kind and size in the worker (_fetch)
        status = GATED if result.repo.gated else LIVE
        # Every weight file left without a sha256 is recorded with its reason and counted ("unhashed"),
        # whatever its size. When the hub should have hashed it (LFS, or of unknown or large size) the
        # repo is also left without a sha so the next sweep asks again.
        unhashed = [f for f in files if f.sha256 is None]
        if any(f.lfs or f.size is None or f.size > 10_000_000 for f in unhashed):
            result.repo.sha = None
        robust = self.options.headers or self.options.deep
        found = RepoMatches()
        # A big repo (a dataset of tens of thousands of LoRAs) is written and matched in parts, in the
        # same transaction, so only one part's rows are held at a time; files no longer listed are
        # marked gone once every part is written.
        for i in range(0, max(len(files), 1), PERSIST_PART):
            part = files[i : i + PERSIST_PART]
            whole = len(files) <= PERSIST_PART
            part_evidence = fetched.evidence if whole else {f.path: fetched.evidence[f.path] for f in part
                                                            if f.path in fetched.evidence}
            repo, stored, evidence = record_repo(s, self.hub.name, result.repo, part, evidence=part_evidence,
                                                 status=status, complete=whole)
            got = match_repo(self.db, s, stored, evidence, scan_run_id=self.run_id, robust=robust,
                             name_search=self._name_search, archive_opener=getattr(self.hub, "archive_reader", None))
            for k in ("exact", "header", "fingerprint", "learned", "learned_matches"):
                setattr(found, k, getattr(found, k) + getattr(got, k))
            del stored, evidence
            s.flush()
        if len(files) > PERSIST_PART:
            mark_gone(s, repo, {f.path for f in files})
        if robust:
            self._count_reads(s, typed_id(repo.repo_type, repo.repo_id), fetched.evidence)
        self.counts["fetched"] += 1
        self.counts["files"] += len(files)
        self.counts["hashes"] += sum(1 for f in files if f.sha256)
        self.counts["matches"] += found.total
        self.counts["header_matches"] += found.header
        self.counts["fingerprint_matches"] += found.fingerprint
        self.counts["learned"] += found.learned
        if result.method == "resolver":
            self.counts["resolver_requests"] += result.requests
        elif result.method == "api":
            self.counts["api_requests"] += result.requests
        self.counts["unhashed"] += len(unhashed)
        for f in unhashed:
            self._record_scan_error(s, result.repo.repo_id, unhashed_reason(f), path=f.path,
                                    repo_type=result.repo.repo_type)
        for path, reason in result.problems:
            self._record_scan_error(s, result.repo.repo_id, reason, path=path, repo_type=result.repo.repo_type)

    def _count_reads(self, s: Session, repo_id: str, evidence: dict[str, FileEvidence]) -> None:
        """Counts and scan errors for what the robust tiers read of a repo's files."""
        for path, ev in evidence.items():
            if ev.header is not None:
                self.counts["headers_read"] += 1
                self.counts["header_bytes"] += ev.header.bytes_read
            elif "header" in ev.errors:
                self._record_scan_error(s, repo_id, f"header: {ev.errors['header']}", path=path)
            if "content" in ev.errors:
                self._record_scan_error(s, repo_id, f"content: {ev.errors['content']}", path=path)
            if "fingerprint" in ev.errors:
                self._record_scan_error(s, repo_id, f"content: no fingerprint: {ev.errors['fingerprint']}"[:309],
                                        path=path)
            if ev.fingerprint is not None:
                self.counts["fingerprinted"] += 1
            if ev.hashes:
                self.counts["content_reads"] += 1

    def _name_search(self, name: str) -> list[tuple[int, float]]:
        """Bank entries whose names are close to a name found in a header (weak evidence)."""
        from mirrorwatch.bank.search import search_names
        from mirrorwatch.errors import InvalidInput

        if len(name) < 8 and " " not in name:
            return []
        try:
            ids, scores = search_names(self.db, name, limit=3)
        except InvalidInput:
            return []
        return [(i, scores[i]) for i in ids]


def unhashed_reason(f: RemoteFile) -> str:
    """Why a weight file the sweep saw has no sha256 (one line, for `scan errors`)."""
    size = f"{f.size:,} bytes" if f.size is not None else "size unknown"
    if f.lfs:
        return f"not hashed: stored in LFS but the hub's answer had no usable sha256 ({size}); retried next sweep"
    if f.size is None or f.size > 10_000_000:
        return f"not hashed: the hub's answer had no sha256 and no LFS details ({size}); retried next sweep"
    return f"not hashed: kept in git, not LFS ({size}), so the hub publishes no sha256 for it (only a git blob id)"
