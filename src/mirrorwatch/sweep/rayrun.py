"""Content work on a Ray cluster: the driver lists, decides and persists; each file's content work
(`enrich.run_job`: hash forms, header signals, fingerprint) is a Ray task that returns only the
evidence, never the bytes.

- A task re-opens the hub in its worker (`HubOpener`: the hub's registered name, location and
  options, no secrets — a worker reads credentials from its own environment or AWS configuration)
  and reads the file through the same bounded byte source as the in-process path: a size-capped
  copy in a private temporary folder deleted at once (or the file itself when it is local to the
  worker, e.g. on a shared filesystem), or a stream past the cap.
- Bounds: at most `max_in_flight` tasks submitted at once (default twice the cluster's CPUs); each
  task asks for one CPU and `task_memory` bytes of Ray's memory resource, so a node runs no more
  tasks than its CPUs and memory allow; a task's read is capped at the sweep's content-tier cap.
- Fault tolerance: every job is recorded pending in the database (`ledger.Ledger`) before it is
  submitted and its first result written once; a task whose worker or node dies is retried by Ray
  (`max_retries`) and then re-submitted by the driver (`resubmits`); a driver killed and started
  again re-submits only what is still pending; a cluster that lost every worker stops the sweep
  (recorded interrupted) once no node has had a CPU for a grace period (`RayRunner`).

Ray is an optional extra (`pip install 'mirrorwatch[ray]'`), imported only here."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from mirrorwatch.errors import InvalidInput
from mirrorwatch.hubs.base import Hub
from mirrorwatch.match.evidence import FileEvidence
from mirrorwatch.store.db import Database
from mirrorwatch.sweep.enrich import ContentJob, EngineLost, run_job
from mirrorwatch.sweep.ledger import Ledger


class RayUnavailable(EngineLost):
    """The Ray cluster cannot be reached, or lost every worker."""


@dataclass(frozen=True)
class HubOpener:
    """How a worker opens the driver's hub: its registered name, location and (plain) options."""

    hub: str
    location: str | None
    options: dict[str, Any] = field(default_factory=dict)

    def key(self) -> tuple:
        return (self.hub, self.location, tuple(sorted((k, repr(v)) for k, v in self.options.items())))

    def open(self) -> Hub:
        from mirrorwatch.hubs.registry import hub_spec

        return hub_spec(self.hub).open(self.location, **self.options)


_WORKER_HUBS: dict[tuple, Hub] = {}  # per worker process: hubs opened by earlier tasks


def content_task(opener: HubOpener, job: ContentJob) -> FileEvidence:
    """The Ray task: one file's content work in a worker; only the evidence comes back."""
    hub = _WORKER_HUBS.get(opener.key())
    if hub is None:
        hub = _WORKER_HUBS[opener.key()] = opener.open()
    return run_job(hub, job)


def _reachable(address: str) -> None:
    """A quick TCP check of host:port addresses, so an unreachable cluster fails at once."""
    hostport = address.split("://", 1)[-1]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=5).close()
    except OSError as exc:
        raise RayUnavailable(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None


def _cluster_messages_to_stderr() -> None:
    """Ray's driver prints the cluster's error messages (a node's raylet ending, with twenty lines of
    its log) on stdout, where `--json` output goes: print their first line on stderr instead."""
    try:
        from ray._private import worker
    except ImportError:  # pragma: no cover - another Ray layout: leave it be
        return
    original = getattr(worker, "print_to_stdstream", None)
    if original is None or getattr(original, "_mirrorwatch", False):
        return

    def to_stderr(data: dict[str, Any], ignore_prefix: bool) -> None:
        if data.get("pid") != "raylet" or data.get("is_err"):
            original(data, ignore_prefix)
            return
        for message in data.get("lines") or []:
            first = str(message).strip().splitlines()
            if first:
                print(f"ray: {first[0][:300]}", file=sys.stderr, flush=True)

    to_stderr._mirrorwatch = True  # type: ignore[attr-defined]
    worker.print_to_stdstream = to_stderr


def connect(address: str | None, db: Database, opener: HubOpener, **kwargs: Any) -> RayRunner:
    """Join the Ray cluster at `address` (None: a local Ray instance, or RAY_ADDRESS) and return a runner."""
    try:
        import ray
    except ImportError:
        raise InvalidInput("--ray needs Ray: pip install 'mirrorwatch[ray]'") from None
    if not ray.is_initialized():
        if address not in (None, "auto"):
            _reachable(address)
        _cluster_messages_to_stderr()
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                     configure_logging=False)
        except Exception as exc:  # ConnectionError, RuntimeError, TimeoutError...
            where = f"at {address}" if address else "(local)"
            raise RayUnavailable(f"cannot start or reach the Ray cluster {where}: {str(exc)[:300]}") from None
    return RayRunner(opener, ledger=Ledger(db, opener.hub), **kwargs)


def _failure(exc: Exception) -> str:
    """One line for a failed task: the exception the task raised (not Ray's traceback text), or
    Ray's own failure (worker or node died, result lost)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        exc = cause  # type: ignore[assignment]
    text = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {text[:200]}"


LOST_GRACE_ENV = "MIRRORWATCH_RAY_LOST_GRACE_S"
DEFAULT_LOST_GRACE_S = 60.0


def _lost_grace() -> float:
    raw = os.environ.get(LOST_GRACE_ENV)
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_LOST_GRACE_S
    except ValueError:
        raise InvalidInput(f"{LOST_GRACE_ENV} must be a number of seconds, not {raw!r}") from None


class RayRunner:
    """Runs a repo's content jobs as Ray tasks (bounded), recording them in the ledger.

    A task whose worker process or node dies (WorkerCrashedError, NodeDiedError), or whose result is
    lost with its node (ObjectLostError), is retried by Ray itself (`max_retries`, lineage
    reconstruction for a lost result), then submitted again by the driver (`resubmits`); its result is
    written to the ledger once, whichever attempt brings it. A task that raised (RayTaskError: the
    same input raises again) is not submitted again: its file is recorded with the error.

    A cluster left without any live CPU (it lost every worker) for `lost_grace_s`
    (MIRRORWATCH_RAY_LOST_GRACE_S, default 60 s: time for a restarted or autoscaled node to join), or
    that the driver can no longer submit to or wait on, stops the sweep: `RayUnavailable`, the run
    recorded interrupted, its pending work recorded for the next sweep (with --ray or without it)."""

    def __init__(self, opener: HubOpener, *, ledger: Ledger | None = None, max_in_flight: int | None = None,
                 task_memory: int = 512 * 1024**2, max_retries: int = 3, resubmits: int = 3,
                 stall_timeout_s: float = 600.0, lost_grace_s: float | None = None) -> None:
        import ray

        self.ray = ray
        self.opener = opener
        self.ledger = ledger
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.max_in_flight = max_in_flight or max(2, 2 * cpus)
        self.task_memory = task_memory
        self.max_retries = max_retries
        self.resubmits = resubmits
        self.stall_timeout_s = stall_timeout_s
        self.lost_grace_s = _lost_grace() if lost_grace_s is None else lost_grace_s
        self.retried = 0  # submissions the driver made again after a task failed
        self._counts = {"tasks": 0, "resubmitted": 0, "results_written": 0, "duplicate_results": 0,
                        "failed": 0}
        self._lock = threading.Lock()  # (runs of several repos at once: one per sweep thread)
        self._lost: str | None = None  # why the cluster was given up (every later run stops at once)
        self._remote = ray.remote(content_task).options(num_cpus=1, memory=task_memory, max_retries=max_retries,
                                                        retry_exceptions=False)

    def stats(self) -> dict[str, int]:
        """Tasks submitted (re-submissions included), results written to the ledger (each once),
        results that came back for work already written, tasks given up after every retry."""
        with self._lock:
            out = dict(self._counts)
        if self.ledger is not None:
            out["reused"] = self.ledger.reused
            out["pending_found"] = self.ledger.resubmitted
        return out

    def _count(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1

    def _submit(self, job: ContentJob) -> Any:
        try:
            ref = self._remote.remote(self.opener, job)
        except Exception as exc:  # the driver lost its cluster
            raise self._give_up({}, f"cannot submit content tasks any more: {type(exc).__name__}: "
                                    f"{str(exc)[:200]}") from None
        self._count("tasks")
        return ref

    def _live_cpus(self) -> float:
        try:
            return float(self.ray.cluster_resources().get("CPU", 0))
        except Exception:  # the head (its GCS) cannot be asked
            return 0.0

    def _give_up(self, inflight: dict[Any, Any], why: str) -> RayUnavailable:
        for ref in inflight:
            with contextlib.suppress(Exception):  # (already finished, or the cluster is gone)
                self.ray.cancel(ref, force=True)
        with self._lock:
            self._lost = self._lost or why
        return RayUnavailable(f"{why}; the content work not yet done is recorded in the database and done by "
                              "the next scan (with --ray on a live cluster, or without --ray)")

    def run(self, hub: Hub, jobs: list[ContentJob]) -> dict[str, FileEvidence]:
        if self._lost is not None:
            raise self._give_up({}, self._lost)
        out: dict[str, FileEvidence] = {}
        keys: dict[str, str] = {}
        if self.ledger is not None:
            out, keys = self.ledger.begin(jobs)
        todo = [j for j in jobs if j.path not in out]
        inflight: dict[Any, tuple[ContentJob, int]] = {}
        last_progress = time.monotonic()
        no_cpu_since: float | None = None
        poll = min(5.0, max(0.5, self.lost_grace_s / 4))
        while todo or inflight:
            while todo and len(inflight) < self.max_in_flight:
                job = todo.pop(0)
                inflight[self._submit(job)] = (job, 0)
            try:
                ready, _ = self.ray.wait(list(inflight), num_returns=1, timeout=poll)
            except Exception as exc:
                raise self._give_up(inflight, f"lost the Ray cluster: {type(exc).__name__}: {str(exc)[:200]}") from None
            if not ready:
                now = time.monotonic()
                if self._lost is not None:  # another repo's run found the cluster gone
                    raise self._give_up(inflight, self._lost)
                if self._live_cpus() <= 0:
                    no_cpu_since = no_cpu_since or now
                    if now - no_cpu_since >= self.lost_grace_s:
                        raise self._give_up(inflight, f"the Ray cluster lost every worker (no live node with a CPU "
                                                      f"for {self.lost_grace_s:.0f} s)")
                else:
                    no_cpu_since = None
                if now - last_progress > self.stall_timeout_s:
                    raise self._give_up(inflight, f"no content task finished for {self.stall_timeout_s:.0f} s "
                                                  "(the cluster has lost its workers?)")
                continue
            last_progress = time.monotonic()
            no_cpu_since = None
            for ref in ready:
                job, tries = inflight.pop(ref)
                try:
                    ev = self.ray.get(ref)
                except Exception as exc:  # worker or node died past Ray's retries, result lost, or the task raised
                    raised = isinstance(exc, self.ray.exceptions.RayTaskError)  # (the same again: not retried)
                    if tries < self.resubmits and not raised:
                        self.retried += 1
                        self._count("resubmitted")
                        inflight[self._submit(job)] = (job, tries + 1)
                        continue
                    self._count("failed")
                    out[job.path] = FileEvidence(errors={"content": f"content task failed: {_failure(exc)}"})
                    continue  # (left pending in the ledger: the next sweep submits it again)
                if self.ledger is not None:
                    self._count("results_written" if self.ledger.finish(keys[job.path], ev) else "duplicate_results")
                out[job.path] = ev
        return out

    def settle(self, repo_ids: list[str]) -> None:
        """The sweep persisted these repos: their recorded work is no longer needed."""
        if self.ledger is not None:
            self.ledger.settle(repo_ids)
