"""`mirrorwatch watch CONFIG`: sweep and recheck hubs on a schedule until stopped (SIGTERM/SIGINT);
`mirrorwatch watch --status`: the watcher's and its jobs' state (what the scans page shows)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from mirrorwatch.errors import InvalidInput

from .app import app, console, database
from .output import print_json, term


def _when(value) -> str:
    return value.isoformat(timespec="seconds") + "Z" if value else "-"


def _print_status(as_json: bool) -> None:
    from mirrorwatch.services.serial import to_json
    from mirrorwatch.services.watchstate import watch_status

    st = watch_status(database())
    if as_json:
        print_json({**to_json(st), "failing": st.failing})
        return
    w = st.watcher
    if w is None:
        console.print("no watcher has run on this database")
    else:
        line = f"watcher {w.state}: {w.holder}, started {_when(w.started_at)}, last sign of life {_when(w.heartbeat_at)}"
        if w.stopped_at:
            line += f", stopped {_when(w.stopped_at)}: {w.stop_reason}"
        console.print(term(line), highlight=False)
    if st.jobs:
        t = Table("job", "every", "last start", "last success", "outcome", "failures", "next run", "summary / error")
        for j in st.jobs:
            t.add_row(term(j.name), f"{j.every_s}s", _when(j.last_started_at), _when(j.last_success_at),
                      term(j.last_outcome or "-"), str(j.consecutive_failures), _when(j.next_run_at),
                      term((j.last_error if j.failing else j.last_summary) or ""))
        console.print(t)
    console.print(f"status: {st.status}" + (f" (failing: {', '.join(st.failing)})" if st.failing else ""),
                  highlight=False, markup=False)


@app.command("watch")
def watch_cmd(
    config: Path | None = typer.Argument(None, help="The watch config (TOML): what to sweep and recheck, how often."),
    check: bool = typer.Option(False, "--check", help="Check the config, print the jobs it makes, and exit."),
    status: bool = typer.Option(False, "--status", help="Show the watcher and its jobs (no config needed), and exit."),
    as_json: bool = typer.Option(False, "--json", help="With --status: print it as JSON."),
    wait_every: str = typer.Option("5s", "--wait-every",
                                   help="While another watcher holds the database: how often to try again."),
) -> None:
    """Run sweeps and rechecks on a schedule, one watcher per database, until SIGTERM or Ctrl-C.

    A second watcher on the same database waits for the first to stop. On SIGTERM the running job
    finishes its current transaction and is recorded as interrupted (resumed next time); exit 0."""
    from mirrorwatch.watch.config import format_duration, load_config, parse_duration
    from mirrorwatch.watch.watcher import WatchRunner

    if status:
        _print_status(as_json)
        return
    if config is None:
        raise InvalidInput("give the watch config file: mirrorwatch watch CONFIG (or --status)")
    cfg = load_config(config)  # (refused before anything starts)
    try:
        wait_s = parse_duration(wait_every).total_seconds()
    except ValueError as exc:
        raise InvalidInput(f"--wait-every: {exc}") from None
    if check:
        for note in cfg.notes:
            console.print(term(f"note: {note}"), highlight=False)
        for job in cfg.jobs:
            console.print(term(f"{job.name}: every {format_duration(job.every)}"), highlight=False)
        return
    runner = WatchRunner(database(), cfg, wait_every_s=wait_s)
    runner.install_signal_handlers()
    runner.run()
