"""`mirrorwatch lookup QUERY`: one input, auto-detected, to banked entries and their mirrors."""

from __future__ import annotations

import typer
from rich.table import Table

from mirrorwatch.services.lookup import lookup
from mirrorwatch.services.serial import to_json

from .app import app, console, database
from .output import print_json, short, term


@app.command("lookup")
def lookup_cmd(
    query: str = typer.Argument(..., help="A hash (64/12/10/8 hex), a Civitai URL or civitai:ID, or a name."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, max=500),
    bank: str | None = typer.Option(None, "--bank", help="Only entries of this bank."),
    as_json: bool = typer.Option(False, "--json", help="Print results as JSON."),
) -> None:
    """Look up removed models by hash, Civitai URL or name."""
    result = lookup(database(), query, limit=limit, bank=bank)
    if as_json:
        print_json(to_json(result))
        raise typer.Exit(0 if result.results else 1)
    console.print(f"[dim]{result.kind}: {term(result.detail)}[/]", highlight=False)
    if not result.results:
        console.print("no entry found")
        raise typer.Exit(1)
    for v in result.results:
        title = f"[bold]#{v.id} {term(v.name or '(no name)')}[/]  [dim]bank {term(v.bank)} · {term(v.why)}[/]"
        console.print(title, highlight=False)
        if v.url:
            console.print(f"  url: {term(v.url)}", highlight=False)
        ids = [f"model {v.civitai_model_id}" if v.civitai_model_id else "", f"version {v.civitai_version_id}" if v.civitai_version_id else ""]
        if any(ids):
            console.print("  civitai: " + ", ".join(i for i in ids if i), highlight=False)
        for form, values in v.hashes.items():
            console.print(f"  {term(form)}: {term(', '.join(values))}", highlight=False)
        if v.mirrors:
            t = Table("state", "hub", "repo", "file", "uploader", "status", "tier", "first seen", box=None, padding=(0, 1))
            for m in v.mirrors:
                t.add_row(term(m.state), term(m.hub), term(m.repo_id), short(m.path, 40), term(m.author or "-"),
                          term(f"{m.repo_status}/{m.file_status}"), str(m.tier), m.first_seen.strftime("%Y-%m-%d"))
            console.print(t)
        else:
            console.print("  mirrors: none known", highlight=False)
