"""Parsing Hugging Face listing items and metadata defensively (a hub answer is untrusted input)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, TypeGuard

from mirrorwatch.hubs.base import ListingProblem, RepoListing

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_REPO_ID = re.compile(r"^[\w.-]{1,96}/[\w.-]{1,96}$")
# Legacy ids from before namespaces (`gpt2`, `bert-base-uncased`): the Hub answers them with a 307
# to the namespaced id, so they are usable ids (the final id is recorded once the hub has answered).
_LEGACY_ID = re.compile(r"^[\w][\w.-]{0,95}$")
MAX_FILE_SIZE = 1 << 44  # 16 TiB: anything larger is a lie


def parse_date(value: Any) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC).replace(tzinfo=None)
    except ValueError:
        return None


def clean_sha256(value: Any) -> str | None:
    if isinstance(value, str):
        v = value.strip().strip('"').lower()
        if _SHA256.match(v):
            return v
    return None


def clean_size(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= MAX_FILE_SIZE else None


class MalformedListing(Exception):
    pass


def is_repo_id(value: Any) -> TypeGuard[str]:
    """A namespaced id (`ns/name`) or a legacy one without a namespace (`gpt2`); never `.`/`..` parts."""
    if not isinstance(value, str) or not (_REPO_ID.fullmatch(value) or _LEGACY_ID.fullmatch(value)):
        return False
    return all(part not in (".", "..") for part in value.split("/"))


def is_legacy_id(repo_id: str) -> bool:
    """An id without a namespace, which the Hub redirects (307) to its namespaced id."""
    return "/" not in repo_id


def namespace(repo_id: str) -> str | None:
    return repo_id.split("/", 1)[0] if "/" in repo_id else None


def listing_from_item(item: Any) -> RepoListing:
    """A listing item parsed defensively: raise MalformedListing when it cannot be used."""
    if not isinstance(item, dict):
        raise MalformedListing("listing item is not an object")
    rid = item.get("id") or item.get("modelId")
    if not is_repo_id(rid):
        raise MalformedListing(f"listing item with an unusable id: {str(rid)[:80]!r}")
    siblings = item.get("siblings")
    paths: list[str] | None = None
    if isinstance(siblings, list):
        paths = [s["rfilename"] for s in siblings if isinstance(s, dict) and isinstance(s.get("rfilename"), str)]
    gated = item.get("gated")
    tags = item.get("tags") if isinstance(item.get("tags"), list) else []
    sha = item.get("sha") if isinstance(item.get("sha"), str) else None
    return RepoListing(
        repo_id=rid,
        author=item.get("author") if isinstance(item.get("author"), str) else namespace(rid),
        sha=sha,
        created_at=parse_date(item.get("createdAt")),
        last_modified=parse_date(item.get("lastModified")),
        gated=bool(gated) and gated is not False,
        disabled=item.get("disabled") is True,
        private=item.get("private") is True,
        tags=[t for t in tags if isinstance(t, str)],
        paths=paths,
    )


def parse_page(page: list[Any]) -> list[RepoListing | ListingProblem]:
    """A raw listing page: each item a RepoListing, or a ListingProblem saying why it is unusable."""
    out: list[RepoListing | ListingProblem] = []
    for item in page:
        try:
            out.append(listing_from_item(item))
        except MalformedListing as exc:
            rid = item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str) else None
            out.append(ListingProblem(rid, str(exc)))
    return out
