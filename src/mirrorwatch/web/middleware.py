"""ASGI middleware: request body limits and security headers.

BodyLimit refuses a request body over its limit with 413 before the route runs: at once when the
Content-Length says so, or as soon as the streamed body passes the limit (then whatever the app was
about to answer is replaced by the 413). Sheet imports get the upload limit; every other request
gets a small one, since no other form or JSON body needs more.

SecurityHeaders sets a strict Content-Security-Policy (only this origin's scripts and styles, no
inline code, no framing), no-referrer (mirror links must not tell hubs where reviewers came from),
nosniff, and no-store for everything but static files (pages hold names of real people)."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mirrorwatch.services.uploads import MAX_UPLOAD_BYTES

SMALL_BODY = 1024 * 1024
UPLOAD_PATHS = ("/api/banks/", "/banks/")
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


def _limit_for(path: str, upload_limit: int) -> int:
    if path.startswith(UPLOAD_PATHS) and path.rstrip("/").endswith(("/import", "/import/preview")):
        return upload_limit + 1024 * 1024  # room for the multipart envelope
    return SMALL_BODY


class _TooLarge(Exception):
    pass


class BodyLimit:
    def __init__(self, app: ASGIApp, *, upload_limit: int = MAX_UPLOAD_BYTES) -> None:
        self.app = app
        self.upload_limit = upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        limit = _limit_for(path, self.upload_limit)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _send_error(send, 400, "bad Content-Length header", path)
                    return
                if declared > limit:
                    await _send_error(send, 413, _too_large_message(limit, self.upload_limit), path)
                    return
        seen = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal seen, exceeded
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    exceeded = True
                    raise _TooLarge()
            return msg

        async def guarded_send(msg: Message) -> None:
            nonlocal started
            if exceeded:
                return  # the 413 below replaces the app's answer
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _TooLarge:
            pass
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await _send_error(send, 413, _too_large_message(limit, self.upload_limit), path)


def _too_large_message(limit: int, upload_limit: int) -> str:
    if limit > SMALL_BODY:
        return f"the upload is too large: files are limited to {upload_limit // (1024 * 1024)} MB"
    return f"the request body is too large (limit {SMALL_BODY // 1024} KB)"


async def _send_error(send: Send, status: int, message: str, path: str) -> None:
    if path.startswith("/api/") or path == "/api":
        body = json.dumps({"error": message}).encode()
        ctype = b"application/json"
    else:
        from html import escape

        # A plain link (the CSP forbids javascript: URLs): the page the form was on, else the dashboard.
        back = path.rstrip("/").removesuffix("/preview").removesuffix("/import") if path.startswith("/banks/") else "/"
        body = (f"<!doctype html><meta charset=utf-8><title>{status}</title>"
                f"<p>{escape(message)}</p><p><a href=\"{escape(back or '/', quote=True)}\">Back</a></p>").encode()
        ctype = b"text/html; charset=utf-8"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith("/static/")

        async def with_headers(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                headers = list(msg.get("headers", []))
                have = {k.lower() for k, _ in headers}
                extra = [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                ]
                if not static and b"cache-control" not in have:
                    extra.append((b"cache-control", b"no-store"))
                headers.extend((k, v) for k, v in extra if k not in have)
                msg = {**msg, "headers": headers}
            await send(msg)

        await self.app(scope, receive, with_headers)
