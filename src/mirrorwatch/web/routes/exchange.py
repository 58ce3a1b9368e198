"""Exchange: the signal feed partners read with a scoped token, and withdrawing an entry (page + API).

The feed is served only to API tokens scoped to it (`mirrorwatch user token create NAME --exchange
BANK`): a session, an ordinary token or a token scoped to other banks gets 403, and a scoped token
gets 403 everywhere else (web/auth.py `need`). Pages are signed when the server holds a key
($MIRRORWATCH_EXCHANGE_SIGN_KEY names the private key file of `mirrorwatch bank keygen`)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from mirrorwatch.errors import PermissionDenied
from mirrorwatch.services import exchange
from mirrorwatch.services.signing import SigningKey, load_signing_key
from mirrorwatch.web.auth import REVIEWER, NotSignedIn, Principal, get_auth
from mirrorwatch.web.render import redirect
from mirrorwatch.web.routes.common import DB, IdPath, error_responses

ENV_SIGN_KEY = "MIRRORWATCH_EXCHANGE_SIGN_KEY"
api = APIRouter(prefix="/api", tags=["exchange"], responses=error_responses(400, 401, 403, 404))
router = APIRouter(include_in_schema=False)


def _signer(request: Request) -> SigningKey | None:
    state = request.app.state
    if not hasattr(state, "exchange_signer"):
        path = os.environ.get(ENV_SIGN_KEY)
        state.exchange_signer = load_signing_key(Path(path)) if path else None
    return state.exchange_signer


async def exchange_reader(request: Request, bank_id: IdPath) -> Principal:
    """A token scoped to read this bank's feed (403 for any other bank, without saying whether it exists)."""
    p = get_auth(request).principal(request)
    if p is None:
        raise NotSignedIn("the exchange feed needs a token: Authorization: Bearer mw_...")
    scope = p.user.scope
    if scope is None:
        raise PermissionDenied("the exchange feed is served only to exchange tokens "
                               "(`mirrorwatch user token create NAME --exchange BANK`)")
    if bank_id not in (scope.get("exchange_read") or []):
        raise PermissionDenied(f"this token may not read the feed of bank {bank_id}")
    if p.user.disabled:
        raise PermissionDenied("this account is disabled")
    return p


@api.get("/exchange/banks/{bank_id}/signals", summary="A bank's signals (mirrorwatch-signals/1), paged by cursor")
def signals(request: Request, db: DB, bank_id: IdPath,
            cursor: Annotated[str | None, Query(max_length=100, description="next_cursor of the previous page")] = None,
            limit: Annotated[int, Query(ge=1, le=exchange.PAGE_MAX)] = exchange.PAGE_DEFAULT,
            p: Principal = Depends(exchange_reader)):
    body = exchange.feed_page_bytes(db, bank_id, cursor, limit=limit, signer=_signer(request))
    headers = {"cache-control": "no-store"}
    if "gzip" in request.headers.get("accept-encoding", "") and len(body) > 1024:
        body = gzip.compress(body, compresslevel=1)
        headers["content-encoding"] = "gzip"
        headers["vary"] = "accept-encoding"
    return Response(body, media_type="application/json", headers=headers)


@api.post("/entries/{entry_id}/withdraw", summary="Withdraw an entry (reviewer): no new matches, a tombstone in the feed")
def api_withdraw(db: DB, entry_id: IdPath, p: Principal = REVIEWER):
    return exchange.withdraw_entry(db, entry_id, user=p.name)


@router.post("/entries/{entry_id}/withdraw")
def page_withdraw(request: Request, db: DB, entry_id: IdPath, p: Principal = REVIEWER):
    out = exchange.withdraw_entry(db, entry_id, user=p.name)
    msg = "Entry withdrawn: it matches no new file, and partners receive the withdrawal." if out["changed"] \
        else "This entry was already withdrawn."
    return redirect(request, f"/entries/{entry_id}", msg)
