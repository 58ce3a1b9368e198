"""A local HTTP server speaking the Hugging Face Hub API subset of hub-api.md, for the real client.

`serve(hub)` starts it on 127.0.0.1 in a background thread and returns a `RunningHub` whose `.url`
is what tests pass as `HfApi(endpoint=...)`/`HF_ENDPOINT`. LFS resolves answer 302 to `.cdn_url`
(`http://localhost:PORT`), a second origin served by the same socket, as the real Hub redirects to
its CDN: the client then keeps `X-Linked-Etag`/`X-Linked-Size` from the 302 on a HEAD and follows
the redirect (without Authorization) on a GET.

Like the Hub, old ids (legacy ids without a namespace, renamed repos: `Hub.add_alias`, `Hub.rename`)
answer 307 with a relative `Location` to the current id, on the API and on resolvers. Xet-backed files
(`RepoFile(xet=True)`) resolve with `X-Linked-Etag` (sha256) beside `X-Xet-Hash` and a
`Link rel="xet-auth"` to a read-token route the test hub refuses (501, counted as `xet_token`), and
redirect a GET to an LFS-compatible bridge route (`/xet-bridge/`) whose `ETag` is the Xet hash.

Why the standard library: ThreadingHTTPServer gives HTTP/1.1 keep-alive, one thread per connection
and no extra dependency; responses are written in one piece (headers + small body) with TCP_NODELAY
so keep-alive clients are not slowed by Nagle/delayed-ACK stalls.

Request pipeline: route -> count (hub.stats) -> latency fault -> rate limit (429) -> injected 5xx
-> handler -> JSON faults -> write (slowloris fault trickles the body).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import contextlib
import email.utils
import functools
import hashlib
import json
import logging
import socket
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, parse_qsl, quote, unquote, urlencode, urlsplit

from . import serialize as S
from .faults import (
    Faults,
    corrupt_model_info,
    corrupt_resolve_headers,
    corrupt_tree_entries,
    huge_array,
    truncate_json,
)
from .model import Commit, Hub, HubStats, Repo, RepoFile, repo_key
from .ratelimit import Quotas, RateLimiter

if TYPE_CHECKING:
    from huggingface_hub import HfApi

log = logging.getLogger("mirrorwatch.testhub")

CDN_PREFIX = "/cdn-lfs/"
XET_PREFIX = "/xet-bridge/"  # the LFS-compatible route a Xet-backed file's resolver redirects a GET to
DISABLED_MESSAGE = "Access to this resource is disabled."
_SMALL_BODY = 256 * 1024
_CHUNK = 256 * 1024
_FILLER_BLOCK = 64 * 1024

SORTS: dict[str, Callable[[Repo], float]] = {
    "createdAt": lambda r: r.created_at.timestamp(),
    "lastModified": lambda r: (r.last_modified or r.created_at).timestamp(),
    "downloads": lambda r: float(r.downloads),
    "likes": lambda r: float(r.likes),
    "trendingScore": lambda r: float(r.trending_score),
}
SORT_ALIASES = {"created_at": "createdAt", "last_modified": "lastModified", "trending_score": "trendingScore",
                "trending": "trendingScore"}
REPO_ENDPOINTS = frozenset({"model_info", "tree", "paths_info", "commits"})


class ApiError(Exception):
    """An error answer: status, X-Error-Code, X-Error-Message (and the same message as JSON body)."""

    def __init__(self, status: int, code: str, message: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = list(headers)

    def response(self) -> Response:
        safe = self.message.encode("ascii", "replace").decode("ascii")
        body = json.dumps({"error": self.message}).encode()
        headers = [("Content-Type", "application/json; charset=utf-8"), ("X-Error-Code", self.code),
                   ("X-Error-Message", safe), *self.headers]
        return Response(self.status, headers, body)


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    # A file body too big to build in memory: produced by `stream(start, end_inclusive)`.
    stream: Callable[[int, int], Iterator[bytes]] | None = None
    stream_range: tuple[int, int] = (0, -1)
    is_json: bool = False
    is_file: bool = False
    no_length: bool = False  # send no Content-Length: the body ends when the connection closes

    @property
    def length(self) -> int:
        if self.stream is not None:
            a, b = self.stream_range
            return max(0, b - a + 1)
        return len(self.body)


def json_response(data: Any, status: int = 200, headers: Iterable[tuple[str, str]] = ()) -> Response:
    body = json.dumps(data, separators=(",", ":")).encode()
    return Response(status, [("Content-Type", "application/json; charset=utf-8"), *headers], body, is_json=True)


@dataclass
class _Route:
    kind: str  # "api" | "resolvers" | "cdn" | "other"
    endpoint: str
    repo_id: str | None
    handler: Callable[[_Ctx], Response]
    args: dict[str, str] = field(default_factory=dict)
    methods: tuple[str, ...] = ("GET", "HEAD")


@dataclass
class _Ctx:
    running: RunningHub
    method: str
    raw_path: str
    raw_query: str
    query: dict[str, list[str]]
    headers: Any
    body: bytes
    route: _Route

    @property
    def authenticated(self) -> bool:
        return bool(self.headers.get("Authorization"))

    def q(self, name: str) -> str | None:
        v = self.query.get(name)
        return v[-1] if v else None

    def qbool(self, name: str) -> bool:
        return (self.q(name) or "").lower() in ("true", "1", "yes")


# ---------------------------------------------------------------------------------------------
# Filler bytes: deterministic, cheap at any offset (a 64 KiB block repeated).

@functools.lru_cache(maxsize=64)
def _filler_block(seed: str) -> bytes:
    return hashlib.shake_256(b"mirrorwatch-testhub-filler:" + seed.encode()).digest(_FILLER_BLOCK)


def filler_bytes(f: RepoFile, start: int, end: int) -> bytes:
    """Filler bytes [start, end] (inclusive) of a declared-only file."""
    block = _filler_block(f.sha256 or f.path)
    out = bytearray()
    pos = start
    while pos <= end:
        off = pos % _FILLER_BLOCK
        take = min(_FILLER_BLOCK - off, end - pos + 1)
        out += block[off:off + take]
        pos += take
    return bytes(out)


def _file_stream(f: RepoFile) -> Callable[[int, int], Iterator[bytes]]:
    def gen(start: int, end: int) -> Iterator[bytes]:
        pos = start
        while pos <= end:
            stop = min(end, pos + _CHUNK - 1)
            if f.content is not None:
                yield f.content[pos:stop + 1]
            else:
                yield filler_bytes(f, pos, stop)
            pos = stop + 1
    return gen


def parse_range(value: str, size: int) -> tuple[int, int]:
    """(start, end inclusive) of a single `bytes=` range; ApiError 416 if unsatisfiable or unsupported
    (multi-range requests are refused rather than answered with a whole multi-gigabyte file)."""
    bad = ApiError(416, "RangeNotSatisfiable", f"Range {value!r} not satisfiable for {size} bytes",
                   [("Content-Range", f"bytes */{size}")])
    v = value.strip()
    if not v.lower().startswith("bytes=") or "," in v:
        raise bad
    spec = v[6:].strip()
    first, sep, last = spec.partition("-")
    if not sep:
        raise bad
    try:
        if first == "":
            n = int(last)
            if n <= 0 or size == 0:
                raise bad
            return max(0, size - n), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        raise bad from None
    if start < 0 or start >= size or end < start:
        raise bad
    return start, min(end, size - 1)


def _encode_cursor(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_cursor(value: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (binascii.Error, ValueError) as e:
        raise ApiError(400, "BadRequest", "Invalid cursor") from e


# ---------------------------------------------------------------------------------------------
# Handlers

def _repo_or_error(ctx: _Ctx, repo_id: str, *, files: bool) -> Repo:
    """The repo if this (anonymous or token-bearing) caller may see it; the Hub's errors otherwise."""
    repo = ctx.running.hub.find(repo_id)
    if repo is None or repo.private:
        status = 404 if ctx.authenticated else 401
        raise ApiError(status, "RepoNotFound", "Repository not found")
    if repo.disabled:
        if ctx.running.disabled_anonymous_as_missing and not ctx.authenticated:
            raise ApiError(401, "RepoNotFound", "Repository not found")
        raise ApiError(403, "DisabledRepo", DISABLED_MESSAGE)
    if files and repo.gated:
        status = 403 if ctx.authenticated else 401
        raise ApiError(status, "GatedRepo",
                       f"Access to model {repo_id} is restricted. You must have access to it and be authenticated "
                       "to access it. Please log in.")
    return repo


def _commit_or_error(repo: Repo, revision: str) -> Commit:
    commit = repo.resolve_revision(revision)
    if commit is None:
        raise ApiError(404, "RevisionNotFound", f"Invalid rev id: {revision}")
    return commit


def _seq(ctx: _Ctx, repo_id: str) -> int:
    try:
        return ctx.running.hub.seq(repo_id)
    except KeyError:
        raise ApiError(404, "RepoNotFound", "Repository not found") from None


def _route_type(ctx: _Ctx) -> str:
    return ctx.route.args.get("type") or "model"


def _expand_values(ctx: _Ctx) -> list[str]:
    values = [*ctx.query.get("expand", []), *ctx.query.get("expand[]", [])]
    out: list[str] = []
    rtype = _route_type(ctx)
    for v in values:
        if v not in S.expandable(rtype):
            raise ApiError(400, "BadRequest", f'"expand" must be one of the {rtype} properties, got {v!r}')
        if v not in out:
            out.append(v)
    return out


def _next_link(ctx: _Ctx, cursor: str | None) -> tuple[str, str]:
    pairs = [(k, v) for k, v in parse_qsl(ctx.raw_query, keep_blank_values=True) if k != "cursor"]
    if cursor is not None:
        pairs.append(("cursor", cursor))
    url = ctx.running.url + ctx.raw_path + ("?" + urlencode(pairs) if pairs else "")
    return ("Link", f'<{url}>; rel="next"')


def handle_list_models(ctx: _Ctx) -> Response:
    running = ctx.running
    expand = _expand_values(ctx)
    full = ctx.qbool("full")
    if expand and (full or ctx.qbool("cardData") or ctx.qbool("config")):
        raise ApiError(400, "BadRequest", '"expand" cannot be combined with "full", "cardData" or "config"')
    sort = ctx.q("sort")
    if sort is not None:
        sort = SORT_ALIASES.get(sort, sort)
        if sort not in SORTS:
            raise ApiError(400, "BadRequest", f'"sort" must be one of {sorted(SORTS)}, got {sort!r}')
    page_size = running.page_size
    limit_raw = ctx.q("limit")
    if limit_raw is not None:
        try:
            limit = int(limit_raw)
        except ValueError:
            raise ApiError(400, "BadRequest", '"limit" must be an integer') from None
        if limit <= 0:
            raise ApiError(400, "BadRequest", '"limit" must be positive')
        page_size = min(limit, page_size)

    search = (ctx.q("search") or "").lower()
    author = (ctx.q("author") or "").lower()
    filters = [*ctx.query.get("filter", [])]
    pipeline_tag = ctx.q("pipeline_tag")
    gated_q = ctx.q("gated")
    gated_want = None if gated_q is None else gated_q.lower() in ("true", "1")

    rtype = _route_type(ctx)

    def matches(repo: Repo) -> bool:
        if repo.private or repo.repo_type != rtype:
            return False
        if search and search not in repo.repo_id.lower():
            return False
        if author and repo.author.lower() != author:
            return False
        if pipeline_tag and repo.pipeline_tag != pipeline_tag:
            return False
        if gated_want is not None and bool(repo.gated) != gated_want:
            return False
        if filters:
            tagset = set(repo.tags)
            tagset.update(x for x in (repo.library_name, repo.pipeline_tag) if x)
            if not all(f in tagset for f in filters):
                return False
        return True

    keys, entries = running._ordered(sort)
    start = 0
    cursor = ctx.q("cursor")
    if cursor:
        payload = _decode_cursor(cursor)
        key = payload[1] if isinstance(payload, list) and len(payload) == 2 and payload[0] == (sort or "") else None
        shape_ok = isinstance(key, list) and (
            (sort is None and len(key) == 1 and isinstance(key[0], int))
            or (sort is not None and len(key) == 2 and isinstance(key[0], int | float) and isinstance(key[1], str)))
        if not shape_ok:
            raise ApiError(400, "BadRequest", "Invalid cursor")
        start = bisect.bisect_right(keys, tuple(key))

    if expand:
        fields: tuple[str, ...] = tuple(expand)
    elif rtype != "model":
        fields = S.LIST_FIELDS_BY_TYPE[rtype] + (("siblings",) if full else ())
    elif full:
        fields = S.FULL_LIST_FIELDS
    else:
        fields = S.DEFAULT_LIST_FIELDS
    faults = running.faults
    page: list[dict] = []
    last_key: tuple | None = None
    more = False
    for i in range(start, len(entries)):
        seq, repo = entries[i]
        if not matches(repo):
            continue
        if len(page) == page_size:
            more = True
            break
        d = S.model_dict(repo, seq, fields, blobs=False, model_id=not expand)
        _cap_siblings(running, d)
        if faults is not None and faults.faults_in_listing:
            kind = faults.wrong_type_kind(repo.repo_id)
            missing = faults.is_missing_fields(repo.repo_id)
            if kind or missing:
                running.hub.stats.record_fault("listing_entry")
                d = corrupt_model_info(d, kind, missing)  # type: ignore[assignment]
        if faults is not None and repo.repo_id in faults.hostile_fields:
            d = {**d, **faults.hostile_fields[repo.repo_id]}
        page.append(d)
        last_key = keys[i]
    headers = []
    if faults is not None and faults.hostile_items and not cursor:
        page += faults.hostile_items
    if more and last_key is not None:
        headers.append(_next_link(ctx, _encode_cursor([sort or "", list(last_key)])))
    elif faults is not None and faults.link_loop:
        running.hub.stats.record_fault("link_loop")
        headers.append(_next_link(ctx, None))
    if faults is not None and faults.next_link:
        headers = [("Link", f'<{faults.next_link}>; rel="next"')]
    if faults is not None and faults.huge_listing_bytes and not cursor:
        running.hub.stats.record_fault("huge_listing")
        length, stream = huge_array(faults.huge_listing_bytes, faults.huge_listing_item_bytes)
        resp = json_response([], headers=headers)
        resp.stream, resp.stream_range = stream, (0, length - 1)  # type: ignore[assignment]
        resp.no_length = faults.huge_listing_no_length
        return resp
    return json_response(page, headers=headers)


def _cap_siblings(running: RunningHub, d: dict) -> None:
    """The Hub cuts a long `siblings` list short (at 100,000 files, or much earlier when its cache
    misbehaves: huggingface_hub issue #3059, PR #3565); `siblings_cap` emulates it. The tree is whole."""
    cap = running.siblings_cap
    if cap is not None and isinstance(d.get("siblings"), list) and len(d["siblings"]) > cap:
        d["siblings"] = d["siblings"][:cap]


def handle_model_info(ctx: _Ctx) -> Response:
    repo_id = ctx.route.repo_id or ""
    repo = _repo_or_error(ctx, repo_id, files=False)
    commit = _commit_or_error(repo, ctx.route.args.get("revision", "main"))
    expand = _expand_values(ctx)
    fields = tuple(expand) if expand else S.INFO_FIELDS_BY_TYPE.get(repo.repo_type, S.MODEL_INFO_FIELDS)
    data = S.model_dict(repo, _seq(ctx, repo_id), fields, commit=commit, blobs=ctx.qbool("blobs"),
                        model_id=not expand, extra=not expand)
    _cap_siblings(ctx.running, data)
    faults = ctx.running.faults
    if faults is not None:
        kind, missing = faults.wrong_type_kind(repo_id), faults.is_missing_fields(repo_id)
        if kind or missing:
            ctx.running.hub.stats.record_fault("wrong_types" if kind else "missing_fields")
            data = corrupt_model_info(data, kind, missing)  # type: ignore[assignment]
        if repo_id in faults.hostile_fields and isinstance(data, dict):
            data = {**data, **faults.hostile_fields[repo_id]}
    return json_response(data)


def _entries_json(repo: Repo, commit: Commit, items: Iterable[tuple[str, str]], *, expand: bool) -> list[dict]:
    last = repo.last_commits(commit) if expand else {}
    index = commit.file_index()
    out = []
    for kind, path in items:
        if kind == "file":
            out.append(S.tree_file(index[path], last_commit=last.get(path)))
        else:
            out.append(S.tree_dir(path, commit, last_commit=last.get(path)))
    return out


def _corrupt_entries(ctx: _Ctx, entries: list[dict]) -> Any:
    faults = ctx.running.faults
    repo_id = ctx.route.repo_id or ""
    if faults is None:
        return entries
    kind, missing = faults.wrong_type_kind(repo_id), faults.is_missing_fields(repo_id)
    if kind or missing:
        ctx.running.hub.stats.record_fault("wrong_types" if kind else "missing_fields")
        return corrupt_tree_entries(entries, kind, missing)
    return entries


def handle_tree(ctx: _Ctx) -> Response:
    repo_id = ctx.route.repo_id or ""
    repo = _repo_or_error(ctx, repo_id, files=False)
    commit = _commit_or_error(repo, ctx.route.args["revision"])
    base = ctx.route.args.get("path", "").strip("/")
    recursive, expand = ctx.qbool("recursive"), ctx.qbool("expand")
    items = S.tree_paths(commit, base, recursive=recursive)
    if items is None:
        raise ApiError(404, "EntryNotFound", f"{base} does not exist on \"{ctx.route.args['revision']}\"")
    per_page = ctx.running.tree_expand_page_size if expand else ctx.running.tree_page_size
    offset = 0
    if ctx.q("cursor"):
        payload = _decode_cursor(ctx.q("cursor") or "")
        if not isinstance(payload, int) or payload < 0:
            raise ApiError(400, "BadRequest", "Invalid cursor")
        offset = payload
    chunk = items[offset:offset + per_page]
    headers = []
    if offset + per_page < len(items):
        headers.append(_next_link(ctx, _encode_cursor(offset + per_page)))
    return json_response(_corrupt_entries(ctx, _entries_json(repo, commit, chunk, expand=expand)), headers=headers)


def handle_paths_info(ctx: _Ctx) -> Response:
    repo_id = ctx.route.repo_id or ""
    repo = _repo_or_error(ctx, repo_id, files=False)
    commit = _commit_or_error(repo, ctx.route.args["revision"])
    ctype = (ctx.headers.get("Content-Type") or "").lower()
    paths: list[str]
    if "json" in ctype:
        try:
            payload = json.loads(ctx.body or b"{}")
        except ValueError:
            raise ApiError(400, "BadRequest", "Invalid JSON body") from None
        raw = payload.get("paths", []) if isinstance(payload, dict) else []
        paths = [raw] if isinstance(raw, str) else [str(p) for p in raw]
        expand = bool(payload.get("expand")) if isinstance(payload, dict) else False
    else:
        form = parse_qs(ctx.body.decode("utf-8", "replace"), keep_blank_values=True)
        paths = form.get("paths", []) + form.get("paths[]", [])
        expand = (form.get("expand", ["false"])[-1]).lower() in ("true", "1")
    index, dirs = commit.file_index(), commit.directories()
    items: list[tuple[str, str]] = []
    seen: set[str] = set()
    for p in paths:
        p = p.strip("/")
        if p in seen:
            continue
        seen.add(p)
        if p in index:
            items.append(("file", p))
        elif p in dirs:
            items.append(("directory", p))
    return json_response(_corrupt_entries(ctx, _entries_json(repo, commit, items, expand=expand)))


def handle_commits(ctx: _Ctx) -> Response:
    repo_id = ctx.route.repo_id or ""
    repo = _repo_or_error(ctx, repo_id, files=False)
    commit = _commit_or_error(repo, ctx.route.args["revision"])
    history = repo.history
    upto = next(i for i, c in enumerate(history) if c is commit)
    newest_first = history[upto::-1]
    offset = 0
    if ctx.q("cursor"):
        payload = _decode_cursor(ctx.q("cursor") or "")
        if not isinstance(payload, int) or payload < 0:
            raise ApiError(400, "BadRequest", "Invalid cursor")
        offset = payload
    per_page = ctx.running.commits_page_size
    chunk = newest_first[offset:offset + per_page]
    headers = []
    if offset + per_page < len(newest_first):
        headers.append(_next_link(ctx, _encode_cursor(offset + per_page)))
    return json_response([S.commit_dict(c) for c in chunk], headers=headers)


def _file_response(ctx: _Ctx, f: RepoFile, headers: list[tuple[str, str]]) -> Response:
    """200 or 206 with the file's bytes (or its filler), honouring a single `Range`."""
    hub = ctx.running.hub
    can_serve = f.content is not None or (f.filler if f.filler is not None else hub.serve_filler)
    size = f.size or 0
    if ctx.method == "GET" and not can_serve:
        raise ApiError(404, "EntryNotFound",
                       f"{f.path}: the test hub holds only this file's metadata (declared size and sha256)")
    ctype = "application/json" if f.path.endswith(".json") else (
        "text/plain; charset=utf-8" if f.path.endswith((".md", ".txt", ".gitattributes")) else
        "application/octet-stream")
    base = [*headers, ("Content-Type", ctype), ("Accept-Ranges", "bytes")]
    rng = ctx.headers.get("Range")
    if rng:
        start, end = parse_range(rng, size)
        resp = Response(206, [*base, ("Content-Range", f"bytes {start}-{end}/{size}")], is_file=True)
    else:
        start, end = 0, size - 1
        resp = Response(200, base, is_file=True)
    resp.stream = _file_stream(f)
    resp.stream_range = (start, end)
    return resp


def handle_resolve(ctx: _Ctx) -> Response:
    repo_id = ctx.route.repo_id or ""
    repo = _repo_or_error(ctx, repo_id, files=True)
    revision = ctx.route.args["revision"]
    commit = _commit_or_error(repo, revision)
    path = ctx.route.args["path"]
    f = commit.file_index().get(path)
    if f is None:
        raise ApiError(404, "EntryNotFound", f"{path} does not exist on \"{revision}\"")
    headers = [("X-Repo-Commit", commit.id), ("ETag", f'"{f.git_oid}"')]
    faults = ctx.running.faults
    kind = faults.wrong_type_kind(repo_id) if faults else None
    missing = faults.is_missing_fields(repo_id) if faults else False
    if kind or missing:
        ctx.running.hub.stats.record_fault("wrong_types" if kind else "missing_fields")
    if faults is not None and faults.strips_linked(repo_id):
        ctx.running.hub.stats.record_fault("stripped_linked")
        return _strip_linked(_resolve_answer(ctx, repo_id, commit, f, headers, kind, missing))
    return _resolve_answer(ctx, repo_id, commit, f, headers, kind, missing)


def _strip_linked(resp: Response) -> Response:
    resp.headers = [(k, v) for k, v in resp.headers if k.lower() not in ("x-linked-etag", "x-linked-size")]
    return resp


def _resolve_answer(ctx: _Ctx, repo_id: str, commit: Commit, f: RepoFile, headers: list[tuple[str, str]],
                    kind: str | None, missing: bool) -> Response:
    if f.lfs:
        prefix = XET_PREFIX if f.xet else CDN_PREFIX
        location = f"{ctx.running.cdn_url}{prefix}{repo_id}/{commit.id}/{quote(f.path)}"
        headers += [("X-Linked-Etag", f'"{f.sha256}"'), ("X-Linked-Size", str(f.size))]
        if f.xet:  # what makes huggingface_hub's downloads switch to the Xet protocol (hf_xet)
            token_url = f"{ctx.running.url}{api_path(repo_id)}/xet-read-token/{commit.id}"
            headers += [("X-Xet-Hash", f.xet_hash or ""), ("Link", f'<{token_url}>; rel="xet-auth"')]
        headers += [("Location", location), ("Content-Type", "text/plain; charset=utf-8")]
        return Response(302, corrupt_resolve_headers(headers, kind, missing))
    resp = _file_response(ctx, f, headers)
    resp.headers = corrupt_resolve_headers(resp.headers, kind, missing)
    return resp


def handle_cdn(ctx: _Ctx) -> Response:
    repo = ctx.running.hub.find(ctx.route.repo_id or "")
    commit = repo.resolve_revision(ctx.route.args["commit"]) if repo else None
    f = commit.file_index().get(ctx.route.args["path"]) if commit else None
    xet_route = ctx.route.args.get("xet") == "1"
    if f is None or bool(f.xet) != xet_route:
        raise ApiError(404, "EntryNotFound", "No such object on the CDN")
    # The Xet bridge's ETag is the file's Xet hash (64 hex like a sha256, but not its sha256).
    return _file_response(ctx, f, [("ETag", f'"{f.xet_hash if f.xet else f.sha256}"')])


def handle_xet_token(ctx: _Ctx) -> Response:
    """The Xet read-token route (`Link rel="xet-auth"`): where huggingface_hub's Xet downloads start.
    The test hub does not speak the Xet protocol: it counts the request (`xet_token`) and refuses."""
    raise ApiError(501, "NotImplemented", "the test hub does not speak the Xet protocol")


def handle_redirect(ctx: _Ctx) -> Response:
    """307 of an old id (legacy id without namespace, renamed repo) to its current id, as the Hub answers."""
    location = ctx.route.args["location"] + (f"?{ctx.raw_query}" if ctx.raw_query else "")
    body = f"Temporary Redirect. Redirecting to {location}".encode()
    return Response(307, [("Location", location), ("Content-Type", "text/plain; charset=utf-8"),
                          ("Vary", "Origin, Accept")], body)


def handle_replay(ctx: _Ctx) -> Response:
    """A recorded answer served verbatim (`RunningHub.replays`)."""
    status, headers, body = ctx.running.replays[ctx.raw_path]
    ctype = next((v for k, v in headers if k.lower() == "content-type"), "")
    return Response(status, list(headers), body, is_json="json" in ctype)


def handle_root(ctx: _Ctx) -> Response:
    body = f"mirrorwatch test hub: {len(ctx.running.hub)} repos\n".encode()
    return Response(200, [("Content-Type", "text/plain; charset=utf-8")], body)


def handle_unknown(ctx: _Ctx) -> Response:
    raise ApiError(404, "NotFound", f"Unknown route {ctx.raw_path}")


# ---------------------------------------------------------------------------------------------
# Routing

def api_path(key: str) -> str:
    """The API path of a repo key: `/api/models/ns/name`, `/api/datasets/ns/name`, `/api/spaces/ns/name`."""
    head, _, rest = key.partition("/")
    if head in ("datasets", "spaces") and rest.count("/") == 1:
        return f"/api/{head}/{rest}"
    return f"/api/models/{key}"


def _alias_route(running: RunningHub, segs: list[str], dec: list[str]) -> _Route | None:
    """A 307 route when the path names an old id (legacy or renamed) of a repo, else None."""
    hub = running.hub
    if len(dec) >= 3 and dec[0] == "api" and dec[1] == "models":
        for n in (2, 1):
            if len(dec) >= 2 + n:
                old = "/".join(dec[2:2 + n])
                new = hub.alias_target(old)
                if new is not None:
                    rest = "/".join(segs[2 + n:])
                    location = f"/api/models/{quote(new)}" + (f"/{rest}" if rest else "")
                    return _Route("api", "redirect", old, handle_redirect, {"location": location})
        return None
    for n in (2, 1):
        if len(dec) >= n + 3 and dec[n] == "resolve":
            old = "/".join(dec[:n])
            new = hub.alias_target(old)
            if new is not None:
                location = f"/{quote(new)}/" + "/".join(segs[n:])
                return _Route("resolvers", "redirect", old, handle_redirect, {"location": location})
    return None


def route_request(running: RunningHub, host: str, raw_path: str) -> _Route:
    segs = raw_path.split("/")[1:]
    dec = [unquote(s) for s in segs]
    cdn_is_separate = running.cdn_host != running.host
    on_cdn = host == running.cdn_host and cdn_is_separate
    for prefix in (CDN_PREFIX, XET_PREFIX):
        if raw_path.startswith(prefix) and (on_cdn or not cdn_is_separate):
            # /cdn-lfs/[datasets/|spaces/]{ns}/{name}/{commit}/{path...} (or /xet-bridge/... for a Xet file)
            typed = 1 if len(dec) >= 6 and dec[1] in ("datasets", "spaces") else 0
            if len(dec) >= 5 + typed:
                key = "/".join(dec[1:3 + typed])
                return _Route("cdn", "cdn", key, handle_cdn,
                              {"commit": dec[3 + typed], "path": "/".join(dec[4 + typed:]),
                               "xet": "1" if prefix == XET_PREFIX else ""})
            return _Route("cdn", "unknown", None, handle_unknown)
    if on_cdn:
        return _Route("cdn", "unknown", None, handle_unknown)
    if raw_path in running.replays:
        return _Route("api", "replay", None, handle_replay)
    alias = _alias_route(running, segs, dec)
    if alias is not None:
        return alias
    if raw_path in ("", "/"):
        return _Route("other", "root", None, handle_root)
    if dec[0] == "api":
        if len(dec) >= 2 and dec[1] in ("models", "datasets", "spaces"):
            rtype = dec[1][:-1]
            t = {"type": rtype}
            if len(dec) == 2 or (len(dec) == 3 and dec[2] == ""):
                return _Route("api", f"list_{dec[1]}", None, handle_list_models, t)
            if len(dec) == 3:  # no namespace: no such repo here
                return _Route("api", "model_info", repo_key(rtype, dec[2]), handle_model_info, t)
            repo_id = repo_key(rtype, f"{dec[2]}/{dec[3]}")
            if len(dec) == 4:
                return _Route("api", "model_info", repo_id, handle_model_info, t)
            sub = dec[4]
            rest = dec[5:]
            if sub == "revision" and rest:
                return _Route("api", "model_info", repo_id, handle_model_info, {**t, "revision": "/".join(rest)})
            if sub == "tree" and rest:
                return _Route("api", "tree", repo_id, handle_tree,
                              {**t, "revision": rest[0], "path": "/".join(rest[1:])})
            if sub == "paths-info" and rest:
                return _Route("api", "paths_info", repo_id, handle_paths_info, {**t, "revision": "/".join(rest)},
                              methods=("POST",))
            if sub == "commits" and rest:
                return _Route("api", "commits", repo_id, handle_commits, {**t, "revision": "/".join(rest)})
            if sub == "xet-read-token" and rest:
                return _Route("api", "xet_token", repo_id, handle_xet_token, t)
        return _Route("api", "unknown", None, handle_unknown)
    if len(dec) >= 6 and dec[0] in ("datasets", "spaces") and dec[3] == "resolve":
        repo_id = f"{dec[0]}/{dec[1]}/{dec[2]}"
        return _Route("resolvers", "resolve", repo_id, handle_resolve,
                      {"type": dec[0][:-1], "revision": dec[4], "path": "/".join(dec[5:])})
    if len(dec) >= 5 and dec[2] == "resolve":
        repo_id = f"{dec[0]}/{dec[1]}"
        return _Route("resolvers", "resolve", repo_id, handle_resolve,
                      {"revision": dec[3], "path": "/".join(dec[4:])})
    return _Route("other", "unknown", None, handle_unknown)


# ---------------------------------------------------------------------------------------------
# HTTP plumbing

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mirrorwatch-testhub"
    sys_version = ""
    timeout = 120  # idle keep-alive connections are closed after this many seconds
    server: _Server

    def setup(self) -> None:
        super().setup()
        with contextlib.suppress(OSError):  # not a TCP socket
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_OPTIONS(self) -> None:
        self._handle("OPTIONS")

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            n = int(length)
        except ValueError:
            self.close_connection = True
            return b""
        return self.rfile.read(n) if n > 0 else b""

    def _handle(self, method: str) -> None:
        running = self.server.running
        hub = running.hub
        split = urlsplit(self.path)
        raw_path = split.path or "/"
        host = (self.headers.get("Host") or "").strip().lower()
        host = host[1:].split("]")[0] if host.startswith("[") else host.rsplit(":", 1)[0]
        body = self._read_body()
        route = route_request(running, host, raw_path)
        if method == "HEAD" and route.endpoint == "resolve":
            hub.stats.record_request(route.kind, "resolve_head", route.repo_id)
        elif route.endpoint in ("resolve", "cdn"):
            hub.stats.record_request(route.kind, f"{route.endpoint}_{method.lower()}", route.repo_id)
        else:
            hub.stats.record_request(route.kind, route.endpoint, route.repo_id)
        ctx = _Ctx(running, method, raw_path, split.query, parse_qs(split.query, keep_blank_values=True),
                   self.headers, body, route)
        faults = running.faults
        if faults is not None:
            delay = faults.delay()
            if delay and running._stopping.wait(delay):
                self.close_connection = True
                return

        rate_headers: list[tuple[str, str]] = []
        resp: Response | None = None
        if route.kind in ("api", "resolvers"):
            decision = running.limiter.hit(route.kind)
            rate_headers = decision.headers()
            if not decision.allowed:
                resp = ApiError(429, "RateLimited",
                                f"You have exceeded our '{route.kind}' rate limit: retry after "
                                f"{decision.reset_s} seconds").response()
        if resp is None and faults is not None:
            injected = faults.injected_error(route.repo_id, repo_scoped=route.kind in ("api", "resolvers"))
            if injected is not None:
                status, name = injected
                hub.stats.record_fault(name)
                resp = ApiError(status, "ServerError", f"Injected fault: {name}").response()
        if resp is None:
            if method not in route.methods:
                resp = ApiError(405, "MethodNotAllowed", f"{method} is not allowed on {raw_path}").response()
            else:
                try:
                    resp = route.handler(ctx)
                except ApiError as e:
                    resp = e.response()
                except Exception:
                    hub.stats.record_internal_error()
                    tb = traceback.format_exc()
                    running.errors.append(tb)
                    log.error("test hub handler failed on %s %s\n%s", method, self.path, tb)
                    resp = ApiError(500, "InternalError", "Test hub internal error").response()
                if (faults is not None and resp.status == 200 and resp.is_json
                        and route.endpoint in REPO_ENDPOINTS and faults.is_malformed(route.repo_id)):
                    hub.stats.record_fault("malformed_json")
                    resp.body = truncate_json(resp.body)
        resp.headers = rate_headers + resp.headers
        slow = (faults is not None and route.kind in ("api", "resolvers", "cdn")
                and faults.is_slowloris(route.repo_id))
        if slow:
            hub.stats.record_fault("slowloris")
        self._write(resp, method, faults.slowloris_interval_s if slow and faults else None)

    def _write(self, resp: Response, method: str, slow_interval: float | None) -> None:
        running = self.server.running
        try:
            reason = HTTPStatus(resp.status).phrase
        except ValueError:
            reason = "Unknown"
        length = resp.length
        lines = [f"HTTP/1.1 {resp.status} {reason}",
                 f"Server: {self.server_version}",
                 f"Date: {email.utils.formatdate(usegmt=True)}"]
        lines += [f"{k}: {v}" for k, v in resp.headers]
        if resp.no_length:
            self.close_connection = True
        else:
            lines.append(f"Content-Length: {length}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        send_body = method != "HEAD" and resp.status >= 200 and resp.status not in (204, 304)
        stats = running.hub.stats
        stats.record_response(resp.status)
        count = functools.partial(stats.record_bytes, ranged=resp.status == 206) if resp.is_file else None
        try:
            if slow_interval is not None:
                self._trickle(head, resp, send_body, slow_interval, count)
            elif not send_body:
                self.wfile.write(head)
            elif resp.stream is None:
                self.wfile.write(head + resp.body)
            else:
                a, b = resp.stream_range
                chunks = resp.stream(a, b)
                first = next(chunks, b"") if length else b""
                if count:
                    count(len(first))
                if len(first) <= _SMALL_BODY:
                    self.wfile.write(head + first)
                else:
                    self.wfile.write(head)
                    self.wfile.write(first)
                for chunk in chunks:
                    if running._stopping.is_set():
                        raise ConnectionAbortedError("test hub stopping")
                    if count:
                        count(len(chunk))
                    self.wfile.write(chunk)
        except (ConnectionError, OSError):
            self.close_connection = True

    def _trickle(self, head: bytes, resp: Response, send_body: bool, interval: float,
                 count: Callable[[int], None] | None) -> None:
        """Slowloris fault: headers at once then one body byte per interval (a HEAD trickles its headers)."""
        stopping = self.server.running._stopping
        self.close_connection = True
        if not send_body:
            for i in range(len(head)):
                if stopping.wait(interval):
                    return
                self.wfile.write(head[i:i + 1])
            return
        self.wfile.write(head)
        if resp.stream is not None:
            a, b = resp.stream_range
            body_iter: Iterator[bytes] = resp.stream(a, b)
        else:
            body_iter = iter((resp.body,))
        for chunk in body_iter:
            for i in range(len(chunk)):
                if stopping.wait(interval):
                    return
                if count:
                    count(1)
                self.wfile.write(chunk[i:i + 1])


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr: tuple[str, int], running: RunningHub) -> None:
        self.running = running
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(addr, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        self.running.hub.stats.record_connection()
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that goes away mid-request (a sweep killed by SIGKILL) is not the hub's error."""
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)


class RunningHub:
    """A test hub serving in a background thread. Use as a context manager, or call `stop()`.

    Attributes: `hub` (the Hub), `url` (API origin, e.g. http://127.0.0.1:PORT), `cdn_url`
    (http://localhost:PORT), `host`, `cdn_host`, `port`, `limiter` (RateLimiter), `faults`
    (settable at any time; None = no faults), `stats` (= hub.stats), `errors` (tracebacks of
    handler crashes: a test hub bug; tests can assert it stays empty).
    """

    def __init__(self, hub: Hub, *, host: str, port: int, cdn_host: str, faults: Faults | None,
                 quotas: Quotas | None, page_size: int, tree_page_size: int, tree_expand_page_size: int,
                 commits_page_size: int, disabled_anonymous_as_missing: bool = False,
                 siblings_cap: int | None = None) -> None:
        if min(page_size, tree_page_size, tree_expand_page_size, commits_page_size) < 1:
            raise ValueError("page sizes must be >= 1")
        self.hub = hub
        self.faults = faults
        self.limiter = RateLimiter(quotas)
        self.page_size = page_size
        self.tree_page_size = tree_page_size
        self.tree_expand_page_size = tree_expand_page_size
        self.commits_page_size = commits_page_size
        self.disabled_anonymous_as_missing = disabled_anonymous_as_missing
        self.siblings_cap = siblings_cap  # long `siblings` lists cut to this many (listings and *_info)
        self.errors: list[str] = []
        # Recorded answers served verbatim, by raw request path: (status, headers, body).
        self.replays: dict[str, tuple[int, list[tuple[str, str]], bytes]] = {}
        self._stopping = threading.Event()
        self._sort_lock = threading.Lock()
        self._sort_cache: dict[str | None, tuple[int, list[tuple], list[tuple[int, Repo]]]] = {}
        self._server = _Server((host, port), self)
        self.host = host
        self.port = int(self._server.server_address[1])
        self.cdn_host = cdn_host
        self.url = f"http://{host}:{self.port}"
        self.cdn_url = f"http://{cdn_host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"testhub-{self.port}", daemon=True)
        self._thread.start()

    # -- configuration at run time ----------------------------------------------------------
    @property
    def stats(self) -> HubStats:
        return self.hub.stats

    @property
    def quotas(self) -> Quotas | None:
        return None if self.limiter.unlimited else self.limiter.quotas

    def set_quotas(self, quotas: Quotas | None) -> None:
        """Change the quotas (None = unlimited) and start a fresh window."""
        self.limiter.reset(quotas)

    def reset_quotas(self) -> None:
        """Start a fresh window with the same quotas."""
        self.limiter.reset()

    def resolve_url(self, repo_id: str, path: str, revision: str = "main", repo_type: str = "model") -> str:
        """The resolve URL of a file, encoded the way huggingface_hub.hf_hub_url encodes it."""
        return f"{self.url}/{repo_key(repo_type, repo_id)}/resolve/{quote(revision, safe='')}/{quote(path)}"

    def hf_api(self, token: str | bool | None = False) -> HfApi:
        """An HfApi bound to this hub; anonymous unless a token is given."""
        from huggingface_hub import HfApi

        return HfApi(endpoint=self.url, token=token)

    # -- listing order cache ----------------------------------------------------------------
    def _ordered(self, sort: str | None) -> tuple[list[tuple], list[tuple[int, Repo]]]:
        """Sort keys and (seq, repo) in listing order: descending by `sort` then by id, or insertion order."""
        with self._sort_lock:
            cached = self._sort_cache.get(sort)
            if cached is not None and cached[0] == self.hub.version:
                return cached[1], cached[2]
            version, items = self.hub.snapshot()
            if sort is None:
                keyed = sorted((((seq,), seq, repo) for seq, repo in items), key=lambda t: t[0])
            else:
                value = SORTS[sort]
                keyed = sorted((((-value(repo), repo.key), seq, repo) for seq, repo in items),
                               key=lambda t: t[0])
            keys = [k for k, _, _ in keyed]
            entries = [(seq, repo) for _, seq, repo in keyed]
            self._sort_cache[sort] = (version, keys, entries)
            return keys, entries

    # -- lifecycle --------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop serving, close open connections and free the port (idempotent)."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> RunningHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<RunningHub {self.url} repos={len(self.hub)}>"


def serve(
    hub: Hub | Iterable[Repo],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    faults: Faults | None = None,
    quotas: Quotas | None = None,
    cdn_host: str = "localhost",
    page_size: int = 1000,
    tree_page_size: int = 1000,
    tree_expand_page_size: int = 50,
    commits_page_size: int = 50,
    disabled_anonymous_as_missing: bool = False,
    siblings_cap: int | None = None,
) -> RunningHub:
    """Start a test hub in a background thread (port 0 = any free port).

    `quotas=None` means unlimited (RateLimit headers still sent with a 1e9 quota). Page sizes are the
    Hub's by default; smaller ones make pagination testable on small hubs. `cdn_host` must resolve
    to the same address as `host` (localhost -> 127.0.0.1); set it equal to `host` for one origin.

    Disabled repos answer 403 + "Access to this resource is disabled." (hub-api.md). A maintainer of
    huggingface_hub noted (PR #1965, 2024) that the Hub answers 401 as if the repo did not exist when no
    token is sent: `disabled_anonymous_as_missing=True` emulates that (anonymous callers then get
    RepositoryNotFoundError, token holders DisabledRepoError).
    """
    if not isinstance(hub, Hub):
        hub = Hub(hub)
    return RunningHub(hub, host=host, port=port, cdn_host=cdn_host, faults=faults, quotas=quotas,
                      page_size=page_size, tree_page_size=tree_page_size,
                      tree_expand_page_size=tree_expand_page_size, commits_page_size=commits_page_size,
                      disabled_anonymous_as_missing=disabled_anonymous_as_missing, siblings_cap=siblings_cap)
