"""ASGI entry for uvicorn (and its worker processes): `uvicorn --factory mirrorwatch.web.asgi:app`.

The database comes from $MIRRORWATCH_DB and the session key from $MIRRORWATCH_SECRET_KEY, which
`mirrorwatch serve` sets for its workers so they all accept each other's cookies."""

from __future__ import annotations

from fastapi import FastAPI

from mirrorwatch.store.db import Database
from mirrorwatch.web.app import create_app


def app() -> FastAPI:
    return create_app(Database.open(None))
