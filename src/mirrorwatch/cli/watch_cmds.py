"""`mirrorwatch watch CONFIG`: sweep and recheck hubs on a schedule until stopped (SIGTERM/SIGINT)."""

from __future__ import annotations

from pathlib import Path

import typer

from mirrorwatch.errors import InvalidInput

from .app import app, console, database
from .output import term


@app.command("watch")
def watch_cmd(
    config: Path = typer.Argument(..., help="The watch config (TOML): what to sweep and recheck, how often."),
    check: bool = typer.Option(False, "--check", help="Check the config, print the jobs it makes, and exit."),
    wait_every: str = typer.Option("5s", "--wait-every",
                                   help="While another watcher holds the database: how often to try again."),
) -> None:
    """Run sweeps and rechecks on a schedule, one watcher per database, until SIGTERM or Ctrl-C.

    A second watcher on the same database waits for the first to stop. On SIGTERM the running job
    finishes its current transaction and is recorded as interrupted (resumed next time); exit 0."""
    from mirrorwatch.watch.config import format_duration, load_config, parse_duration
    from mirrorwatch.watch.watcher import WatchRunner

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
