"""`mirrorwatch serve`: the web app and JSON API with uvicorn."""

from __future__ import annotations

import os
import secrets

import typer

from .app import OPTIONS, app, console, database


@app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (keep 127.0.0.1 behind a proxy)."),
    port: int = typer.Option(8000, "--port", "-p", min=1, max=65535),
    workers: int = typer.Option(1, "--workers", "-w", min=1, max=64,
                                help="Worker processes (they share a session key for the run)."),
    proxy_headers: bool = typer.Option(False, "--proxy-headers",
                                       help="Trust X-Forwarded-Proto/For from a local reverse proxy (https)."),
    log_level: str = typer.Option("warning", "--log-level"),
) -> None:
    """Serve the web app. Sign in with an account made by `mirrorwatch user add`."""
    import uvicorn

    from mirrorwatch.config import resolve_db_url
    from mirrorwatch.services.users import list_users

    db = database()  # migrate once, before the workers start
    if not any(u.role == "admin" and not u.disabled for u in list_users(db)):
        console.print("[yellow]no admin account yet:[/] create one with `mirrorwatch user add NAME --role admin`")
    os.environ["MIRRORWATCH_DB"] = resolve_db_url(OPTIONS.db)
    os.environ.setdefault("MIRRORWATCH_SECRET_KEY", secrets.token_urlsafe(32))
    console.print(f"mirrorwatch on http://{host}:{port}/  (database {db.url})", highlight=False)
    uvicorn.run("mirrorwatch.web.asgi:app", factory=True, host=host, port=port, workers=workers,
                proxy_headers=proxy_headers, forwarded_allow_ips="127.0.0.1" if proxy_headers else None,
                log_level=log_level, access_log=False)
