"""`mirrorwatch bank ...`: create, list and import banks of removed models."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from mirrorwatch.bank.importer import ImportRejected, ImportSummary
from mirrorwatch.bank.sheets import parse_map
from mirrorwatch.display import safe_text
from mirrorwatch.errors import InvalidInput
from mirrorwatch.services.banks import create_bank, list_banks
from mirrorwatch.services.imports import import_file
from mirrorwatch.services.serial import to_json

from .app import bank_app, console, database, err_console
from .output import print_json, term


@bank_app.command("create")
def bank_create(
    name: str = typer.Argument(..., help="Name of the new bank."),
    description: str | None = typer.Option(None, "--description", "-d"),
    source: str | None = typer.Option(None, "--source", help="Where the list comes from (sheet, team, URL)."),
    as_json: bool = typer.Option(False, "--json", help="Print the bank as JSON."),
) -> None:
    """Create an empty bank."""
    bank = create_bank(database(), name, description=description, source=source)
    if as_json:
        print_json(to_json(bank))
    else:
        console.print(f"created bank [bold]{term(bank.name)}[/] (id {bank.id})", highlight=False)


@bank_app.command("list")
def bank_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """List banks with their entry counts and how many entries have been found online."""
    banks = list_banks(database())
    if as_json:
        print_json([to_json(b) for b in banks])
        return
    if not banks:
        console.print("no banks yet: create one with `mirrorwatch bank create NAME`")
        return
    table = Table("id", "name", "entries", "found online", "created", "description")
    for b in banks:
        table.add_row(str(b.id), term(b.name), str(b.entries), str(b.found), b.created_at.strftime("%Y-%m-%d"),
                      term(b.description or ""))
    console.print(table)


def _print_summary(summary: ImportSummary, *, limit: int = 20) -> None:
    verb = "imported" if summary.committed else "nothing imported"
    console.print(
        f"{verb} into [bold]{term(summary.bank)}[/] from {term(summary.filename)} ({term(summary.fmt)}): "
        f"{summary.rows} rows, [green]{summary.added} added[/], {summary.updated} updated, "
        f"{summary.duplicates} duplicates, [red]{summary.rejected_count} rejected[/]",
        highlight=False,
    )
    if summary.columns:
        console.print("columns: " + term(", ".join(f"{f}={c!r}" for f, c in summary.columns.items())), highlight=False)
    for row, why in summary.rejected[:limit]:
        err_console.print(f"  row {row}: {safe_text(str(why))}", highlight=False, markup=False)
    if summary.rejected_count > limit:
        err_console.print(f"  ... and {summary.rejected_count - limit} more rejected rows (see --json)")


@bank_app.command("import")
def bank_import(
    file: Path = typer.Argument(..., help="CSV/TSV/XLSX/JSON sheet, or Civitai model / model-version JSON."),
    bank: str = typer.Option(..., "--bank", "-b", help="Bank to import into."),
    mapping: str | None = typer.Option(None, "--map", help="Column overrides: name=Col,url=Col,sha256=Col,..."),
    encoding: str | None = typer.Option(None, "--encoding", help="Text encoding of CSV/TSV (default UTF-8)."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Import the good rows even if some are rejected."),
    create: bool = typer.Option(False, "--create", help="Create the bank if it does not exist."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check and count, write nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    verify_key: Path | None = typer.Option(None, "--verify-key",
                                           help="Signals files: the publisher's public key the file must be signed by."),
    allow_unsigned: bool = typer.Option(False, "--allow-unsigned", help="Signals files: import without a signature."),
) -> None:
    """Import a sheet (or a mirrorwatch-signals/1 file): one transaction, idempotent, with a report of rejected rows."""
    db = database()
    if create and bank not in {b.name for b in list_banks(db)}:
        create_bank(db, bank)
    from mirrorwatch.services.exchange import is_signals_file

    if is_signals_file(file):
        if dry_run or skip_bad or mapping:
            raise InvalidInput("--dry-run, --skip-bad and --map are for sheets: a signals file is checked whole "
                               "and imported whole")
        _import_signals(db, file, bank, verify_key, allow_unsigned, as_json)
        return
    try:
        summary = import_file(db, bank, file, mapping=parse_map(mapping), encoding=encoding, skip_bad=skip_bad,
                              dry_run=dry_run)
    except ImportRejected as exc:
        if as_json:
            print_json(exc.summary.to_dict())
        else:
            _print_summary(exc.summary)
        raise
    if as_json:
        print_json(summary.to_dict())
    else:
        _print_summary(summary)


def _import_signals(db, file: Path, bank: str, verify_key: Path | None, allow_unsigned: bool, as_json: bool) -> None:
    from mirrorwatch.match.exact import match_stored_files_for_values
    from mirrorwatch.services.exchange import import_signals
    from mirrorwatch.services.signing import load_verify_key

    key = load_verify_key(verify_key) if verify_key else None
    out = import_signals(db, bank, file, verify_key=key, allow_unsigned=allow_unsigned,
                         on_new_values=match_stored_files_for_values)
    if as_json:
        print_json(out)
        return
    signed = f"signed by key {out['verified_by']}" if out["verified_by"] else "UNSIGNED (not verified)"
    console.print(f"imported {out['records']} records into [bold]{term(bank)}[/] ({signed}): {out['added']} added, "
                  f"{out['updated']} updated, {out['unchanged']} unchanged, {out['withdrawn']} withdrawn, "
                  f"{out['matches']} new matches", highlight=False)


@bank_app.command("add-file")
def bank_add_file(
    path: Path = typer.Argument(..., help="An original model file your team holds (read once, not kept)."),
    entry: int = typer.Option(..., "--entry", "-e", help="The bank entry it belongs to."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Teach an entry every signature of an original file: all hash forms, header ids, fingerprint."""
    from mirrorwatch.services.expansion import add_file

    out = add_file(database(), entry, path)
    if as_json:
        print_json(out)
        return
    console.print(f"entry #{entry} learned {out['signals']} signatures and {out['fingerprints']} fingerprint(s) "
                  f"from {term(out['file'])}; {out['matches']} new matches among files already swept", highlight=False)
    for n in out["notes"]:
        err_console.print(f"  note: {safe_text(str(n))}", highlight=False, markup=False)
