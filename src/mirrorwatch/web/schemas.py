"""Request and response models of the JSON API (they make the OpenAPI schema).

Response models read the service layer's dataclasses directly (from_attributes), so the API is a
thin, typed view of the same read models the pages render. Times are UTC, written with a Z."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from mirrorwatch.match import states

MAX_ID = 2**53
T = TypeVar("T")


def _utc(d: datetime) -> str:
    return d.isoformat() + "Z" if d.tzinfo is None else d.isoformat()


Utc = Annotated[datetime, PlainSerializer(_utc, return_type=str, when_used="json")]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Role = Literal["viewer", "reviewer", "admin"]
# Generated from the one match vocabulary (mirrorwatch.match.states): the same values, in the same order.
DecisionState = Literal[states.DECIDABLE]  # type: ignore[valid-type]
MatchState = Literal[states.STATES]  # type: ignore[valid-type]


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ErrorOut(BaseModel):
    error: str


class PageOut(Out, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class HealthOut(BaseModel):
    status: str
    database: str


# --- lookup ---

class MirrorOut(Out):
    match_id: int
    hub: str
    repo_id: str
    path: str
    url: str | None
    author: str | None
    repo_status: str
    file_status: str
    tier: int
    score: float
    state: str
    first_seen: Utc
    last_seen: Utc


class LookupEntryOut(Out):
    id: int
    bank: str
    name: str
    url: str | None
    civitai_model_id: int | None
    civitai_version_id: int | None
    kind: str | None
    notes: str | None
    hashes: dict[str, list[str]]
    signals: dict[str, list[str]]
    mirrors: list[MirrorOut]
    why: str
    score: float


class LookupOut(Out):
    query: str
    kind: str
    detail: str
    results: list[LookupEntryOut]


# --- matches ---

class MatchOut(Out):
    id: int
    state: str
    tier: int
    tier_name: str
    score: float
    created_at: Utc
    updated_at: Utc
    entry_id: int
    entry_name: str
    entry_url: str | None
    bank_id: int
    bank: str
    hub: str
    repo_pk: int
    repo_id: str
    author: str | None
    repo_status: str
    file_id: int
    path: str
    file_status: str
    size: int | None
    sha256: str | None
    url: str | None
    first_seen: Utc
    last_seen: Utc
    evidence: list[Any]
    why: list[str]


class DecisionOut(Out):
    id: int
    match_id: int
    user: str
    state: str
    note: str | None
    at: Utc


class MatchDetailOut(Out):
    match: MatchOut
    decisions: list[DecisionOut]
    reports: list[int]
    allowed: list[str]


class DecisionIn(BaseModel):
    match_ids: list[Id] = Field(min_length=1, max_length=500)
    state: DecisionState
    note: str | None = Field(default=None, max_length=2000)


class DecideOut(Out):
    state: str
    decided: list[int]
    confirmed: list[int]


# --- entries, repos, uploaders ---

class SignalOut(Out):
    form: str
    value: str
    origin: str
    created_at: Utc


class EntryOut(Out):
    id: int
    bank_id: int
    bank: str
    name: str
    url: str | None
    civitai_model_id: int | None
    civitai_version_id: int | None
    kind: str | None
    notes: str | None
    imported_from: str | None
    row: int | None
    created_at: Utc
    updated_at: Utc
    hashes: dict[str, list[str]]
    signals: list[SignalOut]
    matches: list[MatchOut]


class RepoOut(Out):
    id: int
    hub: str
    repo_id: str
    author: str | None
    status: str
    gated: bool
    disabled: bool
    sha: str | None
    created_at: Utc | None
    last_modified: Utc | None
    first_seen: Utc
    last_seen: Utc
    error: str | None
    url: str | None
    matches: int


class FileOut(Out):
    id: int
    path: str
    size: int | None
    sha256: str | None
    status: str
    first_seen: Utc
    last_seen: Utc
    matches: int


class StatusEventOut(Out):
    id: int
    at: Utc
    status: str
    detail: str | None
    path: str | None


class RepoPageOut(Out):
    repo: RepoOut
    files: list[FileOut]
    files_total: int
    matches: list[MatchOut]
    events: list[StatusEventOut]


class UploaderOut(Out):
    hub: str
    author: str
    matches: int
    repos: int
    entries: int
    first_seen: Utc | None
    last_seen: Utc | None
    by_state: dict[str, int]


class UploaderPageOut(Out):
    summary: UploaderOut
    repos: list[RepoOut]
    matches: PageOut[MatchOut]


# --- banks ---

class BankOut(Out):
    id: int
    name: str
    description: str | None
    source: str | None
    created_at: Utc
    entries: int
    found: int


class BankIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    source: str | None = Field(default=None, max_length=2000)


class CoverageOut(Out):
    entries: int
    found: int
    share: float
    matches: int
    by_state: dict[str, int]
    by_hub: dict[str, int]
    repos: int
    uploaders: int
    first_found: Utc | None
    last_found: Utc | None


class ImportRunOut(Out):
    id: int
    filename: str
    fmt: str
    user: str | None
    at: Utc
    counts: dict[str, Any]
    rejected: list[Any]


class EntryRowOut(Out):
    id: int
    name: str
    url: str | None
    civitai_model_id: int | None
    civitai_version_id: int | None
    kind: str | None
    matches: int
    live: int


class BankPageOut(Out):
    id: int
    name: str
    description: str | None
    source: str | None
    created_at: Utc
    coverage: CoverageOut
    imports: list[ImportRunOut]


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


class ReportItemOut(Out):
    match: MatchOut
    last_status: str | None
    last_status_at: Utc | None


class ReportOut(Out):
    id: int
    hub: str
    hub_name: str
    title: str
    created_by: str
    created_at: Utc
    state: str
    sent_at: Utc | None
    note: str | None
    items: list[ReportItemOut]
    outcome: dict[str, int]


class ReportSummaryOut(Out):
    id: int
    hub: str
    title: str
    state: str
    created_by: str
    created_at: Utc
    sent_at: Utc | None
    items: int
    outcome: dict[str, int]


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


# --- scans and dashboard ---

class ScanRunOut(Out):
    id: int
    source: str
    status: str
    stalled: bool
    params: dict[str, Any]
    counts: dict[str, Any]
    quota: dict[str, Any]
    started_at: Utc
    finished_at: Utc | None
    heartbeat_at: Utc | None
    errors: int


class ScanErrorOut(Out):
    id: int
    repo_id: str | None
    path: str | None
    reason: str
    at: Utc


class ScanRunPageOut(Out):
    run: ScanRunOut
    errors: PageOut[ScanErrorOut]


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
