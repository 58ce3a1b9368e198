"""`mirrorwatch report ...`: takedown reports from the command line, through the service the web uses.

The CLI acts as a named mirrorwatch account, with the web's permissions: reading reports needs the
viewer role, building, marking sent and closing need reviewer. The account is `--as USER`, else
`MIRRORWATCH_USER`, else the operating-system user when an account of that name exists. Every change
is audited by services/reports.py under that account's name, exactly as the web's are.

Renderings are text only (text and Markdown from the editable templates, CSV, JSON): written to
standard output, or atomically to `-o FILE` (a temporary file beside it, renamed into place)."""

from __future__ import annotations

import getpass
import os
import sys
import tempfile
from pathlib import Path

import typer
from rich.table import Table

from mirrorwatch.errors import InvalidInput, NotFound, PermissionDenied
from mirrorwatch.match.states import MatchState
from mirrorwatch.services import reports, users
from mirrorwatch.services.reports import ReportSummary, ReportView
from mirrorwatch.services.serial import to_json
from mirrorwatch.services.users import UserView

from .app import app, console, database, err_console
from .output import print_json, short, term

report_app = typer.Typer(help="Takedown reports: build from confirmed mirrors, list, show, render, "
                              "mark sent, close.", no_args_is_help=True)
app.add_typer(report_app, name="report")

USER_ENV = "MIRRORWATCH_USER"
RENDER_FORMATS = ("text", "markdown", "csv", "json")
REPORT_STATES = ("draft", "sent", "closed")

AsUser = typer.Option(None, "--as", help=f"The mirrorwatch account to act as (default: ${USER_ENV}, "
                                         "else an account named like the OS user).")


def acting_user(db, name: str | None, role: str) -> UserView:
    """The account the CLI acts as, refused unless it exists, is enabled and has at least `role`."""
    given = name or os.environ.get(USER_ENV) or None
    if given is None:
        try:
            given = getpass.getuser()
        except (KeyError, OSError):
            given = None
        if not given:
            raise InvalidInput(f"say which mirrorwatch account acts: --as USER or {USER_ENV}")
        how = f"(the OS user; choose another with --as USER or {USER_ENV})"
    else:
        how = ""
    try:
        user = users.get_user(db, given)
    except NotFound:
        raise PermissionDenied(f"no mirrorwatch account {given!r} {how}".rstrip()) from None
    if user.disabled:
        raise PermissionDenied(f"account {user.name!r} is disabled")
    if not user.can(role):
        raise PermissionDenied(f"account {user.name!r} is {user.role}: this needs the {role} role")
    return user


def _outcome(outcome: dict[str, int]) -> str:
    return ", ".join(f"{n} {term(state)}" for state, n in outcome.items()) or "-"


def _print_report(rep: ReportView) -> None:
    sent = f", sent {rep.sent_at:%Y-%m-%d %H:%M}" if rep.sent_at else ""
    console.print(f"[bold]Report #{rep.id}[/] — {term(rep.title)}", highlight=False)
    console.print(f"{term(rep.hub_name)}, {rep.state}, built by {term(rep.created_by)} "
                  f"{rep.created_at:%Y-%m-%d %H:%M}{sent}; outcome: {_outcome(rep.outcome)}", highlight=False)
    if rep.note:
        console.print(f"note: {term(rep.note)}", highlight=False)
    t = Table("match", "state", "repo", "file", "uploader", "entry", "tier", "last status", box=None, padding=(0, 1))
    for it in rep.items:
        m = it.match
        t.add_row(str(m.id), term(m.state), term(m.repo_id), short(m.path, 40), term(m.author or "-"),
                  short(m.entry_name, 30), str(m.tier), term(it.last_status or "-"))
    console.print(t)


@report_app.command("build")
def report_build(
    match: list[int] = typer.Option(None, "--match", "-m", help="A confirmed match id (repeat for more)."),
    state: str | None = typer.Option(None, "--state", help="Take every confirmed mirror not yet in a report "
                                                           "(only 'confirmed'), narrowed by the options below."),
    bank: str | None = typer.Option(None, "--bank", help="With --state: only this bank's mirrors."),
    uploader: str | None = typer.Option(None, "--uploader", help="With --state: only this uploader's."),
    hub: str | None = typer.Option(None, "--hub", help="With --state: only this hub's (e.g. hf)."),
    title: str | None = typer.Option(None, "--title", help="Report title (default: a count and the hub)."),
    as_user: str | None = AsUser,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Build draft reports (one per hub) from confirmed mirrors: by id, or every one matching filters."""
    if bool(match) == bool(state):
        raise InvalidInput("give either --match ID (repeatable) or --state confirmed")
    if not state and (bank or uploader or hub):
        raise InvalidInput("--bank, --uploader and --hub go with --state confirmed")
    db = database()
    user = acting_user(db, as_user, "reviewer")
    if state:
        if state != MatchState.CONFIRMED.value:
            raise InvalidInput(f"--state must be confirmed: only confirmed mirrors go into a report (not {state!r})")
        page = reports.candidates(db, hub=hub, bank=bank, uploader=uploader, limit=reports.MAX_ITEMS)
        if page.total == 0:
            raise NotFound("no confirmed mirror outside a report matches these filters")
        if page.total > reports.MAX_ITEMS:
            raise InvalidInput(f"{page.total} confirmed mirrors match: at most {reports.MAX_ITEMS} per report; "
                               "narrow with --hub, --bank or --uploader")
        ids = [m.id for m in page.items]
    else:
        ids = list(match)
    made = reports.build_reports(db, ids, user.name, title=title)
    if as_json:
        print_json(to_json(made, list[ReportView]))
        return
    for rep in made:
        console.print(f"built report #{rep.id}: {len(rep.items)} mirror{'s' if len(rep.items) != 1 else ''} on "
                      f"{term(rep.hub_name)} — {term(rep.title)}", highlight=False)


@report_app.command("list")
def report_list(
    state: str | None = typer.Option(None, "--state", help=", ".join(REPORT_STATES)),
    limit: int = typer.Option(50, "--limit", min=1, max=500),
    offset: int = typer.Option(0, "--offset", min=0),
    as_user: str | None = AsUser,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Reports, newest first, with their outcome (the states of their mirrors)."""
    if state and state not in REPORT_STATES:
        raise InvalidInput(f"--state must be one of {', '.join(REPORT_STATES)}")
    db = database()
    acting_user(db, as_user, "viewer")
    page = reports.list_reports(db, state=state, limit=limit, offset=offset)
    if as_json:
        print_json(to_json(page.items, list[ReportSummary]))
        return
    if not page.items:
        console.print("no reports" + (f" {state}" if state else "") +
                      ": build one with `mirrorwatch report build --state confirmed`")
        return
    t = Table("id", "hub", "state", "mirrors", "outcome", "title", "built by", "built", "sent")
    for r in page.items:
        t.add_row(str(r.id), term(reports.hub_name(r.hub)), r.state, str(r.items), _outcome(r.outcome),
                  short(r.title, 50), term(r.created_by), f"{r.created_at:%Y-%m-%d}",
                  f"{r.sent_at:%Y-%m-%d}" if r.sent_at else "-")
    console.print(t)
    if page.total > offset + len(page.items):
        console.print(f"{page.total} reports in all: see more with --offset {offset + len(page.items)}")


@report_app.command("show")
def report_show(
    report_id: int = typer.Argument(..., help="Report id (see `report list`)."),
    as_user: str | None = AsUser,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """A report with its mirrors, their states and the last status a recheck saw."""
    db = database()
    acting_user(db, as_user, "viewer")
    rep = reports.get_report(db, report_id)
    if as_json:
        print_json(to_json(rep))
        return
    _print_report(rep)


@report_app.command("render")
def report_render(
    report_id: int = typer.Argument(..., help="Report id."),
    fmt: str = typer.Option("text", "--format", "-f", help=" | ".join(RENDER_FORMATS)),
    out: Path | None = typer.Option(None, "--output", "-o", help="Write here (atomically) instead of stdout."),
    as_user: str | None = AsUser,
) -> None:
    """The report as text for the hub's report form, Markdown, CSV or JSON (text only: no model files
    or images). Text and Markdown come from templates a team can edit (MIRRORWATCH_REPORT_TEMPLATES)."""
    if fmt not in RENDER_FORMATS:
        raise InvalidInput(f"--format must be one of {', '.join(RENDER_FORMATS)}")
    db = database()
    acting_user(db, as_user, "viewer")
    body, _media, _name = reports.export_report(db, report_id, fmt)
    if not body.endswith("\n"):
        body += "\n"
    if out is None:
        sys.stdout.write(body)
        return
    write_atomically(out, body)
    err_console.print(f"report #{report_id} written to {term(out)} ({fmt})", highlight=False)


def write_atomically(path: Path, text: str) -> None:
    """`text` at `path`, all or nothing: written to a temporary file in the same folder, flushed, then
    renamed over `path` (a crash leaves the old file or none, never half a report)."""
    if path.is_dir():
        raise InvalidInput(f"{path} is a folder: give a file name")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InvalidInput(f"no folder {folder}")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@report_app.command("mark-sent")
def report_mark_sent(
    report_id: int = typer.Argument(..., help="Report id."),
    note: str | None = typer.Option(None, "--note", help="E.g. the hub's ticket number."),
    as_user: str | None = AsUser,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Record that a draft report was sent to its hub: its mirrors become `reported`."""
    _move(reports.mark_sent, report_id, note, as_user, as_json,
          lambda rep: f"report #{rep.id} marked sent: {len(rep.items)} mirrors now reported")


@report_app.command("close")
def report_close(
    report_id: int = typer.Argument(..., help="Report id."),
    note: str | None = typer.Option(None, "--note", help="E.g. what the hub answered."),
    as_user: str | None = AsUser,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Close a sent report (the hub answered, or there is nothing more to wait for)."""
    _move(reports.close_report, report_id, note, as_user, as_json,
          lambda rep: f"report #{rep.id} closed; outcome: {_outcome(rep.outcome)}")


def _move(change, report_id: int, note: str | None, as_user: str | None, as_json: bool, said) -> None:
    """A reviewer's change of a report's state (audited by the service), then its JSON or one line."""
    db = database()
    user = acting_user(db, as_user, "reviewer")
    rep = change(db, report_id, user.name, note=note)
    if as_json:
        print_json(to_json(rep))
        return
    console.print(said(rep), highlight=False)

