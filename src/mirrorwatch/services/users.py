"""Accounts and API tokens.

Passwords are stored as argon2id hashes (OWASP's parameters: 19 MiB, 2 passes, 1 lane; the PHC
string carries salt and parameters) and compared in constant time. Hashes of older releases
(``scrypt$n$r$p$salt$hash`` at N=2^14) still verify, and are replaced by an argon2id hash on the
account's next successful sign-in.

Sessions. Each account has a session epoch; a web session carries the epoch it was signed in
under and stops working once the epoch moves on. Signing out, a password change and an admin's
"end sessions" all move it (signing out therefore ends the account's sessions everywhere: a
copied cookie cannot outlive the sign-out). API tokens (``mw_`` + 40 random characters) are shown once,
when they are created; only their SHA-256 is stored, with a short non-secret prefix so a person can
tell their tokens apart. Roles rank viewer < reviewer < admin: viewers read, reviewers also decide
and build reports, admins also manage banks and accounts.

Every change here writes an audit row (see services/audit.py) naming the actor."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Row, func, select, update
from sqlalchemy.exc import IntegrityError

from mirrorwatch.errors import Conflict, InvalidInput, NotFound
from mirrorwatch.services.audit import record
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import ApiToken, User, utcnow

ROLES = ("viewer", "reviewer", "admin")
ROLE_RANK = {r: i for i, r in enumerate(ROLES)}
TOKEN_PREFIX = "mw_"
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16,
                         type=Type.ID)
_SCRYPT_MAX_N = 2**17  # legacy hashes: refuse absurd stored parameters rather than allocate for them
# Refresh last_used_at at most this often, so an API script does not turn every read into a write.
_TOKEN_TOUCH = timedelta(minutes=5)
# Who a token or session belongs to is cached this long per process. Changes made through this module
# clear the cache at once; a change made by another process (the CLI, another web worker: a sign-out,
# an ended session, a revoked token) applies within this time.
AUTH_CACHE_SECONDS = 2.0


@dataclass
class UserView:
    id: int
    name: str
    role: str
    disabled: bool
    has_password: bool
    created_at: datetime
    # Changes whenever the account's sessions end (sign-out, password change, an admin ending them):
    # sessions signed with an older value stop working.
    session_tag: str = ""
    # Set when the request came with a scoped API token ({"exchange_read": [bank ids]}): such a token
    # reads those banks' exchange feeds and nothing else, whatever the account's role.
    scope: dict | None = None

    def can(self, role: str) -> bool:
        """True if this user's role is at least `role` (never for a scoped token)."""
        return not self.disabled and self.scope is None and ROLE_RANK.get(self.role, -1) >= ROLE_RANK[role]


@dataclass
class TokenView:
    id: int
    user_id: int
    user: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    scope: dict | None = None  # {"exchange_read": [bank ids]}: reads only those banks' exchange feeds

    @property
    def active(self) -> bool:
        return self.revoked_at is None


# --- passwords -------------------------------------------------------------------------------------

def hash_password(password: str) -> str:
    check_password_rules(password)
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Constant-time check of a password against a stored hash; False for anything malformed."""
    if not stored or not isinstance(password, str) or len(password) > MAX_PASSWORD:
        return False
    if stored.startswith("$argon2"):
        try:
            return _HASHER.verify(stored, password)
        except (VerificationError, InvalidHashError, ValueError):
            return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt" or not 1 < int(n) <= _SCRYPT_MAX_N or int(r) > 16 or int(p) > 4:
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             maxmem=256 * 1024 * 1024, dklen=len(want))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


def needs_rehash(stored: str) -> bool:
    """True for hashes of an older scheme or weaker parameters (replaced at the next sign-in)."""
    if not stored.startswith("$argon2id$"):
        return True
    try:
        return _HASHER.check_needs_rehash(stored)
    except (InvalidHashError, ValueError):
        return True


def check_password_rules(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise InvalidInput(f"a password must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(f"a password must have at most {MAX_PASSWORD} characters")


def generate_password() -> str:
    """A random password for accounts created without one (printed once by the CLI)."""
    return secrets.token_urlsafe(15)


_DUMMY_HASH: str | None = None


def _dummy_hash() -> str:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(secrets.token_urlsafe(12))
    return _DUMMY_HASH


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class _AuthCache:
    """Short-lived memo of token -> user and user id -> user, for the per-request auth checks."""

    def __init__(self, ttl: float = AUTH_CACHE_SECONDS, size: int = 10_000) -> None:
        self.ttl, self.size = ttl, size
        self._data: dict[tuple[str, str, object], tuple[float, UserView | None]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, object]) -> tuple[bool, UserView | None]:
        hit = self._data.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return True, hit[1]
        return False, None

    def put(self, key: tuple[str, str, object], user: UserView | None) -> None:
        with self._lock:
            if len(self._data) >= self.size:
                self._data.clear()
            self._data[key] = (time.monotonic() + self.ttl, user)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def cached(self, key: tuple[str, str, object], load: Callable[[], UserView | None]) -> UserView | None:
        """The memo for key, else load() (remembered for ttl seconds, also when it is None)."""
        found, cached = self.get(key)
        if found:
            return cached
        view = load()
        self.put(key, view)
        return view


AUTH_CACHE = _AuthCache()


def _session_tag(epoch: int | None) -> str:
    return f"e{epoch or 0}"


def _view(u: User | Row) -> UserView:
    """A user's view, from the model or from a row holding its columns under their names."""
    return UserView(u.id, u.name, u.role, u.disabled, bool(u.password_hash), u.created_at,
                    _session_tag(u.session_epoch))


# --- users -----------------------------------------------------------------------------------------

def canonical_name(name: str | None) -> str:
    """The one normalisation of a user name, for creating accounts, signing in and the sign-in
    throttle alike (NFKC, surrounding white space removed)."""
    return unicodedata.normalize("NFKC", name if isinstance(name, str) else "").strip()


def check_name(name: str) -> str:
    name = canonical_name(name)
    if not _NAME.match(name):
        raise InvalidInput("a user name is 1 to 100 characters: letters, digits and _ . @ - (starting with a letter or digit)")
    return name


def check_role(role: str) -> str:
    if role not in ROLE_RANK:
        raise InvalidInput(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    return role


def add_user(db: Database, name: str, role: str = "viewer", password: str | None = None, *,
             actor: str = "cli") -> UserView:
    """Create an account. Without a password the account can only use API tokens."""
    name = check_name(name)
    check_role(role)
    pw_hash = hash_password(password) if password is not None else None
    try:
        with db.session() as s:
            u = User(name=name, role=role, password_hash=pw_hash)
            s.add(u)
            s.flush()
            record(s, actor, "user.add", "user", u.id, name=name, role=role)
            view = _view(u)
    except IntegrityError:
        raise Conflict(f"a user named {name!r} already exists") from None
    AUTH_CACHE.clear()
    return view


def get_user(db: Database, ref: int | str) -> UserView:
    """A user by id (int) or name (str)."""
    with db.session() as s:
        u = _find(s, ref)
        return _view(u)


def get_active_user(db: Database, user_id: int) -> UserView | None:
    """The user behind a session, or None if it no longer exists or is disabled (hot path: cached)."""
    return AUTH_CACHE.cached((db.url, "user", user_id), lambda: _load_active_user(db, user_id))


def _load_active_user(db: Database, user_id: int) -> UserView | None:
    with db.engine.connect() as conn:
        row = conn.execute(
            select(User.id, User.name, User.role, User.disabled, User.password_hash, User.created_at,
                   User.session_epoch)
            .where(User.id == user_id)
        ).first()
    if row is None or row.disabled:
        return None
    return _view(row)


def _find(s, ref: int | str) -> User:
    if isinstance(ref, int):
        u = s.get(User, ref)
    else:
        u = s.scalar(select(User).where(User.name == canonical_name(ref)))
    if u is None:
        raise NotFound(f"no user {ref!r}" if isinstance(ref, str) else f"no user with id {ref}")
    return u


def list_users(db: Database) -> list[UserView]:
    with db.session() as s:
        return [_view(u) for u in s.scalars(select(User).order_by(User.name))]


def _active_admins(s, excluding: int) -> int:
    return s.scalar(
        select(func.count()).select_from(User)
        .where(User.role == "admin", User.disabled.is_(False), User.id != excluding)
    ) or 0


def set_role(db: Database, ref: int | str, role: str, *, actor: str = "cli") -> UserView:
    check_role(role)
    with db.session() as s:
        u = _find(s, ref)
        if u.role == "admin" and role != "admin" and not u.disabled and _active_admins(s, u.id) == 0:
            raise Conflict("this is the last active admin: make another admin first")
        old = u.role
        u.role = role
        record(s, actor, "user.role", "user", u.id, name=u.name, old=old, new=role)
        view = _view(u)
    AUTH_CACHE.clear()
    return view


def set_password(db: Database, ref: int | str, password: str, *, actor: str = "cli") -> UserView:
    """Set a new password; every session of the account ends (the caller may sign one in again)."""
    pw_hash = hash_password(password)
    with db.session() as s:
        u = _find(s, ref)
        u.password_hash = pw_hash
        u.session_epoch = (u.session_epoch or 0) + 1
        record(s, actor, "user.password", "user", u.id, name=u.name)
        view = _view(u)
    AUTH_CACHE.clear()
    return view


def set_disabled(db: Database, ref: int | str, disabled: bool, *, actor: str = "cli") -> UserView:
    """Disable (or re-enable) an account: its sessions and tokens stop working at once."""
    with db.session() as s:
        u = _find(s, ref)
        if disabled and u.role == "admin" and not u.disabled and _active_admins(s, u.id) == 0:
            raise Conflict("this is the last active admin: make another admin first")
        u.disabled = disabled
        if disabled:  # its sessions end for good: re-enabling does not bring them back
            u.session_epoch = (u.session_epoch or 0) + 1
        record(s, actor, "user.disable" if disabled else "user.enable", "user", u.id, name=u.name)
        view = _view(u)
    AUTH_CACHE.clear()
    return view


def end_sessions(db: Database, ref: int | str, *, actor: str = "cli", reason: str = "admin") -> UserView:
    """End every web session of an account (sign-out, or an admin ending them): audited; applies at
    once in this process and within AUTH_CACHE_SECONDS in others. API tokens are not touched."""
    with db.session() as s:
        u = _find(s, ref)
        u.session_epoch = (u.session_epoch or 0) + 1
        record(s, actor, "auth.logout" if reason == "sign-out" else "user.sessions_end", "user", u.id,
               name=u.name)
        view = _view(u)
    AUTH_CACHE.clear()
    return view


def authenticate(db: Database, name: str, password: str) -> UserView | None:
    """The user if name and password are right and the account is enabled, else None.

    An unknown name costs the same scrypt work as a wrong password, so timing does not tell which."""
    if not isinstance(name, str) or not isinstance(password, str) or len(name) > 100:
        verify_password(_dummy_hash(), "x" * MIN_PASSWORD)
        return None
    with db.session() as s:
        u = s.scalar(select(User).where(User.name == canonical_name(name)))
        stored = u.password_hash if u is not None else None
        view = _view(u) if u is not None else None
    ok = verify_password(stored or _dummy_hash(), password)
    if not ok or view is None or stored is None or view.disabled:
        return None
    if needs_rehash(stored):  # an older scheme: store an argon2id hash now that we know the password
        new_hash = _HASHER.hash(password)
        with db.session() as s:
            s.execute(update(User).where(User.id == view.id, User.password_hash == stored)
                      .values(password_hash=new_hash))
            record(s, view.name, "user.password_rehash", "user", view.id, name=view.name)
    return view


# --- API tokens ------------------------------------------------------------------------------------

def _token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(db: Database, ref: int | str, name: str = "", *, actor: str = "cli",
                 scope: dict | None = None) -> tuple[TokenView, str]:
    """Create a token for a user; returns it with the secret, which is never shown again. With a scope
    ({"exchange_read": [bank ids]}, see services/exchange.py) it reads only those banks' feeds."""
    name = (name or "").strip()
    if len(name) > 100:
        raise InvalidInput("a token label has at most 100 characters")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(30)
    with db.session() as s:
        u = _find(s, ref)
        if u.disabled:
            raise Conflict(f"user {u.name!r} is disabled")
        t = ApiToken(user_id=u.id, name=name, prefix=secret[:11], token_hash=_token_hash(secret), scope=scope)
        s.add(t)
        s.flush()
        record(s, actor, "token.create", "token", t.id, user=u.name, name=name, prefix=t.prefix,
               **({"scope": scope} if scope else {}))
        view = TokenView(t.id, u.id, u.name, t.name, t.prefix, t.created_at, None, None, scope)
    AUTH_CACHE.clear()
    return view, secret


def list_tokens(db: Database, *, user_id: int | None = None, include_revoked: bool = True) -> list[TokenView]:
    q = select(ApiToken, User.name).join(User, User.id == ApiToken.user_id).order_by(ApiToken.id)
    if user_id is not None:
        q = q.where(ApiToken.user_id == user_id)
    if not include_revoked:
        q = q.where(ApiToken.revoked_at.is_(None))
    with db.session() as s:
        return [TokenView(t.id, t.user_id, uname, t.name, t.prefix, t.created_at, t.last_used_at, t.revoked_at,
                          t.scope)
                for t, uname in s.execute(q)]


def revoke_token(db: Database, token_id: int, *, actor: str = "cli", owner_id: int | None = None) -> TokenView:
    """Revoke a token. With owner_id, only that user's tokens are visible (others look absent)."""
    with db.session() as s:
        t = s.get(ApiToken, token_id)
        if t is None or (owner_id is not None and t.user_id != owner_id):
            raise NotFound(f"no token with id {token_id}")
        if t.revoked_at is None:
            t.revoked_at = utcnow()
            record(s, actor, "token.revoke", "token", t.id, prefix=t.prefix)
        uname = s.get(User, t.user_id).name
        view = TokenView(t.id, t.user_id, uname, t.name, t.prefix, t.created_at, t.last_used_at, t.revoked_at)
    AUTH_CACHE.clear()
    return view


def user_for_token(db: Database, secret: str) -> UserView | None:
    """The enabled user holding this unrevoked token, or None (hot path: cached, else one indexed query).

    The lookup is by SHA-256 of the presented secret, so comparing stored values leaks nothing useful:
    an attacker controls only the preimage."""
    if not isinstance(secret, str) or not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    digest = _token_hash(secret)
    return AUTH_CACHE.cached((db.url, "token", digest), lambda: _load_token_user(db, digest))


def _load_token_user(db: Database, digest: str) -> UserView | None:
    with db.engine.connect() as conn:
        row = conn.execute(
            select(ApiToken.id.label("token_id"), ApiToken.last_used_at, ApiToken.scope, User.id, User.name, User.role, User.disabled,
                   User.password_hash, User.created_at, User.session_epoch)
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.token_hash == digest, ApiToken.revoked_at.is_(None))
        ).first()
        if row is None or row.disabled:
            return None
        now = utcnow()
        if row.last_used_at is None or now - row.last_used_at > _TOKEN_TOUCH:
            conn.execute(update(ApiToken).where(ApiToken.id == row.token_id).values(last_used_at=now))
            conn.commit()
    view = _view(row)
    view.scope = row.scope
    return view
