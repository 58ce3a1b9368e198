"""`mirrorwatch matches`: what sweeps found, grouped by uploader."""

from __future__ import annotations

import csv
import sys

import typer
from rich.table import Table

from mirrorwatch.errors import InvalidInput
from mirrorwatch.match.states import STATES
from mirrorwatch.services.exports import csv_safe
from mirrorwatch.services.matches import MatchView, group_by_uploader, list_matches, where_found
from mirrorwatch.services.serial import to_json

from .app import app, console, database
from .output import print_json, short, term


@app.command("matches")
def matches_cmd(
    bank: str | None = typer.Option(None, "--bank"),
    state: str | None = typer.Option(None, "--state", help=", ".join(STATES)),
    repo: str | None = typer.Option(None, "--repo"),
    repo_type: str | None = typer.Option(None, "--repo-type", help="Only repos of this type (model, dataset, space)."),
    author: str | None = typer.Option(None, "--author", help="Uploader (hub account)."),
    tier: int | None = typer.Option(None, "--tier", min=1, max=3),
    limit: int = typer.Option(1000, "--limit", min=1),
    as_json: bool = typer.Option(False, "--json"),
    as_csv: bool = typer.Option(False, "--csv"),
) -> None:
    """List matches (filters by bank, state, repo, uploader), grouped by uploader."""
    if state and state not in STATES:
        raise InvalidInput(f"--state must be one of {', '.join(STATES)}")
    rows = list_matches(database(), bank=bank, state=state, repo=repo, author=author, tier=tier, limit=limit,
                        repo_type=repo_type)
    groups = group_by_uploader(rows)
    if as_json:
        counts = {u: len(rs) for u, rs in groups}
        print_json([{**_json(r), "uploader_matches": counts[r.author or "(unknown)"]} for r in rows])
        return
    if as_csv:
        w = csv.writer(sys.stdout)
        cols = ["id", "entry_id", "entry_name", "bank", "hub", "repo_type", "repo_id", "path", "uploader", "size",
                "sha256", "tier", "score", "state", "repo_status", "file_status", "first_seen", "last_seen", "url",
                "member", "archive"]
        w.writerow(cols)
        for r in rows:
            d = _json(r)
            w.writerow([csv_safe(d[c]) for c in cols])  # hub-controlled names: no spreadsheet formulas
        return
    if not rows:
        console.print("no matches")
        return
    for uploader, rs in groups:
        repos = {(r.repo_type, r.repo_id) for r in rs}
        flag = "  [bold red]batch re-uploader?[/]" if len(rs) >= 3 else ""
        console.print(f"[bold]{term(uploader)}[/]: {len(rs)} matches in {len(repos)} repos{flag}", highlight=False)
        t = Table("id", "state", "entry", "repo", "file", "tier", "score", "status", "first seen", box=None, padding=(0, 1))
        for r in rs:
            t.add_row(str(r.id), term(r.state), short(r.entry_name, 30), term(_repo(r)), short(where_found(r), 36), str(r.tier),
                      f"{r.score:.2f}", term(f"{r.repo_status}/{r.file_status}"), r.first_seen.strftime("%Y-%m-%d"))
        console.print(t)


def _repo(r: MatchView) -> str:
    """A repo as its hub's URL names it: `datasets/ns/name`, `spaces/ns/name`, a model as its id."""
    return r.repo_id if r.repo_type in ("model", "folder") else f"{r.repo_type}s/{r.repo_id}"


def _json(r: MatchView) -> dict:
    """The match as the API writes it, plus the names this command has always used for two of its
    fields (uploader = author, matched_at = created_at), so scripts reading its output keep working."""
    d = to_json(r)
    return {**d, "uploader": d["author"], "matched_at": d["created_at"]}
