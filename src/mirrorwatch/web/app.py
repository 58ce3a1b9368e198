"""The web app factory: pages and the JSON API over one service layer.

Routes live in web/routes/, one module per concern, pages and API side by side; they parse the
request, call a service, and render or return its result — no logic of their own. Every route but
/healthz, the sign-in form and static files requires a signed-in user (see web/auth.py)."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from mirrorwatch.store.db import Database
from mirrorwatch.web import errors
from mirrorwatch.web.auth import DEFAULT_SESSION_MAX_AGE, Auth, csrf_guard
from mirrorwatch.web.middleware import BodyLimit, SecurityHeaders

STATIC = Path(__file__).parent / "static"
ENV_SECRET = "MIRRORWATCH_SECRET_KEY"
# Route handlers that touch the database run in a thread pool. Its default of 40 threads would let
# 40 CPU-bound requests fight over the GIL at once, which costs throughput and makes latency tails
# long; a few threads keep one or two requests running per core and the rest queued in order.
THREADS = int(os.environ.get("MIRRORWATCH_WEB_THREADS", "4"))


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
    yield


def create_app(db: Database, *, secret_key: str | None = None,
               session_max_age: int = DEFAULT_SESSION_MAX_AGE) -> FastAPI:
    """Build the app for one database.

    The session-signing secret comes from `secret_key`, else $MIRRORWATCH_SECRET_KEY, else a random
    per-process key (sessions then end when the process restarts, and several worker processes
    would not accept each other's cookies: set the variable for those)."""
    key = secret_key or os.environ.get(ENV_SECRET) or secrets.token_urlsafe(32)
    app = FastAPI(
        title="mirrorwatch",
        summary="Trace removed AI models to their re-uploads: lookup, review, reports.",
        description=(
            "JSON API of mirrorwatch. Authenticate with `Authorization: Bearer mw_...` (create a token "
            "with `mirrorwatch user token create NAME` or on your account page). Lists are paginated with "
            "`limit` (at most 500) and `offset`; ids are stable integers; errors are `{\"error\": \"...\"}`."
        ),
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[Depends(csrf_guard)],
        lifespan=_lifespan,
    )
    app.state.db = db
    app.state.auth = Auth(db, key, session_max_age=session_max_age)
    errors.install(app)

    from mirrorwatch.web.routes import ROUTERS

    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.add_middleware(BodyLimit)
    app.add_middleware(SecurityHeaders)
    return app
