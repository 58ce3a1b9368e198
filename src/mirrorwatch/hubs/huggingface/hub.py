"""`HuggingFaceHub`: the hub port over `HfApi`, honouring HF_ENDPOINT and HF_TOKEN.

Listing: `GET /api/models` with `expand` (siblings, sha, dates, author, tags, gated, disabled),
page by page (following `Link` headers on the configured origin only, with the client's backoff).
Hashes per candidate repo come either from `model_info(files_metadata=True)` (one API call, all LFS
sha256s) or from a resolver HEAD per weight file (`X-Linked-Etag`, the larger resolver quota),
chosen per repo by what it needs and which quota has more room. Gated repos always use the API
(their resolvers refuse).

Repo types: model, dataset and Space repos are listed (`/api/models`, `/api/datasets`,
`/api/spaces`), described (`repo_info(repo_type=...)`), paged (`/api/{type}s/{id}/tree/...`) and
read (resolvers under `/datasets/...`, `/spaces/...`) the same way, each call naming its type. A
repo with many files (dataset archives of tens of thousands) is never taken from one `siblings`
answer, which may be cut short: its tree is paged (1,000 entries a page), keeping only weight files.

Legacy ids without a namespace (`gpt2`) and renamed repos answer 307 to their current id: the
client follows it, and the id the API answers with is recorded. Xet-backed files (most new uploads)
still carry their SHA256 (the API's `lfs.sha256`, the resolver's `X-Linked-Etag`) beside an
`X-Xet-Hash`: the sweep reads only those, never the Xet hash or the CDN's `ETag` (which for a Xet
file is the Xet hash, not a sha256), and range reads follow the resolver's redirect to the hub's
LFS-compatible route, so nothing here needs the Xet protocol (or `hf_xet`)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urljoin, urlsplit

from huggingface_hub import HfApi, get_session, hf_hub_url
from huggingface_hub.errors import DisabledRepoError, GatedRepoError, RepositoryNotFoundError
from huggingface_hub.utils import build_hf_headers, hf_raise_for_status, http_backoff

from mirrorwatch.errors import MalformedFile
from mirrorwatch.formats.archives import ArchiveError, ReadRange, StreamRange, archive_kind
from mirrorwatch.hubs.base import (
    DISABLED,
    GATED,
    LIVE,
    REMOVED,
    WEIGHT_EXTENSIONS,
    Hub,
    HubLinks,
    ListingPage,
    RemoteFile,
    RepoFiles,
    RepoListing,
    RepoStatus,
    Scope,
    SkipRepo,
    is_weight_file,
)
from mirrorwatch.hubs.huggingface import NAME, REPO_TYPES
from mirrorwatch.hubs.huggingface.links import HfLinks
from mirrorwatch.hubs.huggingface.listing import (
    LARGE_REPO_THRESHOLD,
    MalformedListing,
    clean_sha256,
    clean_size,
    files_from_siblings,
    files_from_tree,
    is_legacy_id,
    is_repo_id,
    namespace,
    parse_date,
    parse_page,
    path_problem,
    repo_id_problem,
)
from mirrorwatch.hubs.huggingface.retry import describe, hf_retries
from mirrorwatch.hubs.huggingface.transport import DEFAULT_DEADLINE_S, AnswerTooLarge, install_client
from mirrorwatch.hubs.quota import QuotaTracker
from mirrorwatch.hubs.retry import RetriesExhausted, RetryPolicy

if TYPE_CHECKING:
    from mirrorwatch.formats.safetensors import SafetensorsHeader
    from mirrorwatch.store.models import HubFile

DEFAULT_ENDPOINT = "https://huggingface.co"
EXPAND = ["siblings", "sha", "createdAt", "lastModified", "author", "tags", "gated", "disabled", "private"]
# What each repo type's listing is asked to expand (huggingface_hub's ExpandModelProperty_T,
# ExpandDatasetProperty_T, ExpandSpaceProperty_T: Spaces have no "gated").
EXPAND_BY_TYPE = {"model": EXPAND, "dataset": EXPAND, "space": [e for e in EXPAND if e != "gated"]}
# A repo whose listing or info names this many files or more is read by paging its tree (a
# `siblings` answer that long may be cut short: listing.LARGE_REPO_THRESHOLD); smaller ones by one
# info call or resolver HEADs.
TREE_FROM = LARGE_REPO_THRESHOLD
MAX_TREE_ENTRIES = 2_000_000  # entries of one repo's tree read before the repo is refused
MAX_TREE_WEIGHTS = 200_000  # weight files kept of one repo
MAX_TREE_PAGES = 5_000  # pages of one repo's tree (a pager that never ends is refused)
PAGE_SIZE = 1000
MAX_PAGE_ITEMS = 10 * PAGE_SIZE  # items of one listing page (more: the listing stops, recorded)
MAX_PAGE_OBJECTS = 1_000_000  # JSON objects and arrays in one listing page, counted before parsing


class HuggingFaceHub(Hub):
    """The hub port over `HfApi`, honouring HF_ENDPOINT and HF_TOKEN."""

    name: ClassVar[str] = NAME
    label: ClassVar[str] = "Hugging Face"
    links: ClassVar[HubLinks] = HfLinks()
    repo_types: ClassVar[tuple[str, ...]] = REPO_TYPES

    def __init__(self, endpoint: str | None = None, *, token: str | None = None, tracker: QuotaTracker | None = None,
                 retry: RetryPolicy | None = None, extensions: tuple[str, ...] = WEIGHT_EXTENSIONS,
                 resolver_max_files: int = 4, deadline_s: float = DEFAULT_DEADLINE_S, timeout_s: float = 30.0) -> None:
        self.endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
        self.token = token if token is not None else os.environ.get("HF_TOKEN")
        self.tracker = tracker or QuotaTracker()
        self.retry = retry or RetryPolicy()
        self.extensions = extensions
        self.resolver_max_files = resolver_max_files
        self.timeout_s = timeout_s
        install_client(self.endpoint, self.tracker, deadline_s=deadline_s)
        self.api = HfApi(endpoint=self.endpoint, token=self.token or False)

    # -- listing ---------------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        return build_hf_headers(token=self.token or False)

    def _type(self, repo_type: str | None) -> str:
        t = repo_type or REPO_TYPES[0]
        if t not in REPO_TYPES:
            raise ValueError(f"unknown Hugging Face repo type {t!r} (known: {', '.join(REPO_TYPES)})")
        return t

    def raw_pages(self, scope: Scope) -> Iterator[list[Any]]:
        """Raw listing pages (JSON arrays) of `scope["repo_type"]` (default model), following
        `Link: rel=next` on this hub's origin only."""
        rtype = self._type(scope.get("repo_type"))
        params: list[tuple[str, Any]] = [("limit", PAGE_SIZE), ("sort", scope.get("sort", "createdAt"))]
        for key in ("author", "search"):
            value = scope.get(key)
            if value:
                params.append((key, value))
        for f in scope.get("filter") or []:
            params.append(("filter", f))
        params += [("expand", e) for e in EXPAND_BY_TYPE[rtype]]
        headers = self._headers()
        origin = urlsplit(self.endpoint)[:2]
        url: str | None = f"{self.endpoint}/api/{rtype}s"
        first = True
        while url is not None:
            try:
                r = http_backoff("GET", url, params=params if first else None, headers=headers,
                                 timeout=self.timeout_s)
            except AnswerTooLarge as exc:
                raise SkipRepo(f"listing stopped: {exc}") from None
            hf_raise_for_status(r)
            body = r.content
            # (cheap count before parsing: a page of millions of tiny objects would cost far more
            # memory parsed than its bytes)
            if body.count(b"{") + body.count(b"[") > MAX_PAGE_OBJECTS:
                raise SkipRepo(f"listing stopped: a listing page with more than {MAX_PAGE_OBJECTS:,} JSON objects")
            try:
                page = json.loads(body)
            except (ValueError, RecursionError):
                raise MalformedListing("a listing page is not valid JSON") from None
            del body
            if not isinstance(page, list):
                raise MalformedListing("a listing page is not a JSON array")
            if len(page) > MAX_PAGE_ITEMS:
                raise SkipRepo(f"listing stopped: a listing page of {len(page):,} items (more than "
                               f"{MAX_PAGE_ITEMS:,}; {PAGE_SIZE:,} were asked for)")
            yield page
            first = False
            nxt = r.links.get("next", {}).get("url")
            url = urljoin(url, nxt) if nxt else None
            if url is not None and urlsplit(url)[:2] != origin:
                raise SkipRepo(f"the listing's next-page link leaves {self.endpoint}: listing stopped")

    def list_pages(self, scope: Scope) -> Iterator[ListingPage]:
        """Listing pages, each item parsed (or a ListingProblem), newest first by `scope['sort']`."""
        rtype = self._type(scope.get("repo_type"))
        for page in self.raw_pages(scope):
            yield parse_page(page, rtype)

    def _info(self, repo_id: str, repo_type: str, **kw: Any) -> Any:
        """`model_info`/`dataset_info`/`space_info` by type (huggingface_hub's `repo_info`), retried."""
        return hf_retries(lambda: self.api.repo_info(repo_id, repo_type=repo_type, timeout=self.timeout_s, **kw),
                          f"{repo_type}_info {repo_id}", self.retry)

    def repo_listing(self, repo_id: str, repo_type: str | None = None) -> RepoListing:
        """One repo (of `repo_type`, default model) as a listing would show it (for `--repo`)."""
        rtype = self._type(repo_type)
        problem = repo_id_problem(repo_id)
        if problem:
            raise MalformedListing(problem)
        info = self._info(repo_id, rtype, expand=EXPAND_BY_TYPE[rtype])
        if repo_id_problem(info.id):
            raise MalformedListing(f"the hub answered with an {repo_id_problem(info.id)}")
        final_id = info.id  # a legacy or renamed id: the hub's answer names the final one
        return RepoListing(
            repo_id=final_id, author=info.author if isinstance(info.author, str) else namespace(final_id),
            sha=info.sha if isinstance(info.sha, str) else None,
            created_at=parse_date(info.created_at), last_modified=parse_date(info.last_modified),
            gated=bool(getattr(info, "gated", None)), disabled=bool(info.disabled), private=bool(info.private),
            tags=[t for t in info.tags or [] if isinstance(t, str)], repo_type=rtype, **_paths_of(info.siblings),
        )

    def _file_url(self, repo_id: str, path: str, revision: str | None, repo_type: str | None = None) -> str:
        """The resolver URL of a file (`/datasets/...`, `/spaces/...` by type), built only from a safe
        repo id and file name (never a '..')."""
        problem = repo_id_problem(repo_id) or path_problem(path)
        if problem:
            raise SkipRepo(problem)
        return hf_hub_url(repo_id, path, revision=revision or "main", endpoint=self.endpoint,
                          repo_type=self._type(repo_type))

    # -- hashes ----------------------------------------------------------------------------------
    def choose_method(self, repo: RepoListing, n_files: int) -> str:
        """'api' (one model_info) or 'resolver' (one HEAD per weight file), by need and quota left."""
        if repo.gated or n_files == 0 or n_files > self.resolver_max_files or is_legacy_id(repo.repo_id):
            return "api"  # a legacy id: the API's answer names the final (namespaced) id
        snap = self.tracker.snapshot()
        api = snap.get("api", {})
        res = snap.get("resolvers", {})
        api_left = api.get("remaining") if api.get("remaining") is not None else 500
        res_left = res.get("remaining") if res.get("remaining") is not None else 3000
        return "resolver" if res_left / n_files >= api_left else "api"

    def fetch_files(self, repo: RepoListing, paths: list[str] | None) -> RepoFiles:
        weights = [p for p in (paths if paths is not None else repo.paths or []) if is_weight_file(p, self.extensions)]
        big = repo.files_count is not None and repo.files_count >= TREE_FROM
        method = "tree" if big else self.choose_method(repo, len(weights)) if repo.paths is not None else "api"
        try:
            if method == "tree":
                return self._by_tree(repo)
            if method == "resolver":
                try:
                    return self._by_heads(repo, weights)
                except GatedRepoError:  # gated since it was listed: the API still answers
                    pass
            return self._by_model_info(repo)
        except SkipRepo:
            raise
        except RetriesExhausted as exc:
            raise SkipRepo(str(exc)) from None
        except (RepositoryNotFoundError, DisabledRepoError) as exc:
            raise SkipRepo(f"{type(exc).__name__}: {describe(exc)}") from None
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise SkipRepo(f"malformed answer: {type(exc).__name__}: {str(exc)[:160]}") from None
        except Exception as exc:  # any other HTTP error: record and move on
            raise SkipRepo(describe(exc)) from None

    def _by_model_info(self, repo: RepoListing) -> RepoFiles:
        """One `*_info(files_metadata=True)` call; a long file list (possibly cut short) is replaced
        by the repo's tree, paged."""
        info = self._info(repo.repo_id, self._type(repo.repo_type), files_metadata=True)
        if isinstance(info.siblings, list) and len(info.siblings) >= TREE_FROM:
            if info.sha and isinstance(info.sha, str):
                repo.sha = info.sha
            paged = self._by_tree(repo)
            paged.requests += 1
            return paged
        try:
            files, problems = files_from_siblings(info.siblings, info.sha)
        except MalformedListing as exc:
            raise SkipRepo(str(exc)) from None
        if is_repo_id(info.id) and not repo_id_problem(info.id) and info.id != repo.repo_id:
            # followed a 307 (legacy id or renamed repo): record the final id
            repo.repo_id = info.id
            repo.author = info.author if isinstance(info.author, str) else namespace(info.id)
        if info.sha:
            repo.sha = info.sha
        return RepoFiles(repo=repo, files=files, method="api", requests=1, problems=problems)

    def tree_pages(self, repo_id: str, repo_type: str, revision: str | None) -> Iterator[list[Any]]:
        """The raw pages of a repo's whole tree (`GET /api/{type}s/{id}/tree/{rev}?recursive=true`,
        the route of huggingface_hub's `list_repo_tree`), through the client's `http_backoff`, following
        `Link: rel=next` on this hub's origin only (the client's own pager follows any origin)."""
        problem = repo_id_problem(repo_id)
        if problem:
            raise SkipRepo(problem)
        rev = quote(revision or "main", safe="")
        url: str | None = f"{self.endpoint}/api/{self._type(repo_type)}s/{repo_id}/tree/{rev}"
        params: list[tuple[str, Any]] | None = [("recursive", "true"), ("expand", "false")]
        headers = self._headers()
        origin = urlsplit(self.endpoint)[:2]
        seen: set[str] = set()
        while url is not None:
            if url in seen or len(seen) >= MAX_TREE_PAGES:
                raise SkipRepo("the tree's pagination repeats a page or never ends: repo skipped")
            seen.add(url)
            r = http_backoff("GET", url, params=params, headers=headers, timeout=self.timeout_s)
            hf_raise_for_status(r)
            try:
                page = r.json()
            except (ValueError, RecursionError):
                raise SkipRepo("a tree page is not valid JSON") from None
            if not isinstance(page, list):
                raise SkipRepo("a tree page is not a JSON array")
            yield page
            params = None
            nxt = r.links.get("next", {}).get("url")
            url = urljoin(url, nxt) if nxt else None
            if url is not None and urlsplit(url)[:2] != origin:
                raise SkipRepo(f"the tree's next-page link leaves {self.endpoint}: repo skipped")

    def _by_tree(self, repo: RepoListing) -> RepoFiles:
        """A repo's weight files from its tree, page by page (memory holds the weight files only)."""
        files: list[RemoteFile] = []
        problems: list[tuple[str, str]] = []
        requests = entries = 0
        for page in self.tree_pages(repo.repo_id, repo.repo_type, repo.sha):
            requests += 1
            entries += len(page)
            if entries > MAX_TREE_ENTRIES:
                raise SkipRepo(f"a tree of more than {MAX_TREE_ENTRIES:,} entries: repo skipped")
            got, bad = files_from_tree(page, repo.sha, self.extensions)
            files += got
            problems += bad
            if len(files) > MAX_TREE_WEIGHTS:
                raise SkipRepo(f"more than {MAX_TREE_WEIGHTS:,} weight files: repo skipped")
        return RepoFiles(repo=repo, files=files, method="api", requests=requests, problems=problems)

    def _by_heads(self, repo: RepoListing, weights: list[str]) -> RepoFiles:
        files = []
        requests = 0
        renamed = False
        for path in weights:
            url = self._file_url(repo.repo_id, path, repo.sha, repo.repo_type)
            sha, size, commit, sent = hf_retries(lambda url=url: self._head(url), f"HEAD {repo.repo_id}/{path}",
                                                 self.retry)
            requests += sent
            renamed = renamed or sent > 1
            files.append(RemoteFile(path=path, size=size, sha256=sha, lfs=sha is not None,
                                    revision=commit or repo.sha))
        if renamed or any(f.sha256 is None for f in files):
            # No X-Linked-Etag for a weight file (a file kept in git, or a proxy that drops the header):
            # the API says whether it is in LFS and gives its sha256 when there is one. A resolver that
            # redirected (a renamed repo) does not name the final id: the API's answer does.
            api = self._by_model_info(repo)
            api.requests += requests
            return api
        return RepoFiles(repo=repo, files=files, method="resolver", requests=requests)

    def _head(self, url: str) -> tuple[str | None, int | None, str | None, int]:
        """(sha256, size, commit, requests) of a resolver HEAD. The sha256 is taken from `X-Linked-Etag`
        only: never from `ETag`, which is a git blob id on the resolver and, past a redirect to the
        storage of a Xet-backed file, its Xet hash (64 hex characters too, but not a sha256).
        Redirects are followed only on this hub's origin and only until an answer carries
        `X-Linked-Etag` (a 307 of a renamed repo or a legacy id; never the 302 to the CDN)."""
        headers = {**self._headers(), "Accept-Encoding": "identity"}
        origin = urlsplit(self.endpoint)[:2]
        commit: str | None = None
        for sent in range(1, 6):
            r = get_session().head(url, headers=headers, follow_redirects=False, timeout=self.timeout_s)
            hf_raise_for_status(r)
            commit = r.headers.get("X-Repo-Commit") or commit
            linked = r.headers.get("X-Linked-Etag")
            location = r.headers.get("Location")
            if linked is not None or not (300 <= r.status_code < 400 and location):
                size = r.headers.get("X-Linked-Size") or (None if linked is None and r.status_code >= 300
                                                          else r.headers.get("Content-Length"))
                return (clean_sha256(linked), clean_size(int(size)) if size and size.isdigit() else None,
                        commit, sent)
            target = urljoin(url, location)
            if urlsplit(target)[:2] != origin:
                return None, None, commit, sent  # off-origin redirect without X-Linked-Etag
            url = target
        raise SkipRepo(f"too many redirects resolving {url}")

    # -- header tier: bounded range reads ---------------------------------------------------------
    def read_range(self, repo_id: str, path: str, revision: str | None, start: int, end: int,
                   repo_type: str | None = None) -> bytes:
        """Bytes start..end (inclusive) of a file, through the resolver (and its CDN redirect)."""
        url = self._file_url(repo_id, path, revision, repo_type)
        headers = {**self._headers(), "Range": f"bytes={start}-{end}"}
        limit = end - start + 1

        def get() -> bytes:
            with get_session().stream("GET", url, headers=headers, timeout=self.timeout_s) as r:
                hf_raise_for_status(r)
                if r.status_code != 206 and start > 0:
                    raise SkipRepo(f"{path}: the hub ignored the range request (HTTP {r.status_code})")
                out = bytearray()
                for chunk in r.iter_bytes():
                    out += chunk
                    if len(out) >= limit:  # never read more than asked, whatever the server sends
                        break
                return bytes(out[:limit])

        return hf_retries(get, f"range {repo_id}/{path}", self.retry)

    def read_header(self, repo_id: str, path: str, revision: str | None, size: int | None,
                    *, first_read: int = 4096, max_header_bytes: int = 8_000_000,
                    repo_type: str | None = None) -> tuple[SafetensorsHeader, int]:
        """The safetensors header of a hub file with at most two range reads: a small first read
        (the length, and the whole header when it is short), then the rest of the header.
        Returns (SafetensorsHeader, bytes fetched). Raises SafetensorsError or SkipRepo."""
        from mirrorwatch.formats.safetensors import header_length, parse_header

        head = self.read_range(repo_id, path, revision, 0, first_read - 1, repo_type)
        n = header_length(head[:8], max_header_bytes=max_header_bytes, file_size=size)
        fetched = len(head)
        raw = head[8 : 8 + n]
        if len(raw) < n:
            rest = self.read_range(repo_id, path, revision, 8 + len(raw), 8 + n - 1, repo_type)
            fetched += len(rest)
            raw += rest
        data_size = size - 8 - n if size is not None else None
        return parse_header(raw, header_len=n, file_size=size if data_size is not None else None), fetched

    def fetch_to(self, repo_id: str, path: str, revision: str | None, dest: Path, *, max_bytes: int,
                 repo_type: str | None = None) -> Path:
        """Stream a file to `dest` for the content tier (the caller deletes it); refuse past max_bytes."""
        url = self._file_url(repo_id, path, revision, repo_type)
        headers = self._headers()

        def get() -> Path:
            written = 0
            with get_session().stream("GET", url, headers=headers, timeout=self.timeout_s) as r, open(dest, "wb") as out:
                hf_raise_for_status(r)
                for chunk in r.iter_bytes(1 << 20):
                    written += len(chunk)
                    if written > max_bytes:
                        raise MalformedFile(f"{path} is larger than the {max_bytes:,}-byte content-tier cap")
                    out.write(chunk)
            return dest

        return hf_retries(get, f"GET {repo_id}/{path}", self.retry)

    # -- archives: members read by range (match/archives.py) --------------------------------------
    def archive_reader(self, f: HubFile) -> tuple[ReadRange, int, StreamRange] | None:
        """Range reads of one swept archive of this hub: ``(read_range, size, stream_range)``.

        ``read_range`` is the bounded `read_range` above (the zip's tail, central directory, a member's
        local header and first chunk); ``stream_range`` is one streamed Range GET for the rest of a
        long member. Both go through the resolver like the header tier (same URL checks, paced by the
        resolver quota, the token never sent past a redirect to another origin, retried on 429/5xx).
        Any failure is an `ArchiveError` (recorded by the sweep, which goes on). None: not an archive
        this sweep includes."""
        if archive_kind(f.path) is None or not is_weight_file(f.path, self.extensions) or f.repo is None:
            return None
        if f.size is None:
            raise ArchiveError("the hub did not say the archive's size")
        repo_id, path, revision, size = f.repo.repo_id, f.path, f.revision, f.size
        repo_type = getattr(f.repo, "repo_type", None)

        def read(offset: int, length: int) -> bytes:
            try:
                return self.read_range(repo_id, path, revision, offset, offset + length - 1, repo_type)
            except ArchiveError:
                raise
            except Exception as exc:  # SkipRepo, RetriesExhausted, HTTP errors
                raise ArchiveError(f"range read failed: {describe(exc)}") from None

        def stream(offset: int, length: int) -> Iterator[bytes]:
            try:
                yield from self._stream_range(repo_id, path, revision, offset, length, repo_type)
            except ArchiveError:
                raise
            except Exception as exc:
                raise ArchiveError(f"streamed range read failed: {describe(exc)}") from None

        return read, size, stream

    def _stream_range(self, repo_id: str, path: str, revision: str | None, offset: int,
                      length: int, repo_type: str | None = None) -> Iterator[bytes]:
        """``length`` bytes from ``offset`` as one streamed Range GET (never more, whatever is sent)."""
        if length <= 0:
            return
        url = self._file_url(repo_id, path, revision, repo_type)
        headers = {**self._headers(), "Range": f"bytes={offset}-{offset + length - 1}"}

        def start() -> tuple[Any, Any]:
            cm = get_session().stream("GET", url, headers=headers, timeout=self.timeout_s)
            r = cm.__enter__()
            try:
                hf_raise_for_status(r)
                if r.status_code != 206 and offset > 0:
                    raise ArchiveError(f"{path}: the hub ignored the range request (HTTP {r.status_code})")
            except BaseException:
                cm.__exit__(None, None, None)
                raise
            return cm, r

        cm, r = hf_retries(start, f"range {repo_id}/{path}", self.retry)
        try:
            left = length
            for chunk in r.iter_bytes(1 << 20):
                if not chunk:
                    continue
                chunk = chunk[:left]
                left -= len(chunk)
                yield chunk
                if left <= 0:
                    break
        finally:
            cm.__exit__(None, None, None)

    # -- status ----------------------------------------------------------------------------------
    def repo_status(self, repo_id: str, *, repo_type: str | None = None) -> RepoStatus:
        rtype = self._type(repo_type)
        try:
            info = self._info(repo_id, rtype, files_metadata=True)
        except RepositoryNotFoundError:
            return RepoStatus(REMOVED, "repository not found (deleted or made private)")
        except DisabledRepoError:
            return RepoStatus(DISABLED, "access to this repository is disabled")
        status = GATED if getattr(info, "gated", None) else (DISABLED if info.disabled else LIVE)
        sha = info.sha if isinstance(info.sha, str) else None
        if isinstance(info.siblings, list) and len(info.siblings) >= TREE_FROM:
            # (a long file list may be cut short: a file missing from it is not gone) the tree, paged
            try:
                files = [f for page in self.tree_pages(repo_id, rtype, sha)
                         for f in files_from_tree(page, sha, None)[0]]
            except SkipRepo as exc:
                return RepoStatus("error", str(exc))
            return RepoStatus(status, "", sha=sha, files=files)
        try:
            files, _ = files_from_siblings(info.siblings or [], info.sha)
        except MalformedListing as exc:
            return RepoStatus("error", str(exc))
        return RepoStatus(status, "", sha=info.sha, files=files)

    # -- quota ---------------------------------------------------------------------------------
    def quota(self) -> dict[str, dict[str, Any]]:
        return self.tracker.snapshot()


def _paths_of(siblings: Any) -> dict[str, Any]:
    """`paths` (and `files_count`) of a RepoListing from an info answer's siblings: a list too long
    to trust leaves `paths` unknown (the tree is paged instead)."""
    if isinstance(siblings, list) and len(siblings) >= TREE_FROM:
        return {"paths": None, "files_count": len(siblings)}
    try:
        paths = [f.path for f in files_from_siblings(siblings or [], None)[0]]
    except MalformedListing:
        return {"paths": None, "files_count": None}
    return {"paths": paths, "files_count": len(paths)}
