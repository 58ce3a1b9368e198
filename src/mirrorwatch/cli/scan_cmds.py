"""`mirrorwatch scan HUB|runs|errors` and `mirrorwatch recheck`: sweeps and status checks.

One `scan` command per registered hub (`hubs/registry.py`): remote hubs take a listing scope,
folder hubs a path."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.live import Live
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from mirrorwatch.errors import InvalidInput
from mirrorwatch.hubs.base import HubSpec, Scope
from mirrorwatch.hubs.registry import HUBS, default_hub, hub_spec
from mirrorwatch.services.paging import MAX_LIMIT
from mirrorwatch.services.scans import known_hashes, scan_errors, scan_runs
from mirrorwatch.services.sweeps import (
    RemoteSweepPlan,
    parse_exts,
    parse_repo_types,
    parse_since,
    parse_size,
    plan_folder_sweep,
    plan_remote_sweep,
)
from mirrorwatch.sweep.enrich import InProcess
from mirrorwatch.sweep.runner import Sweep, SweepOptions, SweepSummary

from .app import app, console, database, err_console, scan_app
from .output import print_json, term


class ProgressView:
    """A live status line on a terminal: repos listed, candidates, hashes, matches, quota, rate."""

    def __init__(self, enabled: bool, total: int | None = None) -> None:
        self.enabled = enabled
        self.total = total
        self.started = time.monotonic()
        self.live: Live | None = None

    def __enter__(self) -> ProgressView:
        if self.enabled:
            self.live = Live(Text("starting…"), console=err_console, refresh_per_second=4, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.live:
            self.live.__exit__(*exc)

    def __call__(self, counts: dict[str, int], quota: dict[str, Any]) -> None:
        if not self.live:
            return
        el = time.monotonic() - self.started
        done = counts.get("fetched", 0) + counts.get("unchanged", 0) + counts.get("skipped", 0)
        rate = counts.get("listed", 0) / el if el > 0 else 0.0
        eta = ""
        if self.total and done:
            eta = f" · ETA {max(0.0, (self.total - done) * el / done):.0f}s"
        q = " ".join(f"{k} {v['remaining'] if v.get('remaining') is not None else '?'}/{v.get('quota') or '?'}"
                     for k, v in quota.items())
        self.live.update(Text(
            f"listed {counts.get('listed', 0)} · candidates {counts.get('candidates', 0)} · "
            f"unchanged {counts.get('unchanged', 0)} · hashed {counts.get('fetched', 0)} repos / "
            f"{counts.get('hashes', 0)} files · matches {counts.get('matches', 0)} · skipped "
            f"{counts.get('skipped', 0)} · quota {q or '-'} · {rate:.1f} repos/s · {el:.0f}s{eta}"
        ))


def _print_summary(summary: SweepSummary, as_json: bool) -> None:
    _print_counts(summary, as_json)
    if summary.exit_code is not None and summary.reason:  # its content engine or database went away
        err_console.print(f"error: the sweep stopped: {summary.reason}", highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(summary.exit_code)
    if summary.status == "failed":
        raise typer.Exit(6)


def _print_counts(summary: SweepSummary, as_json: bool) -> None:
    if as_json:
        print_json(summary.to_dict())
        return
    c = summary.counts
    console.print(
        f"sweep #{summary.run_id} {summary.status}{' (resumed)' if summary.resumed else ''} in {summary.seconds:.1f}s: "
        f"{c['listed']} repos listed, {c['candidates']} candidates, {c['unchanged']} unchanged, "
        f"{c['fetched']} hashed ({c['hashes']} files, {c.get('unhashed', 0)} weight files not hashed), "
        f"[bold]{c['matches']} new matches[/], "
        f"{c['skipped']} skipped, {c['errors']} errors recorded, {c['throttled']} throttled (429)",
        highlight=False,
    )
    if summary.reason and summary.exit_code is None:
        console.print(f"the sweep stopped: {summary.reason} (the next sweep of the same scope resumes it)",
                      highlight=False, markup=False)
    if c["errors"]:
        console.print(f"see what was skipped: mirrorwatch scan errors {summary.run_id}", highlight=False)


def _scope_options(spec: HubSpec) -> Callable[..., None]:
    """`scan NAME` for a remote hub: a listing scope, incremental after a full sweep."""

    def scan_remote(
        endpoint: str | None = typer.Option(None, "--endpoint", help="Hub URL (default: the hub's own, or its "
                                            "endpoint variable in the environment, e.g. HF_ENDPOINT)."),
        author: str | None = typer.Option(None, "--author", help="Only repos of this user or organisation."),
        search: str | None = typer.Option(None, "--search", help="Only repos whose id contains this text."),
        tag: list[str] = typer.Option([], "--filter", help="Only repos with this tag (repeatable, all must hold)."),
        repo: list[str] = typer.Option([], "--repo", help="Only this repo (repeatable; a dataset or Space as "
                                       "datasets/NS/NAME, spaces/NS/NAME, or with --repo-type)."),
        repo_type: str | None = typer.Option(None, "--repo-type",
                                             help=f"Which repo types to sweep, comma-separated ({', '.join(spec.repo_types)}"
                                             "; default: all of them, or only the first for --repo)."),
        since: str | None = typer.Option(None, "--since", help="Only repos created/changed since DATE (or 7d, 12h)."),
        sort: str = typer.Option("auto", "--sort", help="createdAt, lastModified, or auto."),
        full: bool = typer.Option(False, "--full", help="List the whole hub even after an earlier full sweep."),
        ext: str | None = typer.Option(None, "--ext", help="Weight file extensions (default .safetensors,.ckpt,.pt,.pth,.bin,.gguf)."),
        min_size: str | None = typer.Option(None, "--min-size", help="Ignore files smaller than this (e.g. 1MB)."),
        max_size: str | None = typer.Option(None, "--max-size", help="Ignore files larger than this."),
        concurrency: int = typer.Option(32, "--concurrency", min=1, max=64,
                                        help="Repos fetched at once (requests stay paced to the announced quota)."),
        no_resume: bool = typer.Option(False, "--no-resume", help="Start a new sweep even if one was interrupted."),
        headers: bool = typer.Option(True, "--headers/--no-headers",
                                     help="Header tier: read safetensors headers with bounded range requests."),
        deep: bool = typer.Option(False, "--deep", help="Content tier: stream each safetensors file to a temp "
                                  "folder, fingerprint it, delete it (uses download quota)."),
        archives: bool = typer.Option(True, "--archives/--no-archives",
                                      help="Match the members of .zip/.tar archives too (CRC-32 leads from the "
                                      "central directory by range reads, each lead confirmed by reading it alone)."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
        ray: str | None = typer.Option(None, "--ray", metavar="[ADDRESS]", help=RAY_HELP),
    ) -> None:
        db = database()
        hub, options = plan_remote_sweep(db, spec, RemoteSweepPlan(
            endpoint=endpoint, author=author, search=search, filter=list(tag), repos=list(repo),
            since=parse_since(since), sort=sort, full=full, extensions=parse_exts(ext),
            min_size=parse_size(min_size), max_size=parse_size(max_size), concurrency=concurrency,
            resume=not no_resume, headers=headers, deep=deep, archives=archives,
            repo_types=parse_repo_types(repo_type, spec)))
        if ray and not deep:
            raise InvalidInput("--ray runs the content tier: use it with --deep")
        content = _content_runner(ray, db, spec.name, endpoint, {"extensions": options.extensions}) if ray else None
        with ProgressView(sys.stderr.isatty() and not as_json, total=len(repo) or None) as view:
            summary = Sweep(db, hub, options, progress=view, content=content).run()
        _print_summary(summary, as_json)

    return scan_remote


def _folder_options(spec: HubSpec) -> Callable[..., None]:
    """`scan NAME PATH` for a folder hub: hash, read headers, fingerprint, match."""

    def scan_folder(
        path: Path = typer.Argument(..., help="Folder to sweep (recursive)."),
        ext: str | None = typer.Option(None, "--ext", help="Weight file extensions."),
        deep: bool = typer.Option(True, "--deep/--no-deep", help="Fingerprint LoRA files too (local reads)."),
        archives: bool = typer.Option(True, "--archives/--no-archives",
                                      help="Match the members of .zip/.tar archives too (CRC-32 leads, confirmed)."),
        as_json: bool = typer.Option(False, "--json"),
        ray: str | None = typer.Option(None, "--ray", metavar="[ADDRESS]", help=RAY_HELP),
    ) -> None:
        db = database()
        hub, options = plan_folder_sweep(db, spec, path, extensions=parse_exts(ext), deep=deep, archives=archives)
        content = None
        if ray:  # the folder's files are hashed by the content stage (Ray tasks), not while listing
            hub.hashes_by_reading = True
            content = _content_runner(ray, db, spec.name, options.scope["root"], {"extensions": options.extensions})
        with ProgressView(sys.stderr.isatty() and not as_json) as view:
            summary = Sweep(db, hub, options, progress=view, content=content).run()
        _print_summary(summary, as_json)

    return scan_folder


def _store_options(spec: HubSpec) -> Callable[..., None]:
    """`scan NAME URL` (or `scan URL`) for a hub located by a URL of its scheme (s3://bucket/prefix):
    hash every object, read headers, fingerprint, match; unchanged objects are not read again."""

    def scan_store(
        location: str = typer.Argument(..., metavar="URL", help=f"Where to sweep: {spec.scheme}://bucket/prefix."),
        endpoint: str | None = typer.Option(None, "--endpoint", help="The store's URL for an S3-compatible store "
                                            "other than AWS (default: AWS_ENDPOINT_URL, else AWS)."),
        ext: str | None = typer.Option(None, "--ext", help="Weight file extensions."),
        deep: bool = typer.Option(True, "--deep/--no-deep", help="Fingerprint LoRA files too (same single read)."),
        concurrency: int = typer.Option(8, "--concurrency", min=1, max=64, help="Objects read at once (without --ray)."),
        as_json: bool = typer.Option(False, "--json"),
        ray: str | None = typer.Option(None, "--ray", metavar="[ADDRESS]", help=RAY_HELP),
    ) -> None:
        db = database()
        exts = parse_exts(ext)
        hub = spec.open(location, extensions=exts, endpoint=endpoint)  # (checks the location)
        hub.check()  # the bucket is there and readable: a clear message before any run is recorded
        hub.known = known_hashes(db, spec.name, hub.location)
        content = _content_runner(ray, db, spec.name, location, {"extensions": exts, "endpoint": hub.endpoint}) \
            if ray else InProcess(concurrency)  # (Ray workers read the store's credentials from their environment)
        options = SweepOptions(scope=Scope(root=hub.location), extensions=exts, concurrency=1, resume=False, deep=deep)
        with ProgressView(sys.stderr.isatty() and not as_json) as view:
            summary = Sweep(db, hub, options, progress=view, content=content).run()
        _print_summary(summary, as_json)

    return scan_store


RAY_HELP = ("Run each file's content work (hashes, header, fingerprint) as a Ray task: on the cluster at ADDRESS "
            "(ray://host:10001, host:6379 or auto), or on a local Ray instance when no address is given.")


def _content_runner(address: str, db: Any, hub: str, location: str | None, options: dict[str, Any]) -> Any:
    """The Ray content runner (`sweep.rayrun`), connected; a clear message when Ray is missing or the
    address cannot be reached."""
    from mirrorwatch.sweep.rayrun import HubOpener, connect

    return connect(None if address == "local" else address, db, HubOpener(hub, location, options))


_ADDRESS = re.compile(r"^(auto|local|ray://\S+|[\w.\-]+:\d+|\[[0-9a-fA-F:]+\]:\d+)$")


class _ScanGroup(TyperGroup):
    """`scan s3://bucket/prefix` is `scan s3 s3://bucket/prefix` (a hub located by URLs of its scheme),
    and `--ray` may come without an address (a local Ray instance)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        args = list(args)
        if args and "://" in args[0]:
            scheme = args[0].split("://", 1)[0]
            name = next((h.name for h in HUBS.values() if h.scheme and h.scheme == scheme), None)
            if name is not None:
                args.insert(0, name)
        for i, arg in enumerate(args):
            if arg == "--ray" and not (i + 1 < len(args) and _ADDRESS.match(args[i + 1])):
                args[i] = "--ray=local"
        return super().parse_args(ctx, args)


scan_app.info.cls = _ScanGroup


for _spec in HUBS.values():
    _command = (_scope_options(_spec) if _spec.kind == "remote" else _store_options(_spec) if _spec.scheme
                else _folder_options(_spec))
    scan_app.command(_spec.name, help=_spec.help)(_command)


@scan_app.command("runs")
def scan_runs_cmd(limit: int = typer.Option(20, "--limit", min=1, max=MAX_LIMIT),
                  as_json: bool = typer.Option(False, "--json")) -> None:
    """Past and running sweeps with their counts."""
    runs = scan_runs(database(), limit=limit, running_first=False).items
    data = [{"id": r.id, "source": r.source, "status": r.status, "started_at": r.started_at.isoformat() + "Z",
             "finished_at": r.finished_at.isoformat() + "Z" if r.finished_at else None, "params": r.params,
             "counts": r.counts} for r in runs]
    if as_json:
        print_json(data)
        return
    t = Table("id", "source", "status", "started", "listed", "hashed", "matches", "skipped")
    for r in data:
        c = r["counts"] or {}
        t.add_row(str(r["id"]), term(r["source"]), term(r["status"]), r["started_at"][:19], str(c.get("listed", 0)),
                  str(c.get("fetched", 0)), str(c.get("matches", 0)), str(c.get("skipped", 0)))
    console.print(t)


@scan_app.command("errors")
def scan_errors_cmd(run_id: int = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """What a sweep skipped, and why."""
    errs = [{"repo_id": e.repo_id, "path": e.path, "reason": e.reason, "at": e.at.isoformat() + "Z"}
            for e in scan_errors(database(), run_id)]
    if as_json:
        print_json(errs)
        return
    for e in errs:
        console.print(term(f"{e['repo_id'] or '-'} {e['path'] or ''}: {e['reason']}"), highlight=False)
    if not errs:
        console.print("no errors recorded")


@app.command("recheck")
def recheck_cmd(
    hub_name: str = typer.Option(default_hub().name, "--hub", help=f"Which hub ({', '.join(HUBS)})."),
    endpoint: str | None = typer.Option(None, "--endpoint", help="Hub URL (default: the hub's own)."),
    all_repos: bool = typer.Option(False, "--all", help="Every stored repo, not only those with matches."),
    repo: list[str] = typer.Option([], "--repo", help="Only this repo (repeatable; datasets/NS/NAME or "
                                   "spaces/NS/NAME for one type; a bare id names it whatever its type)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Re-visit known mirrors and record their status (live, removed, gated, disabled, file gone/changed)."""
    from mirrorwatch.sweep.recheck import recheck

    spec = hub_spec(hub_name)
    if spec.kind != "remote":
        raise InvalidInput(f"{spec.label}s are rechecked by sweeping them again (mirrorwatch scan {spec.name} PATH)")
    summary = recheck(database(), spec.open(endpoint), all_repos=all_repos, repo_ids=list(repo) or None)
    if as_json:
        print_json(summary.to_dict())
        return
    console.print(f"rechecked {summary.repos} repos: {summary.changed} changes, {summary.errors} errors; "
                  + ", ".join(f"{k} {v}" for k, v in sorted(summary.statuses.items())), highlight=False)
    for e in summary.events:
        rid = e["repo_id"] if e.get("repo_type") in (None, spec.repo_types[0]) else f"{e['repo_type']}s/{e['repo_id']}"
        console.print("  " + term(f"{rid} {e.get('path', '')}: {e.get('was', '?')} -> {e['status']}"),
                      highlight=False)
