"""The defensive parser of Civitai listing pages (`GET /api/v1/models`) and model items.

Field names as documented at developer.civitai.com (Site API reference, "Models" and "Model
versions"): a page is `{"items": [...], "metadata": {"nextCursor", "nextPage"}}`; a model has `id`,
`name`, `type`, `nsfw`, `mode` (null, "Archived" or "TakenDown"), `creator.username`, `tags`,
`modelVersions[]`; a version has `id`, `name`, `createdAt`, `publishedAt`, `status`, `files[]`; a
file has `id`, `name`, `sizeKB`, `type`, `primary` and `hashes` with the keys AutoV1, AutoV2,
AutoV3, SHA256, CRC32, BLAKE3 (upper-case hex). Image fields (`images[]`, `url`) are never read.

A repo is a model (`repo_id` = its numeric id); each file of each version is one file of it, at the
path `{versionId}/{file name}`. An unusable item becomes a `ListingProblem`; an unusable part of a
usable item (a wrong-length hash, a file without a name) is dropped and reported as a problem too,
and the rest of the item is kept."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mirrorwatch.errors import InvalidHash
from mirrorwatch.hashing.forms import civitai_forms, form_for_column, normalise_hash
from mirrorwatch.hubs.base import ListingPage, ListingProblem, RemoteFile, RepoListing

MAX_VERSIONS = 500  # versions read per model (more are reported and dropped)
MAX_FILES = 50  # files read per version
MAX_NAME = 255
MAX_CURSOR = 512
TAKEN_DOWN_MODES = {"archived": "archived on Civitai", "takendown": "taken down by Civitai"}


class MalformedPage(ValueError):
    """A listing page that is not the documented shape (the listing stops with this reason)."""


@dataclass
class CivitaiListing(RepoListing):
    """A model as the listing shows it, with every file's hashes (so fetching them costs nothing)."""

    files: list[RemoteFile] | None = None
    nsfw: bool = False
    mode: str | None = None


def _id(value: Any) -> int | None:
    """A Civitai id: a positive int (or ASCII digits), at most 16 digits; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value < 10**16 else None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 16 and int(value) > 0:
        return int(value)
    return None


def parse_date(value: Any) -> datetime | None:
    """ISO dates as Civitai writes them ("2025-12-18T09:16:12.062Z"), as naive UTC."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        d = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return d.astimezone(UTC).replace(tzinfo=None) if d.tzinfo else d


def size_bytes(size_kb: Any) -> int | None:
    """`sizeKB` (KiB, a float) as bytes; None when missing or not a sane number."""
    if isinstance(size_kb, bool) or not isinstance(size_kb, (int, float)):
        return None
    if not math.isfinite(size_kb) or size_kb < 0 or size_kb > 2**40:
        return None
    return int(round(size_kb * 1024))


def _text(value: Any, limit: int = 200) -> str | None:
    if not isinstance(value, str):
        return None
    value = "".join(ch for ch in value if ch.isprintable())[:limit].strip()
    return value or None


def parse_hashes(raw: Any) -> tuple[str | None, dict[str, str], list[str]]:
    """(sha256, other forms by form name, reasons for dropped values) from a file's `hashes`."""
    if raw is None:
        return None, {}, []
    if not isinstance(raw, dict):
        return None, {}, ["hashes is not an object"]
    keys = civitai_forms()  # "autov2" -> "autov2", "sha256" -> "sha256", ...
    sha: str | None = None
    forms: dict[str, str] = {}
    dropped: list[str] = []
    for key, value in list(raw.items())[:16]:
        form = keys.get(str(key).lower())
        if form is None or value is None:
            continue
        try:
            if not isinstance(value, str) or len(value) > 80:
                raise InvalidHash("not a hex string")
            normal = normalise_hash(value)
            name = form_for_column(form, normal)
        except InvalidHash as exc:
            dropped.append(f"{str(key)[:12]} dropped: {str(exc)[:80]}")
            continue
        if name == "sha256":
            sha = normal
        else:
            forms[name] = normal
    return sha, forms, dropped


def _file(model_id: int, version_id: int, raw: Any, nsfw: bool) -> tuple[RemoteFile | None, list[str]]:
    if not isinstance(raw, dict):
        return None, ["a file that is not an object"]
    name = _text(raw.get("name"), MAX_NAME)
    if name is None:
        return None, ["a file without a name"]
    if "/" in name or "\\" in name or name in (".", ".."):
        return None, [f"file name {name[:60]!r} refused (path separators)"]
    sha, forms, dropped = parse_hashes(raw.get("hashes"))
    problems = [f"{name[:60]}: {d}" for d in dropped]
    source: dict[str, Any] = {"civitai_model_id": model_id, "civitai_version_id": version_id, "nsfw": nsfw}
    if isinstance(raw.get("primary"), bool):
        source["primary"] = raw["primary"]
    file_id = _id(raw.get("id"))
    if file_id is not None:
        source["civitai_file_id"] = file_id
    return RemoteFile(path=f"{version_id}/{name}", size=size_bytes(raw.get("sizeKB")), sha256=sha, lfs=True,
                      revision=str(version_id), hashes=forms, source=source), problems


def _digest(model_id: int, mode: str | None, files: list[RemoteFile]) -> str:
    """What changes when anything we keep of a model changes (a new version, a file, a hash, its mode)."""
    rows = [[f.path, f.size, f.sha256, sorted(f.hashes.items())] for f in files]
    blob = json.dumps([model_id, mode, rows], sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:40]


def parse_model(item: Any) -> tuple[CivitaiListing | None, list[ListingProblem]]:
    """A listing item as a CivitaiListing (None when unusable) and the problems found in it."""
    if not isinstance(item, dict):
        return None, [ListingProblem(None, "a listing item that is not an object")]
    model_id = _id(item.get("id"))
    if model_id is None:
        return None, [ListingProblem(None, f"a listing item without a valid id ({str(item.get('id'))[:40]!r})")]
    rid = str(model_id)
    problems: list[ListingProblem] = []
    nsfw = item.get("nsfw") is True
    mode_raw = item.get("mode")
    mode = mode_raw if isinstance(mode_raw, str) and mode_raw.lower() in TAKEN_DOWN_MODES else None
    creator = item.get("creator")
    author = _text(creator.get("username"), 200) if isinstance(creator, dict) else None
    tags = [t[:100] for t in (item.get("tags") or [])[:100] if isinstance(t, str)] if isinstance(
        item.get("tags"), list) else []
    if nsfw:
        tags.append("nsfw")
    versions = item.get("modelVersions")
    if versions is None:
        versions = []
    if not isinstance(versions, list):
        return None, [ListingProblem(rid, "modelVersions is not a list")]
    if len(versions) > MAX_VERSIONS:
        problems.append(ListingProblem(rid, f"{len(versions)} versions: only the first {MAX_VERSIONS} read"))
        versions = versions[:MAX_VERSIONS]
    files: list[RemoteFile] = []
    dates: list[datetime] = []
    seen: set[str] = set()
    for v in versions:
        vid = _id(v.get("id")) if isinstance(v, dict) else None
        if vid is None:
            problems.append(ListingProblem(rid, "a version without a valid id"))
            continue
        when = parse_date(v.get("publishedAt")) or parse_date(v.get("createdAt"))
        if when is not None:
            dates.append(when)
        raw_files = v.get("files") or []
        if not isinstance(raw_files, list):
            problems.append(ListingProblem(rid, f"version {vid}: files is not a list"))
            continue
        if len(raw_files) > MAX_FILES:
            problems.append(ListingProblem(rid, f"version {vid}: {len(raw_files)} files, only {MAX_FILES} read"))
        for raw in raw_files[:MAX_FILES]:
            f, why = _file(model_id, vid, raw, nsfw)
            problems += [ListingProblem(rid, f"version {vid}: {w}") for w in why]
            if f is not None and f.path not in seen:
                seen.add(f.path)
                files.append(f)
    published = max(dates) if dates else None
    listing = CivitaiListing(
        repo_id=rid, author=author, sha=_digest(model_id, mode, files), created_at=published,
        last_modified=published, disabled=mode is not None, tags=tags, paths=[f.path for f in files],
        files=files, nsfw=nsfw, mode=mode,
    )
    return listing, problems


def parse_page(data: Any) -> tuple[ListingPage, str | None]:
    """A listing page's items (parsed) and its next cursor (None at the end). Raises MalformedPage."""
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise MalformedPage("a listing page without an items list")
    meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    cursor = meta.get("nextCursor")
    if isinstance(cursor, bool) or not isinstance(cursor, (str, int)) or cursor == "":
        cursor = None
    elif len(str(cursor)) > MAX_CURSOR or not str(cursor).isprintable():
        raise MalformedPage("the next cursor is too long or not printable")
    page: ListingPage = []
    for item in data["items"]:
        listing, problems = parse_model(item)
        page.extend(problems)
        if listing is not None:
            page.append(listing)
    return page, (str(cursor) if cursor is not None else None)
