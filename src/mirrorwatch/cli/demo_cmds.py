"""`mirrorwatch demo`: the whole flow offline — demo bank, local demo hub, sweep, web app."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from .app import app, console
from .output import print_json


@app.command("demo")
def demo(
    folder: Path = typer.Option(Path("demo-data"), "--dir", help="Folder for the demo database (made anew)."),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port", "-p", min=1, max=65535),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="Serve the web app when the sweep is done."),
    as_json: bool = typer.Option(False, "--json", help="Print what the demo did as JSON (with --no-serve)."),
) -> None:
    """Build a demo bank and a local demo hub with re-uploads, sweep it, and serve the app."""
    from mirrorwatch.demo import build_demo, demo_login

    say = (lambda _m: None) if as_json else (lambda m: console.print(m, highlight=False))
    db, running, result = build_demo(folder.resolve(), say=say)
    try:
        user, password = demo_login(db)
        result.login = (user, "(printed on the terminal)")
        if as_json:
            print_json({"folder": str(result.folder), "db": result.db_url, "hub": result.hub_url,
                        "civitai": result.civitai_url, "entries": result.entries, "sweep": result.sweep,
                        "civitai_sweep": result.civitai_sweep, "recheck": result.recheck,
                        "matches": result.matches, "timings": result.timings})
        else:
            console.print(f"\n[bold]try the CLI:[/] ./dev mw --db {folder}/mirrorwatch.db matches   "
                          f"(or `mirrorwatch --db ... lookup NAME|HASH|URL` where it is installed)", highlight=False)
        if not serve:
            return
        import uvicorn

        from mirrorwatch.hubs.civitai.links import ENV_WEB_URL as CIVITAI_WEB_URL
        from mirrorwatch.hubs.huggingface.links import ENV_WEB_URL
        from mirrorwatch.web.app import create_app

        os.environ[ENV_WEB_URL] = running.url
        os.environ[CIVITAI_WEB_URL] = result.civitai_url  # (invented model ids: never link to the real site)
        console.print(f"\n[bold green]mirrorwatch is serving on http://{host}:{port}/[/]  sign in as "
                      f"[bold]{user}[/] with password [bold]{password}[/]  (Ctrl-C to stop)", highlight=False)
        uvicorn.run(create_app(db), host=host, port=port, log_level="warning", access_log=False)
    finally:
        for stop in result.stop or [running.stop]:
            stop()
