"""JSON API: who am I, accounts and tokens, the audit log, and the OpenAPI schema."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from mirrorwatch.errors import PermissionDenied
from mirrorwatch.services import users
from mirrorwatch.services.audit import list_audit
from mirrorwatch.web.auth import ADMIN, VIEWER, Principal
from mirrorwatch.web.routes.common import DB, IdPath, Limit, Offset, error_responses
from mirrorwatch.web.schemas import (
    AuditOut,
    MeOut,
    PageOut,
    TokenCreatedOut,
    TokenIn,
    TokenOut,
    UserIn,
    UserOut,
    UserPatch,
)

ERRORS = error_responses(400, 401, 403, 404, 409)
router = APIRouter(prefix="/api", tags=["accounts"], responses=ERRORS)


@router.get("/me", response_model=MeOut, summary="The signed-in user (and the CSRF token for cookie sessions)")
def api_me(p: Principal = VIEWER):
    return {"user": p.user, "via": p.via, "csrf_token": p.csrf}


@router.get("/users", response_model=list[UserOut], dependencies=[ADMIN], summary="Accounts (admin)")
def api_users(db: DB):
    return users.list_users(db)


@router.post("/users", response_model=UserOut, status_code=201, summary="Create an account (admin)")
def api_add_user(db: DB, body: UserIn, p: Principal = ADMIN):
    return users.add_user(db, body.name, body.role, body.password, actor=p.name)


@router.get("/users/{user_id}", response_model=UserOut, dependencies=[ADMIN], summary="One account (admin)")
def api_user(db: DB, user_id: IdPath):
    return users.get_user(db, user_id)


@router.patch("/users/{user_id}", response_model=UserOut, summary="Change role, password or disable an account (admin)")
def api_patch_user(db: DB, user_id: IdPath, body: UserPatch, p: Principal = ADMIN):
    u = users.get_user(db, user_id)
    if body.role is not None and body.role != u.role:
        u = users.set_role(db, user_id, body.role, actor=p.name)
    if body.password is not None:
        u = users.set_password(db, user_id, body.password, actor=p.name)
    if body.disabled is not None and body.disabled != u.disabled:
        u = users.set_disabled(db, user_id, body.disabled, actor=p.name)
    return u


@router.delete("/users/{user_id}/sessions", response_model=UserOut,
               summary="End every web session of an account (admin; API tokens stay valid)")
def api_end_sessions(db: DB, user_id: IdPath, p: Principal = ADMIN):
    return users.end_sessions(db, user_id, actor=p.name)


@router.get("/tokens", response_model=list[TokenOut], summary="API tokens: your own, or everyone's for admins")
def api_tokens(db: DB, all_users: Annotated[bool, Query(alias="all")] = False, p: Principal = VIEWER):
    if all_users and not p.can("admin"):
        raise PermissionDenied("listing everyone's tokens needs the admin role")
    return users.list_tokens(db, user_id=None if all_users else p.user.id)


@router.post("/tokens", response_model=TokenCreatedOut, status_code=201,
             summary="Create an API token (the secret is shown only in this answer)")
def api_create_token(db: DB, body: TokenIn, p: Principal = VIEWER):
    target: int | str = p.user.id
    if body.user and body.user != p.name:
        if not p.can("admin"):
            raise PermissionDenied("creating tokens for other users needs the admin role")
        target = body.user
    token, secret = users.create_token(db, target, body.name, actor=p.name)
    return {"token": token, "secret": secret}


@router.delete("/tokens/{token_id}", response_model=TokenOut, summary="Revoke an API token")
def api_revoke_token(db: DB, token_id: IdPath, p: Principal = VIEWER):
    return users.revoke_token(db, token_id, actor=p.name, owner_id=None if p.can("admin") else p.user.id)


@router.get("/audit", response_model=PageOut[AuditOut], dependencies=[ADMIN], summary="The audit log (admin)")
def api_audit(db: DB, user: Annotated[str | None, Query(max_length=100)] = None,
              action: Annotated[str | None, Query(max_length=60)] = None,
              object_type: Annotated[str | None, Query(max_length=40)] = None,
              object_id: Annotated[str | None, Query(max_length=100)] = None,
              limit: Limit = 50, offset: Offset = 0):
    return list_audit(db, user=user, action=action, object_type=object_type, object_id=object_id,
                      limit=limit, offset=offset)


@router.get("/openapi.json", include_in_schema=False, dependencies=[VIEWER])
def api_openapi(request: Request):
    return request.app.openapi()

