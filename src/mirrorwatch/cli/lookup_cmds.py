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


@app.command("where")
def where_cmd(
    value: str = typer.Argument(..., help="A hash of any form: SHA256, AutoV2, AutoV3, AutoV1/CRC32 or BLAKE3."),
    form: str | None = typer.Option(None, "--form", help="Only this hash form (sha256, crc32, ...)."),
    limit: int = typer.Option(100, "--limit", "-n", min=1, max=500),
    as_json: bool = typer.Option(False, "--json", help="Print the answer as JSON."),
) -> None:
    """Which swept hub files have this hash, banked or not (exit 1 when none)."""
    from mirrorwatch.services.serial import to_json
    from mirrorwatch.services.where import where

    result = where(database(), value, form=form, limit=limit)
    if as_json:
        print_json(to_json(result))
        raise typer.Exit(0 if result.files else 1)
    console.print(f"[dim]{len(result.value)} hex: {' or '.join(result.forms)}[/]", highlight=False)
    if result.banked:
        names = ", ".join(f"#{e.id} {e.name or '(no name)'} ({e.bank}; {e.why})" for e in result.banked)
        console.print(f"banked: {term(names)}", highlight=False)
    else:
        console.print("banked: no entry has this hash", highlight=False)
    if not result.files:
        console.print("no swept file has this hash")
        raise typer.Exit(1)
    t = Table("hub", "type", "repo", "path", "member", "size", "status", "first seen", "last seen", "matches",
              box=None, padding=(0, 1))
    for f in result.files:
        matched = ", ".join(f"#{m.entry_id} {m.state}" for m in f.matches) or "-"
        t.add_row(term(f.hub), term(f.repo_type), term(f.repo_id), short(f.path, 50), short(f.member, 40),
                  str(f.size) if f.size is not None else "-", term(f"{f.repo_status}/{f.status}"),
                  f.first_seen.strftime("%Y-%m-%d"), f.last_seen.strftime("%Y-%m-%d"), term(matched))
    console.print(t)
    if result.truncated:
        console.print(f"[dim]first {len(result.files)} files shown (--limit)[/]", highlight=False)
