"""Errors to responses: JSON ``{"error": "..."}`` under /api/, a calm error page elsewhere.

MirrorwatchError subclasses carry their HTTP status (400 bad input, 404 unknown id, 409 a state
that does not allow the change, 403 a role that does not allow it, 413/415 uploads). Not being
signed in gives 401 on the API and a redirect to the sign-in form on pages. Anything unexpected
is a 500 with a generic message (the details go to the server log, never to the client)."""

from __future__ import annotations

import logging
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from mirrorwatch.errors import MirrorwatchError
from mirrorwatch.web.auth import NotSignedIn

log = logging.getLogger("mirrorwatch.web")

_TITLES = {400: "Bad request", 401: "Sign-in required", 403: "Not allowed", 404: "Not found", 405: "Not allowed",
           409: "Conflict", 413: "Too large", 415: "Unsupported file", 422: "Bad request", 429: "Slow down",
           500: "Something went wrong", 502: "Hub error"}


def is_api(request: Request) -> bool:
    p = request.url.path
    return p == "/api" or p.startswith("/api/")


def error_response(request: Request, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    if is_api(request):
        return JSONResponse({"error": message}, status_code=status, headers=headers)
    from mirrorwatch.web.render import render

    try:
        resp = render(request, "error.html", status_code=status, status=status,
                      title=_TITLES.get(status, "Error"), message=message)
    except Exception:  # never fail while reporting a failure
        log.exception("cannot render the error page")
        return JSONResponse({"error": message}, status_code=status)
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path", "header"))
        parts.append(f"{loc or 'request'}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts) if parts else "invalid request"


def install(app: FastAPI) -> None:
    @app.exception_handler(NotSignedIn)
    async def _not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        if is_api(request):
            return JSONResponse({"error": str(exc)}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        if request.method in ("GET", "HEAD"):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            resp = RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
            if "expired" in str(exc):
                from mirrorwatch.web.render import redirect

                resp = redirect(request, f"/login?next={quote(target, safe='')}", str(exc), "warn")
            return resp
        return error_response(request, 401, str(exc))

    @app.exception_handler(MirrorwatchError)
    async def _mw_error(request: Request, exc: MirrorwatchError) -> Response:
        return error_response(request, exc.http_status, str(exc), getattr(exc, "http_headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return error_response(request, 422 if is_api(request) else 400, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "error")
        if exc.status_code == 404 and detail == "Not Found":
            detail = "no such page" if not is_api(request) else "no such endpoint"
        return error_response(request, exc.status_code, detail, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": "internal error"}, status_code=500) if is_api(request) else \
            error_response(request, 500, "internal error: the details are in the server log")
