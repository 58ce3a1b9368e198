"""Rendering pages: one Jinja2 environment (autoescape always on), filters, and flash messages.

Templates never receive raw HTML from data: every name, path, note and evidence line is escaped
by Jinja. Before that, every printed value passes `mirrorwatch.display.safe_text` (the Jinja
`finalize` hook): control characters and bidi overrides in hub file names, uploader names or sheet
cells show as visible escapes (``\u202e``) instead of reordering or hiding what is around them. The only markup built in Python is the inline SVG of the charts (web/charts.py), which
escapes its own labels. Flash messages travel in a short-lived signed cookie, so a link cannot put
words into the app's mouth."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from mirrorwatch.display import safe_text
from mirrorwatch.hashing.forms import describe_lengths, hash_labels
from mirrorwatch.hubs.registry import repo_type_label
from mirrorwatch.match.states import TIER_NAMES, reviewer_may
from mirrorwatch.web.auth import CSRF_FIELD, get_auth

TEMPLATES = Path(__file__).parent / "templates"
FLASH_COOKIE = "mw_flash"


def _dt(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "–"


def _day(value: datetime | date | None) -> str:
    return value.strftime("%Y-%m-%d") if value else "–"


def _size(value: int | None) -> str:
    if value is None:
        return "–"
    n = float(value)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(value)


def _short(value: str | None, n: int = 12) -> str:
    if not value:
        return "–"
    return value if len(value) <= n else value[:n] + "…"


def uploader_url(hub: str, author: str | None) -> str:
    if not author:
        return ""
    return f"/uploaders/{quote(hub, safe='')}/{quote(author, safe='')}"


_HUB_HREF_SAFE = ":/@!$&'()*+,;=-._~%"


def hub_href(url: str | None) -> str:
    """A link to a repo or file on a hub. Hub page URLs carry no query or fragment, so a "#" or "?"
    there belongs to a file name and is percent-encoded (as are spaces, quotes and non-ASCII); an
    existing %XX is kept, so an already encoded URL comes out unchanged. Only http(s) links."""
    if not url or urlsplit(url).scheme.lower() not in ("http", "https"):
        return ""
    return quote(url, safe=_HUB_HREF_SAFE)


def ext_href(url: str | None) -> str:
    """A link to an outside page given by a sheet (a Civitai URL): only http(s); the query is kept."""
    if not url or urlsplit(url).scheme.lower() not in ("http", "https"):
        return ""
    return quote(url, safe=_HUB_HREF_SAFE + "?#[]")


def _qs(params: dict[str, Any], **changes: Any) -> str:
    merged = {**params, **changes}
    return urlencode({k: v for k, v in merged.items() if v not in (None, "", False)})


def _num(value: int | float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,}".replace(",", " ") if isinstance(value, int) else f"{value:g}"


def _finalize(value: Any) -> Any:
    """Every {{ value }} of every template: untrusted text made safe to show (newlines kept)."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return safe_text(value, keep_newlines=True)
    return value


def make_env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True, default=True),
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_finalize,
    )
    env.filters.update(dt=_dt, day=_day, size=_size, short=_short, num=_num, hub_href=hub_href, ext_href=ext_href)
    env.globals.update(uploader_url=uploader_url, repo_type_label=repo_type_label, qs=_qs, TIER_NAMES=TIER_NAMES, CSRF_FIELD=CSRF_FIELD,
                       hash_lengths=describe_lengths, hash_labels=hash_labels,
                       reviewer_may=reviewer_may)
    return env


ENV = make_env()


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a page with the signed-in user, the CSRF secret and any flash message."""
    auth = get_auth(request)
    response = HTMLResponse("", status_code=status_code)
    principal = None
    try:
        principal = auth.principal(request)
    except Exception:  # an invalid Authorization header on an HTML page: render as signed out
        principal = None
    csrf = principal.csrf if principal and principal.csrf else auth.anonymous_csrf(request, response)
    flash = _take_flash(request, response)
    html = ENV.get_template(template).render(request=request, me=principal, csrf=csrf, flash=flash,
                                             path=request.url.path, **context)
    response.body = html.encode()
    response.headers["content-length"] = str(len(response.body))
    return response


def _flash_signer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(get_auth(request).signer.secret_key, salt="mirrorwatch.flash")


def redirect(request: Request, url: str, message: str | None = None, kind: str = "ok") -> Response:
    """A 303 See Other (after a POST), optionally carrying a flash message to the next page."""
    response = RedirectResponse(url, status_code=303)
    if message:
        response.set_cookie(FLASH_COOKIE, _flash_signer(request).dumps([kind, message[:500]]), max_age=60,
                            path="/", httponly=True, samesite="lax", secure=request.url.scheme == "https")
    return response


def _take_flash(request: Request, response: Response) -> tuple[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    response.delete_cookie(FLASH_COOKIE, path="/")
    try:
        kind, message = _flash_signer(request).loads(raw, max_age=120)
        return str(kind), str(message)
    except (BadSignature, ValueError, TypeError):
        return None
