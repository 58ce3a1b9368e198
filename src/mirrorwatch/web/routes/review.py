"""Pages: the review queue (filters, bulk and keyboard decisions) and a match's own page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from mirrorwatch.errors import InvalidInput
from mirrorwatch.match.states import STATES
from mirrorwatch.services import review
from mirrorwatch.services.banks import list_banks
from mirrorwatch.services.review import QueueFilter
from mirrorwatch.web.auth import REVIEWER, VIEWER, Principal
from mirrorwatch.web.render import redirect, render
from mirrorwatch.web.routes.common import DB, IdPath, Offset, form_ints, safe_next

router = APIRouter(include_in_schema=False)
QUEUE_PAGE = 100


def _opt_int(value: str, name: str, lo: int, hi: int) -> int | None:
    value = value.strip()
    if not value:
        return None
    if not value.isdigit() or not (lo <= int(value) <= hi):
        raise InvalidInput(f"{name} must be a whole number from {lo} to {hi}")
    return int(value)


def _opt_float(value: str, name: str) -> float | None:
    value = value.strip()
    if not value:
        return None
    try:
        f = float(value)
    except ValueError:
        raise InvalidInput(f"{name} must be a number") from None
    if not (0 <= f <= 1000):
        raise InvalidInput(f"{name} must be between 0 and 1000")
    return f


@router.get("/queue")
def queue_page(request: Request, db: DB, state: Annotated[str, Query(max_length=20)] = "new",
               bank: Annotated[str, Query(max_length=20)] = "", tier: Annotated[str, Query(max_length=2)] = "",
               min_score: Annotated[str, Query(max_length=20)] = "", uploader: Annotated[str, Query(max_length=200)] = "",
               hub: Annotated[str, Query(max_length=40)] = "", age: Annotated[str, Query(max_length=6)] = "",
               sort: Annotated[str, Query(max_length=20)] = "score", offset: Offset = 0, p: Principal = VIEWER):
    params = {"state": state, "bank": bank, "tier": tier, "min_score": min_score, "uploader": uploader, "hub": hub,
              "age": age, "sort": sort}
    flt = QueueFilter(
        state=state or None, bank_id=_opt_int(bank, "bank", 1, 2**53), tier=_opt_int(tier, "tier", 1, 3),
        min_score=_opt_float(min_score, "min score"), uploader=uploader.strip() or None, hub=hub.strip() or None,
        max_age_days=_opt_int(age, "age", 0, 100_000), sort=sort or "score",
    )
    page = review.queue(db, flt, limit=QUEUE_PAGE, offset=offset)
    return render(request, "queue.html", page=page, params=params, banks=list_banks(db), states=STATES,
                  sorts=review.SORTS, here=str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""))


@router.post("/queue/decide")
async def queue_decide(request: Request, db: DB, p: Principal = REVIEWER):
    """Bulk (checked rows + a state button) or one row (its own button, value "ID:state")."""
    form = await request.form()
    back = safe_next(str(form.get("return_to") or ""), "/queue")
    note = str(form.get("note") or "")
    one = str(form.get("one") or "")
    if one:
        mid, _, state = one.partition(":")
        ids = form_ints([mid])
    else:
        state = str(form.get("state") or "")
        ids = form_ints(form.getlist("match_id"))
    from fastapi.concurrency import run_in_threadpool

    result = await run_in_threadpool(review.decide, db, ids, state, note, p.name)
    n = len(result.decided)
    label = state.replace("_", " ")
    return redirect(request, back, f"{n} match{'es' if n != 1 else ''} marked {label}.")


@router.get("/matches/{match_id}")
def match_page(request: Request, db: DB, match_id: IdPath, p: Principal = VIEWER):
    return render(request, "match.html", d=review.get_match(db, match_id))


@router.post("/matches/{match_id}/decide")
async def match_decide(request: Request, db: DB, match_id: IdPath, p: Principal = REVIEWER):
    form = await request.form()
    back = safe_next(str(form.get("return_to") or ""), f"/matches/{match_id}")
    state = str(form.get("state") or "")
    from fastapi.concurrency import run_in_threadpool

    await run_in_threadpool(review.decide, db, [match_id], state, str(form.get("note") or ""), p.name)
    return redirect(request, back, f"Match {match_id} marked {state.replace('_', ' ')}.")
