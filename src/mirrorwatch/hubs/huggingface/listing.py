"""Parsing Hugging Face listing items and metadata defensively (a hub answer is untrusted input)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, TypeGuard

from mirrorwatch.hubs.base import DEFAULT_REPO_TYPE, ListingProblem, RemoteFile, RepoListing, is_weight_file

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_REPO_ID = re.compile(r"^[\w.-]{1,96}/[\w.-]{1,96}$")
# Legacy ids from before namespaces (`gpt2`, `bert-base-uncased`): the Hub answers them with a 307
# to the namespaced id, so they are usable ids (the final id is recorded once the hub has answered).
_LEGACY_ID = re.compile(r"^[\w][\w.-]{0,95}$")
MAX_FILE_SIZE = 1 << 44  # 16 TiB: anything larger is a lie
MAX_SIBLINGS = 10_000  # files of one repo taken from one answer (more: the repo is recorded as a problem)
# A file list this long (or longer) in one answer is not trusted: the Hub may cut `siblings` short
# (at 100,000 files, and "well before 50k files when server-side caching issues happen":
# huggingface_hub PR #3565, which set its own LARGE_REPO_THRESHOLD to 1,000 for `snapshot_download`
# to fall back to `list_repo_tree`; issue #3059: a 270k-file dataset's siblings missed files). Such
# a repo's files are paged from its tree.
LARGE_REPO_THRESHOLD = 1000


def parse_date(value: Any) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed
    except (ValueError, OverflowError):
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


def repo_id_problem(rid: Any) -> str | None:
    """Why a repo id from a hub answer cannot be used (None: it can)."""
    if not is_repo_id(rid):
        return f"unusable repo id {str(rid)[:80]!r}"
    if ".." in rid:
        return f"unusable repo id {rid[:80]!r} (a '..')"
    return None


MAX_PATH_CHARS = 1000


def path_problem(path: Any) -> str | None:
    """Why a file name from a hub answer must not be used to build a URL or be stored (None: it is
    safe): not a string, empty, too long, absolute, a backslash, a NUL or another control character,
    or a '.'/'..' segment."""
    if not isinstance(path, str) or not path:
        return f"file name is not a non-empty string: {str(path)[:80]!r}"
    if len(path) > MAX_PATH_CHARS:
        return f"file name of {len(path):,} characters (more than {MAX_PATH_CHARS})"
    if path.startswith("/") or "\\" in path:
        return f"unsafe file name {path[:120]!r} (absolute, or a backslash)"
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in path):
        return f"unsafe file name {path[:120]!r} (a control character)"
    if any(seg in ("", ".", "..") for seg in path.split("/")):
        return f"unsafe file name {path[:120]!r} (an empty, '.' or '..' segment)"
    return None


def listing_from_item(item: Any, repo_type: str = DEFAULT_REPO_TYPE) -> RepoListing:
    """A listing item (of a `/api/{repo_type}s` listing) parsed defensively: raise MalformedListing
    when it cannot be used. A file list of LARGE_REPO_THRESHOLD files or more is not taken (it may be
    cut short): the repo's `paths` stay unknown and its files are paged from its tree."""
    if not isinstance(item, dict):
        raise MalformedListing("listing item is not an object")
    rid = item.get("id") or item.get("modelId")
    problem = repo_id_problem(rid)
    if problem:
        raise MalformedListing(f"listing item with an {problem}")
    siblings = item.get("siblings")
    paths: list[str] | None = None
    count = len(siblings) if isinstance(siblings, list) else None
    if isinstance(siblings, list) and len(siblings) >= LARGE_REPO_THRESHOLD:
        siblings = None  # (possibly cut short: unknown contents, a candidate whose tree is paged)
    if isinstance(siblings, list):
        paths = [s["rfilename"] for s in siblings if isinstance(s, dict) and isinstance(s.get("rfilename"), str)
                 and path_problem(s["rfilename"]) is None]
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
        repo_type=repo_type,
        files_count=count,
    )


def parse_page(page: list[Any], repo_type: str = DEFAULT_REPO_TYPE) -> list[RepoListing | ListingProblem]:
    """A raw listing page: each item a RepoListing, or a ListingProblem saying why it is unusable."""
    out: list[RepoListing | ListingProblem] = []
    for item in page:
        try:
            listing = listing_from_item(item, repo_type)
            out.append(listing)
        except MalformedListing as exc:
            rid = item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str) else None
            out.append(ListingProblem(rid, str(exc)))
            continue
        siblings = item.get("siblings")
        if isinstance(siblings, list) and listing.paths is not None:  # unsafe names were left out: say so
            for sib in siblings[:MAX_SIBLINGS]:
                name = sib.get("rfilename") if isinstance(sib, dict) else sib
                problem = path_problem(name) if isinstance(name, str) else None
                if problem:
                    out.append(ListingProblem(listing.repo_id, f"{problem}: left out"))
    return out


def files_from_siblings(siblings: Any, revision: Any) -> tuple[list[RemoteFile], list[tuple[str, str]]]:
    """The files of a model_info answer's siblings (objects or dicts with rfilename, size, lfs.sha256),
    each checked: (files, problems as (name, reason)). Raises MalformedListing when `siblings` is not
    a list or has more than MAX_SIBLINGS entries."""
    if not isinstance(siblings, list):
        raise MalformedListing("model_info without a list of files")
    if len(siblings) > MAX_SIBLINGS:
        raise MalformedListing(f"model_info with {len(siblings):,} files (more than {MAX_SIBLINGS:,})")
    rev = revision if isinstance(revision, str) and len(revision) <= 64 else None

    def get(obj: Any, key: str) -> Any:
        return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)

    files: list[RemoteFile] = []
    problems: list[tuple[str, str]] = []
    for sib in siblings:
        path = get(sib, "rfilename")
        if not isinstance(path, str):
            continue
        problem = path_problem(path)
        if problem:
            problems.append((path[:MAX_PATH_CHARS].replace("\x00", ""), f"{problem}: left out"))
            continue
        lfs = get(sib, "lfs")
        sha = clean_sha256(get(lfs, "sha256")) if lfs is not None else None
        files.append(RemoteFile(path=path, size=clean_size(get(sib, "size")), sha256=sha, lfs=lfs is not None,
                                revision=rev))
    return files, problems


def files_from_tree(entries: Any, revision: Any,
                    extensions: tuple[str, ...] | None) -> tuple[list[RemoteFile], list[tuple[str, str]]]:
    """The files of one page of a repo's tree (`{type: "file", path, size, oid, lfs?: {oid, size}}`;
    folders skipped), each checked; only weight files when `extensions` is given. The sha256 of an
    LFS file is its `lfs.oid` (the tree's own `oid` is the git blob id, never a sha256)."""
    if not isinstance(entries, list):
        raise MalformedListing("a tree page is not a list")
    rev = revision if isinstance(revision, str) and len(revision) <= 64 else None
    files: list[RemoteFile] = []
    problems: list[tuple[str, str]] = []
    for e in entries:
        if not isinstance(e, dict) or e.get("type") != "file":
            continue
        path = e.get("path")
        if not isinstance(path, str):
            continue
        if extensions is not None and not is_weight_file(path, extensions):
            continue
        problem = path_problem(path)
        if problem:
            problems.append((path[:MAX_PATH_CHARS].replace("\x00", ""), f"{problem}: left out"))
            continue
        lfs = e.get("lfs")
        sha = clean_sha256(lfs.get("oid") or lfs.get("sha256")) if isinstance(lfs, dict) else None
        files.append(RemoteFile(path=path, size=clean_size(e.get("size")), sha256=sha, lfs=isinstance(lfs, dict),
                                revision=rev))
    return files, problems
