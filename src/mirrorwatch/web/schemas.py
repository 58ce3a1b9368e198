"""Request models of the JSON API, and the response models of what has no read model of its own.

Matches, decisions, entries, repos, uploaders, banks and reports are answered with the service
layer's read models themselves (:func:`mirrorwatch.services.serial.read_model` dataclasses): the
routes name them as response models and FastAPI builds their OpenAPI schema from them, so nothing
here mirrors them. The models below cover requests, errors, import summaries, accounts
and the dashboard; they read the services' objects (from_attributes). Times are UTC, written
with a Z."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mirrorwatch.match import states
from mirrorwatch.services.paging import Page
from mirrorwatch.services.serial import Utc

MAX_ID = 2**53


Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Role = Literal["viewer", "reviewer", "admin"]
# Generated from the one match vocabulary (mirrorwatch.match.states): the same values, in the same order.
DecisionState = Literal[states.DECIDABLE]  # type: ignore[valid-type]
MatchState = Literal[states.STATES]  # type: ignore[valid-type]


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


PageOut = Page  # one page type for every list (the read models' and the models' below)


class ErrorOut(BaseModel):
    error: str


class HealthJobOut(BaseModel):
    name: str
    last_success_at: str | None
    next_run_at: str | None
    consecutive_failures: int
    failing: bool


class HealthWatchOut(BaseModel):
    """`mirrorwatch watch`: the watcher (running, stale, stopped) and its jobs (names and times only)."""

    status: str  # ok, or degraded when a job is failing or the watcher is stale
    watcher: str
    heartbeat_at: str | None
    failing: list[str]
    jobs: list[HealthJobOut]


class HealthOut(BaseModel):
    status: str  # ok, or degraded (the database answers, but a watch job is failing or the watcher is stale)
    database: str
    watch: HealthWatchOut | None = None  # present once a watcher has run on this database


# --- matches ---


class DecisionIn(BaseModel):
    match_ids: list[Id] = Field(min_length=1, max_length=500)
    state: DecisionState
    note: str | None = Field(default=None, max_length=2000)


# --- entries, repos, uploaders ---


# --- banks ---


class BankIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    source: str | None = Field(default=None, max_length=2000)


class RejectedRowOut(BaseModel):
    row: int
    reason: str


class ImportSummaryOut(BaseModel):
    bank: str
    file: str
    format: str
    rows: int
    added: int
    updated: int
    duplicates: int
    rejected: int
    committed: bool
    columns: dict[str, str]
    import_id: int | None
    rejected_rows: list[RejectedRowOut]


# --- reports ---

class ReportIn(BaseModel):
    match_ids: list[Id] = Field(min_length=1, max_length=500)
    title: str | None = Field(default=None, max_length=300)


class NoteIn(BaseModel):
    note: str | None = Field(default=None, max_length=2000)


# --- accounts ---

class UserOut(Out):
    id: int
    name: str
    role: str
    disabled: bool
    has_password: bool
    created_at: Utc


class UserIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    role: Role = "viewer"
    password: str | None = Field(default=None, min_length=8, max_length=1024)


class UserPatch(BaseModel):
    role: Role | None = None
    disabled: bool | None = None
    password: str | None = Field(default=None, min_length=8, max_length=1024)


class TokenOut(Out):
    id: int
    user_id: int
    user: str
    name: str
    prefix: str
    created_at: Utc
    last_used_at: Utc | None
    revoked_at: Utc | None


class TokenIn(BaseModel):
    name: str = Field(default="", max_length=100)
    user: str | None = Field(default=None, max_length=100, description="admins only: create for this user")


class TokenCreatedOut(BaseModel):
    token: TokenOut
    secret: str = Field(description="the token itself; shown only once")


class MeOut(BaseModel):
    user: UserOut
    via: str
    csrf_token: str | None


class AuditOut(Out):
    id: int
    at: Utc
    user: str
    action: str
    object_type: str | None
    object_id: str | None
    detail: dict[str, Any]


# --- dashboard ---

class DayCountOut(Out):
    day: date
    total: int
    confirmed: int


class BarOut(Out):
    label: str
    value: int
    link: str | None


class DashboardOut(Out):
    totals: dict[str, int]
    over_time: list[DayCountOut]
    by_bank: list[BarOut]
    by_uploader: list[BarOut]
    by_state: list[BarOut]
    by_tier: list[BarOut]
    since: date | None
