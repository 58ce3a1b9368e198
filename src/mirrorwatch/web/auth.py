"""Who is asking: session cookies, API tokens, roles and CSRF.

Sessions. A signed cookie (itsdangerous, HMAC-SHA1 over a secret key that never leaves the server)
holding the user id, a random CSRF secret and a tag derived from the user's password hash. It is
HttpOnly, SameSite=Lax, Secure when the app is served over https, and expires after
``session_max_age`` seconds from sign-in (the signature carries the time). Each request re-reads
the user, so a role change or a disabled account applies at once, and a password change ends every
session signed in with the old password. Signed-out visitors get an anonymous session (no user id)
only to carry the CSRF secret of the sign-in form.

API tokens. ``Authorization: Bearer mw_...``; looked up by SHA-256, refused when revoked or when
the account is disabled. A request that sends a Bearer header is judged by it alone. Other schemes
(Basic credentials of a proxy in front of the app) get a clear 401 on the API and are ignored by
pages, which then use the session cookie.

CSRF. Every POST/PUT/PATCH/DELETE that is not token-authenticated must carry the session's CSRF
secret, as the form field ``csrf_token`` (all forms include it) or the ``X-CSRF-Token`` header.
A forged request is refused with 403 before any route code runs. Token-authenticated API calls are
exempt: browsers never attach bearer tokens on their own.

Roles. viewer < reviewer < admin; routes declare the least role they need (``need("reviewer")``)."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from fastapi.responses import Response
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from mirrorwatch.errors import MirrorwatchError, PermissionDenied
from mirrorwatch.services.users import UserView, canonical_name, get_active_user, user_for_token
from mirrorwatch.store.db import Database

SESSION_COOKIE = "mw_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
DEFAULT_SESSION_MAX_AGE = 12 * 3600
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class NotSignedIn(MirrorwatchError):
    """No valid session or token: pages redirect to the sign-in form, the API answers 401."""

    http_status = 401


class CsrfRefused(MirrorwatchError):
    http_status = 403


class TooManyAttempts(MirrorwatchError):
    http_status = 429


@dataclass
class Principal:
    user: UserView
    via: str  # "session" or "token"
    csrf: str | None = None

    @property
    def name(self) -> str:
        return self.user.name

    def can(self, role: str) -> bool:
        return self.user.can(role)


class LoginThrottle:
    """Slows password guessing without handing an attacker a cheap way to lock the real user out.

    Failures are counted in a sliding window (15 minutes), per process, in memory, under three keys:

    - (account, client address): 10 failures and that address waits out the window for that account.
      This is what stops a guesser, and it does not touch the real user signing in from elsewhere.
    - client address: 50 failures over any names and that address waits (spraying many accounts).
    - account, over all addresses: 100 failures and everyone waits for that account. This caps
      distributed guessing at 100 guesses per account per window (against scrypt), and locking the
      real user out now takes at least ten addresses each spending its own per-pair allowance,
      instead of ten requests from anywhere (the old per-name lockout was a cheap denial of service).

    The account key is the same normalisation sign-in uses (users.canonical_name), so " viewer" and
    "viewer" share one count; a success clears that address's count for the account."""

    def __init__(self, per_pair: int = 10, per_ip: int = 50, per_account: int = 100,
                 window: float = 900.0) -> None:
        self.per_pair, self.per_ip, self.per_account, self.window = per_pair, per_ip, per_account, window
        self._fails: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    @staticmethod
    def _keys(name: str, ip: str) -> tuple[str, str, str]:
        account = canonical_name(name)[:200]
        return "p:" + ip + "\0" + account, "i:" + ip, "a:" + account

    def _recent(self, key: str, now: float) -> int:
        q = self._fails.get(key)
        if q is None:
            return 0
        while q and now - q[0] > self.window:
            q.popleft()
        return len(q)

    def check(self, name: str, ip: str) -> None:
        now = time.monotonic()
        pair, addr, account = self._keys(name, ip)
        with self._lock:
            if (self._recent(pair, now) >= self.per_pair or self._recent(addr, now) >= self.per_ip
                    or self._recent(account, now) >= self.per_account):
                raise TooManyAttempts(f"too many failed sign-ins; try again in {int(self.window // 60)} minutes")

    def failed(self, name: str, ip: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._fails) > 50_000:  # bounded memory under a flood of made-up names
                for key in [k for k, q in self._fails.items() if not q or now - q[-1] > self.window]:
                    del self._fails[key]
            for key in self._keys(name, ip):
                self._fails[key].append(now)

    def succeeded(self, name: str, ip: str) -> None:
        pair, _addr, _account = self._keys(name, ip)
        with self._lock:
            self._fails.pop(pair, None)


class Auth:
    """Per-app authentication state: the database, the cookie signer and the sign-in throttle."""

    def __init__(self, db: Database, secret_key: str, *, session_max_age: int = DEFAULT_SESSION_MAX_AGE) -> None:
        self.db = db
        self.session_max_age = session_max_age
        self.signer = URLSafeTimedSerializer(secret_key, salt="mirrorwatch.session")
        self.throttle = LoginThrottle()

    # --- cookie ---
    def read_session(self, request: Request) -> dict[str, Any] | None:
        if "mw_session_data" in request.scope.get("state", {}):
            return request.state.mw_session_data
        raw = request.cookies.get(SESSION_COOKIE)
        data = None
        if raw and len(raw) < 4096:
            try:
                loaded = self.signer.loads(raw, max_age=self.session_max_age)
                if isinstance(loaded, dict) and isinstance(loaded.get("c"), str):
                    data = loaded
            except SignatureExpired:
                request.state.mw_session_expired = True
            except BadSignature:
                pass
        request.state.mw_session_data = data
        return data

    def write_session(self, request: Request, response: Response, data: dict[str, Any]) -> None:
        response.set_cookie(
            SESSION_COOKIE, self.signer.dumps(data), max_age=self.session_max_age, path="/", httponly=True,
            samesite="lax", secure=request.url.scheme == "https",
        )
        request.state.mw_session_data = data

    def clear_session(self, request: Request, response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax",
                               secure=request.url.scheme == "https")

    def anonymous_csrf(self, request: Request, response: Response) -> str:
        """The CSRF secret of the current session, starting an anonymous session if there is none."""
        data = self.read_session(request)
        if data is None:
            data = {"u": None, "c": secrets.token_urlsafe(24)}
            self.write_session(request, response, data)
        return data["c"]

    def sign_in(self, request: Request, response: Response, user: UserView) -> None:
        """Start a fresh session (new CSRF secret: nothing from before sign-in carries over)."""
        self.write_session(request, response, {"u": user.id, "c": secrets.token_urlsafe(24), "t": user.session_tag})

    # --- who ---
    def principal(self, request: Request) -> Principal | None:
        state = request.scope.setdefault("state", {})
        if "mw_principal" in state:
            return state["mw_principal"]
        p = self._resolve(request)
        state["mw_principal"] = p
        return p

    def _resolve(self, request: Request) -> Principal | None:
        header = request.headers.get("authorization")
        if header is not None:
            token = bearer_token(header)
            if token is not None:
                user = user_for_token(self.db, token) if token else None
                if user is None:
                    raise NotSignedIn("invalid or revoked API token")
                return Principal(user, "token")
            if is_api_path(request.url.path):
                raise NotSignedIn("the Authorization header must be 'Bearer mw_...'")
            # Pages: another scheme (Basic, from a proxy in front of the app) is not ours to judge;
            # ignore it and use the session cookie (judging it made every page redirect forever).
        data = self.read_session(request)
        if not data or not isinstance(data.get("u"), int):
            return None
        user = get_active_user(self.db, data["u"])
        if user is None or not hmac.compare_digest(str(data.get("t", "")), user.session_tag):
            return None
        return Principal(user, "session", data["c"])

    def check_csrf(self, request: Request, submitted: str | None) -> None:
        if request.method not in UNSAFE_METHODS or bearer_token(request.headers.get("authorization")) is not None:
            return
        data = self.read_session(request)
        if data is None:
            raise CsrfRefused("this form has expired or did not come from mirrorwatch: reload the page and try again")
        if not submitted or not hmac.compare_digest(str(submitted), data["c"]):
            raise CsrfRefused("missing or wrong CSRF token: reload the page and try again")


def is_api_path(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")


def bearer_token(header: str | None) -> str | None:
    """The token of a ``Bearer`` Authorization header ("" if empty), or None for no header or
    another scheme."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def get_auth(request: Request) -> Auth:
    return request.app.state.auth


async def csrf_guard(request: Request) -> None:
    """Global dependency: refuses unsafe requests without the session's CSRF secret.

    Only a Bearer header exempts a request: browsers attach Basic credentials (of a proxy in front)
    to forged cross-site requests on their own, never bearer tokens."""
    if request.method not in UNSAFE_METHODS or bearer_token(request.headers.get("authorization")) is not None:
        return
    auth = get_auth(request)
    submitted = request.headers.get(CSRF_HEADER)
    if submitted is None:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            try:
                form = await request.form()
            except Exception:  # malformed bodies are refused by the route's own parsing later
                form = {}
            value = form.get(CSRF_FIELD)
            submitted = value if isinstance(value, str) else None
    auth.check_csrf(request, submitted)


def current(request: Request) -> Principal | None:
    """The signed-in principal, or None (for pages that also serve signed-out visitors)."""
    return get_auth(request).principal(request)


def need(role: str = "viewer"):
    """Dependency: a signed-in principal with at least `role`."""

    async def dep(request: Request) -> Principal:
        # Async so it runs on the event loop instead of a thread-pool hop: it is a signature check and,
        # at most every few seconds per user, one indexed query (services.users caches the rest).
        p = get_auth(request).principal(request)
        if p is None:
            expired = getattr(request.state, "mw_session_expired", False)
            raise NotSignedIn("your session has expired: sign in again" if expired else "sign in to continue")
        if p.user.scope is not None:
            raise PermissionDenied("this token is scoped to the exchange feed of named banks: it cannot use this")
        if not p.can(role):
            raise PermissionDenied(f"this needs the {role} role (you are {p.user.role})")
        return p

    dep.__name__ = f"need_{role}"
    return Depends(dep)


VIEWER = need("viewer")
REVIEWER = need("reviewer")
ADMIN = need("admin")
