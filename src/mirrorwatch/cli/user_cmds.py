"""`mirrorwatch user ...`: accounts for the web app and API tokens."""

from __future__ import annotations

import sys

import typer
from rich.table import Table

from mirrorwatch.errors import InvalidInput
from mirrorwatch.services import users

from .app import console, database, err_console, user_app
from .output import print_json, term

token_app = typer.Typer(help="API tokens: create (shown once), list, revoke.", no_args_is_help=True)
user_app.add_typer(token_app, name="token")


def _read_password(password_stdin: bool, *, confirm: bool = True) -> str | None:
    if password_stdin:
        pw = sys.stdin.readline().rstrip("\r\n")
        if not pw:
            raise InvalidInput("no password on standard input")
        return pw
    if sys.stdin.isatty():
        pw = typer.prompt("Password (empty: generate one)", default="", hide_input=True, show_default=False,
                          confirmation_prompt=confirm)
        return pw or None
    return None


@user_app.command("add")
def user_add(
    name: str = typer.Argument(..., help="Account name (letters, digits, _ . @ -)."),
    role: str = typer.Option("viewer", "--role", "-r", help="viewer, reviewer or admin."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from standard input."),
    no_password: bool = typer.Option(False, "--no-password", help="API tokens only, no password sign-in."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Create an account. Without a password given, one is generated and printed once."""
    users.check_name(name)
    users.check_role(role)
    password = None if no_password else _read_password(password_stdin)
    generated = None
    if password is None and not no_password:
        generated = password = users.generate_password()
    u = users.add_user(database(), name, role, password)
    if as_json:
        print_json({"id": u.id, "name": u.name, "role": u.role, **({"password": generated} if generated else {})})
        return
    console.print(f"created user [bold]{term(u.name)}[/] ({u.role}, id {u.id})", highlight=False)
    if generated:
        console.print(f"password (shown once): {generated}", highlight=False, markup=False)


@user_app.command("list")
def user_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """List accounts."""
    rows = users.list_users(database())
    if as_json:
        print_json([{"id": u.id, "name": u.name, "role": u.role, "disabled": u.disabled,
                     "has_password": u.has_password, "created_at": u.created_at.isoformat() + "Z"} for u in rows])
        return
    if not rows:
        console.print("no users yet: add one with `mirrorwatch user add NAME --role admin`")
        return
    t = Table("id", "name", "role", "state", "created")
    for u in rows:
        t.add_row(str(u.id), term(u.name), u.role, "disabled" if u.disabled else "active", u.created_at.strftime("%Y-%m-%d"))
    console.print(t)


@user_app.command("set-role")
def user_set_role(name: str = typer.Argument(...), role: str = typer.Argument(..., help="viewer, reviewer or admin.")) -> None:
    """Change an account's role."""
    u = users.set_role(database(), name, role)
    console.print(f"{term(u.name)} is now {u.role}", highlight=False)


@user_app.command("set-password")
def user_set_password(
    name: str = typer.Argument(...),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from standard input."),
) -> None:
    """Set a new password (their web sessions end); generated and printed when none is given."""
    password = _read_password(password_stdin)
    generated = None
    if password is None:
        generated = password = users.generate_password()
    u = users.set_password(database(), name, password)
    console.print(f"password of {term(u.name)} changed", highlight=False)
    if generated:
        console.print(f"password (shown once): {generated}", highlight=False, markup=False)


@user_app.command("disable")
def user_disable(name: str = typer.Argument(...), enable: bool = typer.Option(False, "--enable", help="Re-enable.")) -> None:
    """Disable an account (its sessions and tokens stop working), or re-enable it."""
    u = users.set_disabled(database(), name, not enable)
    console.print(f"{term(u.name)} {'disabled' if u.disabled else 'enabled'}", highlight=False)


@user_app.command("logout")
def user_logout(name: str = typer.Argument(...)) -> None:
    """End every web session of an account (API tokens stay valid: revoke those with `user token revoke`)."""
    u = users.end_sessions(database(), name)
    console.print(f"every web session of {term(u.name)} has ended", highlight=False)


@token_app.command("create")
def token_create(
    user: str = typer.Argument(..., help="Account the token acts as."),
    name: str = typer.Option("", "--name", "-n", help="A label, e.g. what script uses it."),
    exchange: list[str] = typer.Option([], "--exchange", help="Scope the token to reading this bank's exchange "
                                       "feed (name or id; repeat for several banks) and nothing else."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Create an API token; it is printed once and stored only as a hash."""
    db = database()
    scope = None
    if exchange:
        from .exchange_cmds import resolve_bank

        scope = {"exchange_read": sorted({resolve_bank(db, b) for b in exchange})}
    t, secret = users.create_token(db, user, name, scope=scope)
    if as_json:
        print_json({"id": t.id, "user": t.user, "name": t.name, "prefix": t.prefix, "token": secret,
                    "scope": t.scope})
        return
    err_console.print(f"token {t.id} for {term(t.user)} — shown once, keep it safe:", highlight=False)
    sys.stdout.write(secret + "\n")


@token_app.command("list")
def token_list(user: str | None = typer.Argument(None, help="Only this account's tokens."),
               as_json: bool = typer.Option(False, "--json")) -> None:
    """List tokens (prefixes only: secrets are never stored)."""
    db = database()
    uid = users.get_user(db, user).id if user else None
    rows = users.list_tokens(db, user_id=uid)
    if as_json:
        print_json([{"id": t.id, "user": t.user, "name": t.name, "prefix": t.prefix,
                     "created_at": t.created_at.isoformat() + "Z",
                     "revoked_at": t.revoked_at.isoformat() + "Z" if t.revoked_at else None,
                     "scope": t.scope} for t in rows])
        return
    tab = Table("id", "user", "label", "prefix", "created", "last used", "state", "scope")
    for t in rows:
        scope = ("exchange feed of bank " + ", ".join(map(str, t.scope.get("exchange_read", []))) if t.scope
                 else "full")
        tab.add_row(str(t.id), term(t.user), term(t.name), t.prefix + "…", t.created_at.strftime("%Y-%m-%d"),
                    t.last_used_at.strftime("%Y-%m-%d %H:%M") if t.last_used_at else "-",
                    "revoked" if t.revoked_at else "active", scope)
    console.print(tab)


@token_app.command("revoke")
def token_revoke(token_id: int = typer.Argument(..., help="Token id (see `user token list`).")) -> None:
    """Revoke a token: it stops working at once."""
    t = users.revoke_token(database(), token_id)
    console.print(f"token {t.id} of {term(t.user)} revoked", highlight=False)
