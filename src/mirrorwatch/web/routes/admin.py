"""Pages: your account (password, API tokens), accounts and the audit log (admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from mirrorwatch.errors import InvalidInput, PermissionDenied
from mirrorwatch.services import users
from mirrorwatch.services.audit import list_audit
from mirrorwatch.store.db import Database
from mirrorwatch.web.auth import ADMIN, VIEWER, Principal, get_auth
from mirrorwatch.web.render import redirect, render
from mirrorwatch.web.routes.common import DB, PAGE_SIZE, IdPath, Offset, safe_next

router = APIRouter(include_in_schema=False)


def _account(request: Request, db: Database, p: Principal, **extra):
    return render(request, "account.html", tokens=users.list_tokens(db, user_id=p.user.id), **extra)


@router.get("/account")
def account(request: Request, db: DB, p: Principal = VIEWER):
    return _account(request, db, p)


@router.post("/account/password")
async def account_password(request: Request, db: DB, p: Principal = VIEWER):
    form = await request.form()
    current_pw, new, again = (str(form.get(k) or "") for k in ("current", "new", "again"))
    ok = await run_in_threadpool(users.authenticate, db, p.name, current_pw)
    if ok is None:
        raise PermissionDenied("the current password is wrong")
    if new != again:
        raise InvalidInput("the two new passwords differ")
    user = await run_in_threadpool(lambda: users.set_password(db, p.user.id, new, actor=p.name))
    response = redirect(request, "/account", "Password changed.")
    get_auth(request).sign_in(request, response, user)  # keep this session, end the others
    return response


@router.post("/account/tokens")
async def account_token_create(request: Request, db: DB, p: Principal = VIEWER):
    form = await request.form()
    token, secret = await run_in_threadpool(lambda: users.create_token(db, p.user.id, str(form.get("name") or ""),
                                                                       actor=p.name))
    return _account(request, db, p, new_token=token, secret=secret)


@router.post("/account/tokens/{token_id}/revoke")
async def account_token_revoke(request: Request, db: DB, token_id: IdPath, p: Principal = VIEWER):
    form = await request.form()
    owner = None if p.can("admin") else p.user.id
    await run_in_threadpool(lambda: users.revoke_token(db, token_id, actor=p.name, owner_id=owner))
    return redirect(request, safe_next(str(form.get("return_to") or ""), "/account"), f"Token {token_id} revoked.")


@router.get("/admin/users")
def users_page(request: Request, db: DB, p: Principal = ADMIN):
    return render(request, "users.html", users=users.list_users(db), tokens=users.list_tokens(db), roles=users.ROLES)


@router.post("/admin/users")
async def users_add(request: Request, db: DB, p: Principal = ADMIN):
    form = await request.form()
    name, role, password = (str(form.get(k) or "") for k in ("name", "role", "password"))
    generated = None
    if not password:
        generated = password = users.generate_password()
    u = await run_in_threadpool(lambda: users.add_user(db, name, role or "viewer", password, actor=p.name))
    return render(request, "users.html", users=users.list_users(db), tokens=users.list_tokens(db), roles=users.ROLES,
                  created=u, generated=generated)


@router.post("/admin/users/{user_id}")
async def users_change(request: Request, db: DB, user_id: IdPath, p: Principal = ADMIN):
    form = await request.form()
    action = str(form.get("action") or "")
    if action == "role":
        u = await run_in_threadpool(lambda: users.set_role(db, user_id, str(form.get("role") or ""), actor=p.name))
        msg = f"{u.name} is now {u.role}."
    elif action in ("disable", "enable"):
        u = await run_in_threadpool(lambda: users.set_disabled(db, user_id, action == "disable", actor=p.name))
        msg = f"{u.name} {'disabled' if u.disabled else 'enabled'}."
    elif action == "password":
        u = await run_in_threadpool(lambda: users.set_password(db, user_id, str(form.get("password") or ""),
                                                               actor=p.name))
        msg = f"Password of {u.name} changed; their sessions have ended."
    elif action == "logout":
        u = await run_in_threadpool(lambda: users.end_sessions(db, user_id, actor=p.name))
        msg = f"Every session of {u.name} has ended."
        if u.id == p.user.id:  # ended their own too: sign this browser in afresh
            response = redirect(request, "/admin/users", msg)
            get_auth(request).sign_in(request, response, u)
            return response
    else:
        raise InvalidInput("unknown account action")
    return redirect(request, "/admin/users", msg)


@router.get("/admin/audit")
def audit_page(request: Request, db: DB, user: Annotated[str, Query(max_length=100)] = "",
               action: Annotated[str, Query(max_length=60)] = "", offset: Offset = 0, p: Principal = ADMIN):
    page = list_audit(db, user=user or None, action=action or None, limit=PAGE_SIZE, offset=offset)
    return render(request, "audit.html", page=page, params={"user": user, "action": action})
