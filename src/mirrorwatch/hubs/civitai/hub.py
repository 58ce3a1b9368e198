"""`CivitaiHub`: the hub port over Civitai's public REST API, honouring CIVITAI_ENDPOINT and
CIVITAI_API_KEY (environment only).

Listing: `GET /api/v1/models?limit=100&sort=Newest&period=AllTime&nsfw=true` page by page with
`cursor=metadata.nextCursor` (never the `nextPage` URL: the next request is built on this hub's
own origin). `nsfw=true` is always asked (Civitai hides mature models otherwise); the flag is
kept as metadata (a "nsfw" tag, and with each file). No image is ever fetched: the listing's image
URLs are not even read. Every file of every version carries its hashes in the listing, so hashes
cost no request (`fetch_files` answers from the listing). Newest first by the models' latest
publish date, so a sweep with `--since` stops the listing once past it.

Models marked `mode` "Archived" or "TakenDown" are recorded as disabled; a model that answers 404
(deleted or hidden) is recorded as removed by a recheck. File bytes are never read (`reads_bytes`
is False): Civitai's listing already carries every hash form, including the header-independent
AutoV3."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from mirrorwatch.errors import MalformedFile
from mirrorwatch.hubs.base import (
    DISABLED,
    LIVE,
    REMOVED,
    WEIGHT_EXTENSIONS,
    Hub,
    HubLinks,
    ListingPage,
    RepoFiles,
    RepoListing,
    RepoStatus,
    Scope,
    SkipRepo,
)
from mirrorwatch.hubs.civitai import NAME
from mirrorwatch.hubs.civitai.client import RULES, AnswerTooLarge, CivitaiClient, CivitaiHTTPError
from mirrorwatch.hubs.civitai.links import CivitaiLinks
from mirrorwatch.hubs.civitai.listing import (
    TAKEN_DOWN_MODES,
    CivitaiListing,
    MalformedPage,
    parse_model,
    parse_page,
)
from mirrorwatch.hubs.quota import QuotaTracker
from mirrorwatch.hubs.retry import RetriesExhausted, RetryPolicy

if TYPE_CHECKING:
    from mirrorwatch.formats.safetensors import SafetensorsHeader

DEFAULT_ENDPOINT = "https://civitai.com"
ENV_ENDPOINT = "CIVITAI_ENDPOINT"
ENV_API_KEY = "CIVITAI_API_KEY"
ENV_PACE = "MIRRORWATCH_CIVITAI_PACE_S"
PAGE_SIZE = 100  # the API's maximum for /models
NO_BYTES = "Civitai files are matched by the hashes in its listing; their bytes are never read"


def _pace_from_env() -> float:
    raw = os.environ.get(ENV_PACE, "")
    try:
        value = float(raw) if raw else 1.0
    except ValueError:
        value = 1.0
    return min(max(value, 0.0), 60.0)


class CivitaiHub(Hub):
    """The hub port over Civitai's REST API."""

    name: ClassVar[str] = NAME
    label: ClassVar[str] = "Civitai"
    links: ClassVar[HubLinks] = CivitaiLinks()
    reads_bytes: ClassVar[bool] = False

    def __init__(self, endpoint: str | None = None, *, tracker: QuotaTracker | None = None,
                 retry: RetryPolicy | None = None, extensions: tuple[str, ...] = WEIGHT_EXTENSIONS,
                 interval_s: float | None = None, max_bytes: int | None = None) -> None:
        self.endpoint = (endpoint or os.environ.get(ENV_ENDPOINT) or DEFAULT_ENDPOINT).rstrip("/")
        self.tracker = tracker or QuotaTracker()
        self.retry = retry or RetryPolicy(attempts=6, base_s=1.0, cap_s=30.0)
        self.extensions = extensions
        kw: dict[str, Any] = {} if max_bytes is None else {"max_bytes": max_bytes}
        self.client = CivitaiClient(self.endpoint, api_key=os.environ.get(ENV_API_KEY) or None,
                                    tracker=self.tracker, retry=self.retry,
                                    interval_s=_pace_from_env() if interval_s is None else interval_s, **kw)

    # -- listing ---------------------------------------------------------------------------------
    def _params(self, scope: Scope) -> list[tuple[str, str]]:
        params = [("limit", str(PAGE_SIZE)), ("sort", "Newest"), ("period", "AllTime"), ("nsfw", "true")]
        if scope.get("author"):
            params.append(("username", str(scope["author"])))
        if scope.get("search"):
            params.append(("query", str(scope["search"])))
        for tag in (scope.get("filter") or [])[:1]:  # the API takes one tag
            params.append(("tag", tag))
        return params

    def list_pages(self, scope: Scope) -> Iterator[ListingPage]:
        """Pages of parsed models, newest first; a cursor seen before stops the listing (a loop)."""
        base = self._params(scope)
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            params = base + ([("cursor", cursor)] if cursor else [])
            try:
                data = self.client.get_json("/api/v1/models", params)
                page, cursor = parse_page(data)
            except (RetriesExhausted, CivitaiHTTPError, AnswerTooLarge, MalformedPage, ValueError) as exc:
                raise SkipRepo(f"listing stopped: {exc}") from None
            yield page
            if cursor is None:
                return
            if cursor in seen:
                raise SkipRepo("the listing's cursor repeats (a cursor loop): listing stopped")
            seen.add(cursor)

    def _model(self, repo_id: str) -> dict[str, Any]:
        if not (repo_id.isascii() and repo_id.isdigit() and len(repo_id) <= 16):
            raise CivitaiHTTPError(404, f"/api/v1/models/{repo_id[:20]}")
        data = self.client.get_json(f"/api/v1/models/{repo_id}")
        if not isinstance(data, dict):
            raise ValueError("a model answer that is not an object")
        return data

    def repo_listing(self, repo_id: str, repo_type: str | None = None) -> RepoListing:
        """One model as the listing would show it (for `--repo`). Raises on a missing model."""
        listing, problems = parse_model(self._model(repo_id))
        if listing is None:
            raise ValueError(problems[0].reason if problems else "unusable model answer")
        return listing

    # -- hashes ----------------------------------------------------------------------------------
    def fetch_files(self, repo: RepoListing, paths: list[str] | None) -> RepoFiles:
        """Every file of every version with its hashes: from the listing itself (no request), or
        one `GET /api/v1/models/{id}` for a listing that did not carry them."""
        requests = 0
        if not isinstance(repo, CivitaiListing) or repo.files is None:
            try:
                fresh = self.repo_listing(repo.repo_id)
            except RetriesExhausted as exc:
                raise SkipRepo(str(exc)) from None
            except CivitaiHTTPError as exc:
                raise SkipRepo(f"model {repo.repo_id}: {RULES.describe(exc)}") from None
            except (AnswerTooLarge, ValueError, TypeError) as exc:
                raise SkipRepo(f"malformed answer: {str(exc)[:160]}") from None
            requests = 1
            assert isinstance(fresh, CivitaiListing)
            repo.sha = fresh.sha
            repo = fresh
        files = list(repo.files or [])
        if paths is not None:
            wanted = set(paths)
            files = [f for f in files if f.path in wanted]
        return RepoFiles(repo=repo, files=files, method="listing" if requests == 0 else "api", requests=requests)

    # -- bounded reads: none -----------------------------------------------------------------------
    def read_header(self, repo_id: str, path: str, revision: str | None,
                    size: int | None, *, repo_type: str | None = None) -> tuple[SafetensorsHeader, int]:
        raise SkipRepo(NO_BYTES)

    def fetch_to(self, repo_id: str, path: str, revision: str | None, dest: Path, *, max_bytes: int,
                 repo_type: str | None = None) -> Path:
        raise MalformedFile(NO_BYTES)

    # -- status ----------------------------------------------------------------------------------
    def repo_status(self, repo_id: str, *, repo_type: str | None = None) -> RepoStatus:
        try:
            data = self._model(repo_id)
        except CivitaiHTTPError as exc:
            if exc.status == 404:
                return RepoStatus(REMOVED, "model not found (deleted, or hidden from the public)")
            raise
        listing, problems = parse_model(data)
        if listing is None:
            raise ValueError(problems[0].reason if problems else "unusable model answer")
        if listing.mode is not None:
            return RepoStatus(DISABLED, TAKEN_DOWN_MODES[listing.mode.lower()], sha=listing.sha,
                              files=listing.files)
        return RepoStatus(LIVE, "", sha=listing.sha, files=listing.files)

    # -- quota ---------------------------------------------------------------------------------
    def quota(self) -> dict[str, dict[str, Any]]:
        return self.tracker.snapshot()
