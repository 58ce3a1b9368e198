"""`mirrorwatch serve`: the web app and JSON API with uvicorn.

Several workers (`--workers N`, uvicorn's worker processes) are meant for PostgreSQL, where each worker
has its own connection pool and the server runs their reads and writes side by side. On a SQLite file
they are allowed with a warning: reads run in parallel, but writes (imports, decisions, sign-ins) take
turns on the one file, and its WAL needs a local disk. An in-memory SQLite database is refused: each
worker would have its own empty one."""

from __future__ import annotations

import os
import secrets

import typer

from mirrorwatch.errors import InvalidInput

from .app import OPTIONS, app, console, database

# connections one worker may hold: its pool (SQLAlchemy's 5 + 10 overflow) and its name-search helper's
CONNECTIONS_PER_WORKER = 16


def check_workers(db, workers: int) -> list[str]:
    """Refuse worker counts the database cannot serve; return warnings to print for the others."""
    if workers <= 1:
        return []
    if db.is_sqlite:
        if ":memory:" in db.url or db.url.rstrip("/") in ("sqlite:", "sqlite+pysqlite:"):
            raise InvalidInput("--workers needs a database the worker processes can share: an in-memory SQLite "
                               "database exists once per process (use a SQLite file or PostgreSQL)")
        return [f"{workers} workers on SQLite: reads run in parallel, but writes (imports, decisions, sign-ins) "
                "take turns on the one file, and the file must be on a local disk (SQLite's WAL does not work "
                "over a network file system). Use PostgreSQL for several workers under write load."]
    warnings = []
    from sqlalchemy import text

    with db.engine.connect() as conn:
        limit = int(conn.execute(text("SHOW max_connections")).scalar())
        used = int(conn.execute(text("SELECT count(*) FROM pg_stat_activity")).scalar())
    need = workers * CONNECTIONS_PER_WORKER
    if need > limit - used:
        warnings.append(f"{workers} workers may open up to {need} PostgreSQL connections, and the server allows "
                        f"{limit} ({used} in use): raise max_connections or use fewer workers")
    return warnings


@app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (keep 127.0.0.1 behind a proxy)."),
    port: int = typer.Option(8000, "--port", "-p", min=1, max=65535),
    workers: int = typer.Option(1, "--workers", "-w", min=1, max=64,
                                help="Worker processes (they share a session key for the run). Meant for "
                                     "PostgreSQL; on a SQLite file writes take turns."),
    proxy_headers: bool = typer.Option(False, "--proxy-headers",
                                       help="Trust X-Forwarded-Proto/For from a local reverse proxy (https)."),
    log_level: str = typer.Option("warning", "--log-level"),
) -> None:
    """Serve the web app. Sign in with an account made by `mirrorwatch user add`."""
    import uvicorn

    from mirrorwatch.config import resolve_db_url
    from mirrorwatch.services.users import list_users

    db = database()  # migrate once, before the workers start
    for warning in check_workers(db, workers):
        console.print(f"[yellow]note:[/] {warning}", highlight=False)
    if not any(u.role == "admin" and not u.disabled for u in list_users(db)):
        console.print("[yellow]no admin account yet:[/] create one with `mirrorwatch user add NAME --role admin`")
    os.environ["MIRRORWATCH_DB"] = resolve_db_url(OPTIONS.db)
    os.environ.setdefault("MIRRORWATCH_SECRET_KEY", secrets.token_urlsafe(32))
    from sqlalchemy.engine import make_url

    shown = make_url(db.url).render_as_string(hide_password=True)  # never print the password
    console.print(f"mirrorwatch on http://{host}:{port}/  (database {shown}, {workers} "
                  f"worker{'s' if workers != 1 else ''})", highlight=False)
    db.engine.dispose()  # the workers open their own connections
    uvicorn.run("mirrorwatch.web.asgi:app", factory=True, host=host, port=port, workers=workers,
                proxy_headers=proxy_headers, forwarded_allow_ips="127.0.0.1" if proxy_headers else None,
                log_level=log_level, access_log=False)
