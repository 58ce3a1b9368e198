"""Small helpers the route modules share: the database, query windows, downloads, safe redirects."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.responses import Response, StreamingResponse

from mirrorwatch.store.db import Database
from mirrorwatch.web.schemas import MAX_ID, ErrorOut

IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
OptId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
Cursor = Annotated[int | None, Query(ge=0, le=MAX_ID, description="an entry id: the page after (before) it")]
PAGE_SIZE = 50


async def get_db(request: Request) -> Database:
    """Async on purpose: FastAPI runs sync dependencies in the thread pool, a hop per dependency."""
    return request.app.state.db


DB = Annotated[Database, Depends(get_db)]


def error_responses(*codes: int) -> dict[int | str, dict]:
    """The OpenAPI `responses` of a router: each error status answered with an ErrorOut body."""
    return {code: {"model": ErrorOut} for code in codes}


def _ascii_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name)[:120] or "download"


def download(content: str | bytes, media_type: str, filename: str) -> Response:
    return Response(content, media_type=media_type,
                    headers={"content-disposition": f'attachment; filename="{_ascii_name(filename)}"'})


def stream_download(chunks: Iterable[str], media_type: str, filename: str) -> StreamingResponse:
    def encoded() -> Iterator[bytes]:
        for c in chunks:
            yield c.encode()

    return StreamingResponse(encoded(), media_type=media_type,
                             headers={"content-disposition": f'attachment; filename="{_ascii_name(filename)}"'})


def safe_next(target: str | None, default: str = "/") -> str:
    """A same-site path to go back to after a form (never another host, never a scheme)."""
    if not target or not isinstance(target, str) or len(target) > 2000:
        return default
    if not target.startswith("/") or target.startswith("//") or "\\" in target or any(ord(c) < 32 for c in target):
        return default
    return target


def form_ints(values: list, *, limit: int = 500) -> list[int]:
    """Integer ids from repeated form fields; junk is dropped (the service reports missing ids)."""
    out = []
    for v in values[: limit + 1]:
        if isinstance(v, str) and v.isdigit() and 0 < int(v) <= MAX_ID:
            out.append(int(v))
    return out
