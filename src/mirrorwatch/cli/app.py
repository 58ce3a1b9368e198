"""The Typer application object and the options every command shares.

Command modules import `app` (or a sub-app) from here and register themselves; `main.py`
imports them all and runs the app with user errors turned into one-line messages."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import typer
from rich.console import Console

app = typer.Typer(
    name="mirrorwatch",
    help="Trace removed AI models to their re-uploads.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
bank_app = typer.Typer(help="Banks of removed models: create, list, import sheets.", no_args_is_help=True)
scan_app = typer.Typer(help="Sweep hubs (Hugging Face, local folders) for banked models.", no_args_is_help=True)
user_app = typer.Typer(help="Accounts for the web app and API tokens.", no_args_is_help=True)
app.add_typer(bank_app, name="bank")
app.add_typer(scan_app, name="scan")
app.add_typer(user_app, name="user")

# Not on a terminal (pipes, CI): wide lines instead of wrapped tables.
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, soft_wrap=True)


@dataclass
class Options:
    db: str | None = None


OPTIONS = Options()


@app.callback()
def _global(
    db: str | None = typer.Option(
        None,
        "--db",
        envvar="MIRRORWATCH_DB",
        help="Database: a SQLAlchemy URL or a SQLite file path (default: per-user data folder).",
    ),
) -> None:
    OPTIONS.db = db


def database():
    """Open (and migrate) the configured database; used by every command that needs one."""
    from mirrorwatch.store.db import Database

    return Database.open(OPTIONS.db)
