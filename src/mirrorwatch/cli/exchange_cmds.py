"""`mirrorwatch bank withdraw|subscribe|subscriptions|export|keygen`: exchanging banks with partners
(format and feed: docs/exchange.md)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer
from rich.table import Table

from mirrorwatch.errors import InvalidInput, NotFound

from .app import bank_app, console, database, err_console
from .output import print_json, term

EXPORT_FORMATS = ("signals", "csv", "json", "sheet", "sha256sum", "te-csv")
DEFAULT_TOKEN_ENV = "MIRRORWATCH_EXCHANGE_TOKEN"


def resolve_bank(db, ref: str) -> int:
    """A bank by name, else by id."""
    from mirrorwatch.services.banks import list_banks

    banks = list_banks(db)
    for b in banks:
        if b.name == ref:
            return b.id
    if ref.isdigit():
        for b in banks:
            if b.id == int(ref):
                return b.id
    raise NotFound(f"no bank named {ref!r}")


@bank_app.command("withdraw")
def bank_withdraw(
    entries: list[int] = typer.Argument(..., help="Entry ids to withdraw."),
    reason: str | None = typer.Option(None, "--reason", help="Why (kept in the audit log)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Withdraw entries: they match no new file, and partners' subscriptions receive the withdrawal."""
    from mirrorwatch.services.exchange import withdraw_entry

    db = database()
    out = [withdraw_entry(db, e, user="cli", reason=reason) for e in entries]
    if as_json:
        print_json(out)
        return
    for o in out:
        console.print(f"entry #{o['entry']} {'withdrawn' if o['changed'] else 'was already withdrawn'}", highlight=False)


@bank_app.command("subscribe")
def bank_subscribe(
    url: str = typer.Argument(..., help="The partner's feed: https://HOST/api/exchange/banks/ID/signals"),
    bank: str = typer.Option(..., "--bank", "-b", help="Local bank kept in sync with the feed."),
    token_env: str = typer.Option(DEFAULT_TOKEN_ENV, "--token-env",
                                  help="Environment variable holding the partner's exchange token."),
    verify_key: Path | None = typer.Option(None, "--verify-key",
                                           help="The publisher's public key: every page must be signed by it."),
    create: bool = typer.Option(False, "--create", help="Create the local bank if it does not exist."),
    page_size: int = typer.Option(1000, "--page-size", min=1, max=5000),
    max_pages: int | None = typer.Option(None, "--max-pages", min=1, help="Stop after this many pages."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Bring a local bank up to date with a partner's feed (resumable: run it again, or on a schedule)."""
    from mirrorwatch.services.banks import create_bank, list_banks
    from mirrorwatch.services.signing import load_verify_key
    from mirrorwatch.services.subscribe import subscribe

    token = os.environ.get(token_env, "")
    if not token:
        raise InvalidInput(f"no token in ${token_env}: export the partner's exchange token there "
                           "(tokens are never taken on the command line)")
    key = load_verify_key(verify_key) if verify_key else None
    host = url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
    if url.lower().startswith("http://") and host not in ("127.0.0.1", "localhost", "[::1]"):
        err_console.print("warning: plain http: the token and the bank travel unencrypted; use https", highlight=False)
    db = database()
    if create and bank not in {b.name for b in list_banks(db)}:
        create_bank(db, bank, source=url)
    result = subscribe(db, url, bank, token, verify_key=key, limit=page_size, max_pages=max_pages)
    if as_json:
        print_json(result.to_dict())
        return
    c = result.counts
    state = "in sync" if result.complete else "stopped before the end (run again to go on)"
    console.print(f"[bold]{term(bank)}[/] {state}: {result.pages} pages, {result.records} records, "
                  f"{c.added} added, {c.updated} updated, {c.unchanged} unchanged, {c.withdrawn} withdrawn, "
                  f"{c.matches} new matches", highlight=False)


@bank_app.command("subscriptions")
def bank_subscriptions(as_json: bool = typer.Option(False, "--json")) -> None:
    """List subscriptions: which local bank follows which feed, how far, and the last error."""
    from mirrorwatch.services.subscribe import list_subscriptions

    subs = list_subscriptions(database())
    if as_json:
        print_json([s.__dict__ for s in subs])
        return
    if not subs:
        console.print("no subscriptions: `mirrorwatch bank subscribe URL --bank NAME`")
        return
    t = Table("id", "bank", "feed", "cursor", "last sync", "last error")
    for s in subs:
        t.add_row(str(s.id), term(s.bank), term(s.url), term(s.cursor or "-"),
                  s.last_sync_at.strftime("%Y-%m-%d %H:%M") if s.last_sync_at else "-", term(s.last_error or ""))
    console.print(t)


@bank_app.command("export")
def bank_export(
    bank: str = typer.Argument(..., help="Bank name or id."),
    fmt: str = typer.Option("signals", "--format", "-f",
                            help="signals (mirrorwatch-signals/1, signable), csv, json, sheet (the researchers' "
                                 "CSV), sha256sum, te-csv (signal_type,signal_value)."),
    sign_key: Path | None = typer.Option(None, "--sign-key", help="Private key (bank keygen) to sign a signals file."),
    output: Path | None = typer.Option(None, "--output", "-o", help="File to write (default: standard output)."),
) -> None:
    """Export a bank for a partner or another tool."""
    from mirrorwatch.services import exchange, exports
    from mirrorwatch.services.signing import load_signing_key

    if fmt not in EXPORT_FORMATS:
        raise InvalidInput(f"unknown format {fmt!r}: use {', '.join(EXPORT_FORMATS)}")
    if sign_key is not None and fmt != "signals":
        raise InvalidInput("only the signals format is signed")
    signer = load_signing_key(sign_key) if sign_key else None
    db = database()
    bank_id = resolve_bank(db, bank)
    if fmt == "signals":
        pieces = exchange.export_signals(db, bank_id, signer=signer, user="cli")
    elif fmt in ("csv", "json"):
        pieces = (p.encode() for p in exports.export_bank(db, bank_id, fmt, user="cli")[1])
    else:
        pieces = (p.encode() for p in exchange.export_hashlist(db, bank_id, fmt, user="cli"))
    if output is None:
        out = sys.stdout.buffer
        for p in pieces:
            out.write(p)
        out.flush()
        return
    tmp = output.with_name(output.name + ".part")
    with open(tmp, "wb") as f:  # written whole, then renamed: never a half file under the name
        for p in pieces:
            f.write(p)
    tmp.replace(output)
    err_console.print(f"wrote {output}" + (f" (signed by key {signer.key_id})" if signer else ""), highlight=False)


@bank_app.command("keygen")
def bank_keygen(
    prefix: Path = typer.Argument(..., help="Writes PREFIX.key (private, keep it) and PREFIX.pub (give to partners)."),
    force: bool = typer.Option(False, "--force", help="Replace existing files."),
) -> None:
    """Make an Ed25519 key pair to sign exported banks and feed pages."""
    from mirrorwatch.services.signing import generate_keypair

    private, public, kid = generate_keypair(prefix, overwrite=force)
    console.print(f"key {kid}: private {term(private)} (mode 600), public {term(public)}", highlight=False)
