"""Pages: sign in, sign out, and the health check (the only routes open to signed-out visitors)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import text

from mirrorwatch.services import users, watchstate
from mirrorwatch.services.audit import record
from mirrorwatch.web.auth import NotSignedIn, current, get_auth
from mirrorwatch.web.render import redirect, render
from mirrorwatch.web.routes.common import DB, safe_next
from mirrorwatch.web.schemas import HealthOut

router = APIRouter(include_in_schema=False)
api = APIRouter(tags=["health"])


@api.get("/healthz", response_model=HealthOut, response_model_exclude_unset=True,
         summary="Health check (no sign-in needed)")
def healthz(db: DB, response: Response, strict: bool = False):
    """200 while the database answers. With a watcher (`mirrorwatch watch`), `watch` gives its state
    and each job's last success and next run (names and times only); `status` is "degraded" while a
    job is failing or the watcher is stale, still with 200, unless `?strict=1` asks for a 503 then."""
    with db.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    out: dict = {"status": "ok", "database": "ok"}
    watch = watchstate.health(db)
    if watch is not None:
        out["watch"] = watch
        out["status"] = watch["status"]
        if strict and watch["status"] != "ok":
            response.status_code = 503
    return out


@router.get("/login")
def login_form(request: Request, next: str | None = None):
    try:
        signed_in = current(request) is not None
    except NotSignedIn:  # a stale bearer token on a page: show the form (never redirect in a loop)
        signed_in = False
    if signed_in:
        return redirect(request, safe_next(next))
    return render(request, "login.html", next=safe_next(next, ""), error=None, name="")


@router.post("/login")
async def login(request: Request, db: DB, name: Annotated[str, Form(max_length=200)] = "",
                password: Annotated[str, Form(max_length=2000)] = "", next: Annotated[str, Form(max_length=2000)] = ""):
    auth = get_auth(request)
    ip = request.client.host if request.client else "-"
    auth.throttle.check(name, ip)
    user = await run_in_threadpool(users.authenticate, db, name, password)
    if user is None:
        auth.throttle.failed(name, ip)

        def _log_failure() -> None:
            with db.session() as s:
                record(s, (name or "-")[:100], "auth.login_failed", "user", None, ip=ip)

        await run_in_threadpool(_log_failure)
        return render(request, "login.html", status_code=401, next=safe_next(next, ""),
                      error="Wrong name or password.", name=name[:100])
    auth.throttle.succeeded(name, ip)

    def _log_success() -> None:
        with db.session() as s:
            record(s, user.name, "auth.login", "user", user.id, ip=ip)

    await run_in_threadpool(_log_success)
    response = redirect(request, safe_next(next))
    auth.sign_in(request, response, user)
    return response


@router.post("/logout")
def logout(request: Request, db: DB):
    """Sign out: the account's session epoch moves on, so this cookie (and any copy of it) is dead on
    the server too, not only deleted from this browser."""
    response = redirect(request, "/login", "Signed out.")
    auth = get_auth(request)
    try:
        p = auth.principal(request)
    except NotSignedIn:
        p = None
    if p is not None and p.via == "session":
        users.end_sessions(db, p.user.id, actor=p.name, reason="sign-out")
    auth.clear_session(request, response)
    return response
