"""JSON API: notification channels per bank, "send test", and the delivery log (admins only: channels
carry webhook URLs and mailboxes, and a webhook's secret is shown once, when it is created)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from mirrorwatch.services import notify
from mirrorwatch.services.notify import ChannelCreated, ChannelView, DeliveryView
from mirrorwatch.services.paging import Page
from mirrorwatch.web.auth import ADMIN, Principal
from mirrorwatch.web.routes.common import DB, IdPath, Limit, Offset, OptId, error_responses

ERRORS = error_responses(400, 401, 403, 404, 409)
router = APIRouter(prefix="/api/notify", tags=["notifications"], responses=ERRORS)


class ChannelIn(BaseModel):
    bank: int | str = Field(description="bank id or name")
    target: str = Field(max_length=2000, description="a webhook URL (http/https) or an email address")
    kinds: list[str] | None = Field(default=None, max_length=10,
                                    description="event kinds (default: all): " + ", ".join(notify.EVENT_KINDS))
    digest: str | int | None = Field(default=None, description="one message per interval (e.g. 900, \"15m\", "
                                                               "\"1h\"); none: one message per event")
    include_names: bool = Field(default=False, description="put entry names (usually real people's) in messages")


class ChannelPatch(BaseModel):
    active: bool | None = None
    kinds: list[str] | None = Field(default=None, max_length=10)
    digest: str | int | None = Field(default=None, description="\"0\" or \"immediate\" turns the digest off")
    include_names: bool | None = None


@router.get("/channels", response_model=list[ChannelView], dependencies=[ADMIN],
            summary="Notification channels (admin; secrets are never listed)")
def api_channels(db: DB, bank: OptId = None):
    return notify.list_channels(db, bank=bank)


@router.post("/channels", response_model=ChannelCreated, status_code=201,
             summary="Add a webhook or mailbox to a bank (admin; a webhook's secret is only in this answer)")
def api_add_channel(db: DB, body: ChannelIn, p: Principal = ADMIN):
    return notify.add_channel(db, body.bank, body.target, kinds=body.kinds, digest=body.digest,
                              include_names=body.include_names, user=p.name)


@router.get("/channels/{channel_id}", response_model=ChannelView, dependencies=[ADMIN], summary="One channel (admin)")
def api_channel(db: DB, channel_id: IdPath):
    return notify.get_channel(db, channel_id)


@router.patch("/channels/{channel_id}", response_model=ChannelView,
              summary="Change a channel's kinds, digest, include_names or active flag (admin)")
def api_patch_channel(db: DB, channel_id: IdPath, body: ChannelPatch, p: Principal = ADMIN):
    fields = body.model_fields_set
    return notify.update_channel(db, channel_id, active=body.active, kinds=body.kinds,
                                 digest=body.digest if "digest" in fields else notify.KEEP,
                                 include_names=body.include_names, user=p.name)


@router.delete("/channels/{channel_id}", response_model=ChannelView, summary="Remove a channel (admin)")
def api_remove_channel(db: DB, channel_id: IdPath, p: Principal = ADMIN):
    return notify.remove_channel(db, channel_id, user=p.name)


@router.post("/channels/{channel_id}/test", response_model=DeliveryView,
             summary="Deliver a test event to a channel now; the answer is the delivery (delivered or failed)")
def api_test_channel(db: DB, channel_id: IdPath, p: Principal = ADMIN):
    return notify.send_test(db, channel_id, user=p.name)


@router.get("/deliveries", response_model=Page[DeliveryView], dependencies=[ADMIN],
            summary="The delivery log, newest first (admin)")
def api_deliveries(db: DB, bank: OptId = None, channel: OptId = None,
                   status: Annotated[str | None, Query(max_length=20)] = None, limit: Limit = 50,
                   offset: Offset = 0):
    return notify.list_deliveries(db, bank=bank, channel_id=channel, status=status, limit=limit, offset=offset)


@router.get("/deliveries/{delivery_id}", response_model=DeliveryView, dependencies=[ADMIN],
            summary="One delivery (admin)")
def api_delivery(db: DB, delivery_id: IdPath):
    return notify.get_delivery(db, delivery_id)
