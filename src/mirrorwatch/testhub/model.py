"""What the test hub serves: repositories, their files and commits, held thread-safely by a `Hub`.

The model mirrors what the Hugging Face Hub exposes through its API, not how it stores things:
a file is a path with a size, a git blob id and, for LFS files, a sha256 and a pointer size.
A file may carry real bytes (`content`, so range reads and downloads return them) or only
declared metadata (`size` + `sha256`, how benchmarks describe multi-gigabyte checkpoints without
holding them). Every change goes through `Hub` methods so the server sees a consistent view.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

WEIGHT_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf")
"""Files stored in LFS whatever their size (as the default .gitattributes of the Hub does)."""

LFS_SIZE_THRESHOLD = 10 * 1024 * 1024
"""Files larger than this go to LFS even without a weight extension (the Hub's 10 MB rule)."""

DEFAULT_CREATED_AT = datetime(2024, 1, 1, tzinfo=UTC)

Gated = Literal[False, "auto", "manual"]

REPO_TYPES = ("model", "dataset", "space")
"""The Hub's repo types (a dataset or Space may share its id with a model)."""


def repo_key(repo_type: str, repo_id: str) -> str:
    """How the test hub (and its URLs) name a repo: `ns/name` for a model, `datasets/ns/name`,
    `spaces/ns/name` for the others (the Hub's web and resolver path)."""
    return repo_id if repo_type == "model" else f"{repo_type}s/{repo_id}"

_REPO_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9._-]{1,96}$")
_HEX40_RE = re.compile(r"^[0-9a-f]{40}$")
_HEX_DIGITS = "0123456789abcdef"


def git_blob_sha1(content: bytes) -> str:
    """The git object id of a blob: sha1 over `blob <len>\\0` + content (what the Hub calls oid/blobId)."""
    h = hashlib.sha1(b"blob %d\0" % len(content))
    h.update(content)
    return h.hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The git-lfs pointer file committed in place of an LFS file; its blob id is the file's git oid."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


_POINTER_FIXED = len(lfs_pointer("0" * 64, 0)) - 1
_SMALL_HASH_CACHE: dict[bytes, str] = {}


def _sha256_of(content: bytes) -> str:
    """sha256 hex, memoised for small repeated contents (every generated repo has the same .gitattributes)."""
    if len(content) > 4096:
        return hashlib.sha256(content).hexdigest()
    h = _SMALL_HASH_CACHE.get(content)
    if h is None:
        h = hashlib.sha256(content).hexdigest()
        if len(_SMALL_HASH_CACHE) < 4096:
            _SMALL_HASH_CACHE[content] = h
    return h


def to_utc(value: datetime) -> datetime:
    """Aware UTC datetime; naive values are taken as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def iso_z(value: datetime) -> str:
    """ISO-8601 with milliseconds and a trailing Z, the Hub's date format (`2024-01-01T00:00:00.000Z`)."""
    v = to_utc(value)
    return (f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}."
            f"{v.microsecond // 1000:03d}Z")


def default_is_lfs(path: str, size: int) -> bool:
    return path.lower().endswith(WEIGHT_EXTENSIONS) or size > LFS_SIZE_THRESHOLD


@dataclass(eq=False, slots=True)
class RepoFile:
    """One file of a repository.

    Give `content` to serve real bytes (size, sha256 and git oid are computed from it), or give a
    declared `size` (and usually `sha256`) for a file whose bytes the hub does not hold: its
    metadata is served everywhere, and a download answers 404 EntryNotFound unless filler bytes are
    enabled (`filler=True` here, or `Hub(serve_filler=True)`). Filler bytes are deterministic but do
    NOT hash to the declared sha256. Without `sha256`, a declared file gets one derived from its path
    and size (so two declared files with the same path and size share it).
    `lfs` defaults to True for weight extensions and for files over 10 MB.
    `xet=True` makes it a Xet-backed file (how the Hub stores most new uploads): its pointer still
    carries the sha256 (the API's `lfs.sha256`, the resolver's `X-Linked-Etag`), and the resolver also
    answers `X-Xet-Hash` and a `Link rel="xet-auth"`, redirecting a GET to an LFS-compatible bridge
    route whose `ETag` is the Xet hash (not the sha256). A Xet file is always an LFS file.
    """

    path: str
    content: bytes | None = field(default=None, repr=False)
    size: int | None = None
    sha256: str | None = None
    lfs: bool | None = None
    filler: bool | None = None
    xet: bool = False
    _oid: str | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.path or self.path[0] == "/" or self.path[-1] == "/" or ".." in self.path.split("/"):
            raise ValueError(f"invalid file path in repo: {self.path!r}")
        if self.content is not None:
            content = bytes(self.content)
            self.content = content
            self.size = len(content)
            self.sha256 = _sha256_of(content)
        else:
            if self.size is None or self.size < 0:
                raise ValueError(f"{self.path}: give content, or a declared size >= 0")
            if self.sha256 is None:
                self.sha256 = hashlib.sha256(f"testhub-declared:{self.path}:{self.size}".encode()).hexdigest()
            else:
                self.sha256 = self.sha256.lower()
                if len(self.sha256) != 64 or self.sha256.strip(_HEX_DIGITS):
                    raise ValueError(f"{self.path}: sha256 must be 64 hex characters")
        if self.lfs is None:
            self.lfs = default_is_lfs(self.path, self.size)
        if self.xet and not self.lfs:
            raise ValueError(f"{self.path}: a Xet-backed file is an LFS file (lfs=True)")

    @property
    def git_oid(self) -> str:
        """The git blob id: of the LFS pointer for LFS files, of the content otherwise (a stable
        synthetic id for declared-only regular files). Computed on first use."""
        if self._oid is None:
            if self.lfs:
                self._oid = git_blob_sha1(lfs_pointer(self.sha256 or "", self.size or 0))
            elif self.content is not None:
                self._oid = git_blob_sha1(self.content)
            else:
                self._oid = hashlib.sha1(f"testhub-declared-blob:{self.sha256}:{self.size}".encode()).hexdigest()
        return self._oid

    @property
    def xet_hash(self) -> str | None:
        """The Xet content hash of a Xet-backed file (64 hex, deliberately different from its sha256:
        the real one is a Merkle hash over content-defined chunks); None for other files."""
        if not self.xet:
            return None
        return hashlib.sha256(b"testhub-xet:" + (self.sha256 or "").encode()).hexdigest()

    @property
    def pointer_size(self) -> int:
        """Size of the LFS pointer file (0 for regular files)."""
        if not self.lfs:
            return 0
        return _POINTER_FIXED + len(str(self.size))

    @classmethod
    def from_path(cls, local: str | Path, path_in_repo: str | None = None, *, lfs: bool | None = None) -> RepoFile:
        """A file whose content is read from a local file (handy to plant real models in a demo hub)."""
        p = Path(local)
        return cls(path=path_in_repo or p.name, content=p.read_bytes(), lfs=lfs)

    @property
    def has_bytes(self) -> bool:
        return self.content is not None


@dataclass(eq=False, slots=True)
class Commit:
    """One commit of a repository; `files` is the full tree at that commit."""

    id: str
    title: str
    date: datetime
    files: tuple[RepoFile, ...]
    message: str = ""
    authors: tuple[str, ...] = ()
    _index: dict[str, RepoFile] | None = field(default=None, repr=False)
    _dirs: frozenset[str] | None = field(default=None, repr=False)

    def file_index(self) -> dict[str, RepoFile]:
        """path -> file (built once, on first use)."""
        if self._index is None:
            self._index = {f.path: f for f in self.files}
        return self._index

    def directories(self) -> frozenset[str]:
        """Every folder that holds a file at this commit (without the root)."""
        if self._dirs is None:
            dirs: set[str] = set()
            for f in self.files:
                parts = f.path.split("/")[:-1]
                for i in range(1, len(parts) + 1):
                    dirs.add("/".join(parts[:i]))
            self._dirs = frozenset(dirs)
        return self._dirs


def _commit_id(*parts: object) -> str:
    return hashlib.sha1("\x1f".join(str(p) for p in parts).encode()).hexdigest()


@dataclass(eq=False)
class Repo:
    """A repository: a model, or with `repo_type` a dataset or a Space (held under its `key`,
    `datasets/ns/name` / `spaces/ns/name`, so a model and a dataset may share an id). `sha` is the head commit (generated when absent); `history` holds every
    commit oldest first and is built from `created_at`/`last_modified` when not given: an "initial
    commit" at `created_at` and, if `last_modified` is later, the upload of the files at that time.
    The server reads files from the commits, so change a served repo's files with
    `Hub.update_files` (which also keeps `files`, `sha` and `last_modified` in step), not by editing `files`."""

    repo_id: str
    files: list[RepoFile] = field(default_factory=list)
    created_at: datetime = DEFAULT_CREATED_AT
    last_modified: datetime | None = None
    sha: str | None = None
    gated: Gated = False
    disabled: bool = False
    private: bool = False
    tags: list[str] = field(default_factory=list)
    downloads: int = 0
    likes: int = 0
    library_name: str | None = None
    pipeline_tag: str | None = None
    trending_score: int = 0
    history: list[Commit] = field(default_factory=list)
    # Further fields real model_info bodies carry (`config`, `cardData`, `transformersInfo`,
    # `safetensors`, `mask_token`, `widgetData`, `inference`, ...): served as given, after the known ones.
    extra: dict[str, object] = field(default_factory=dict)
    repo_type: str = "model"

    def __post_init__(self) -> None:
        if not _REPO_ID_RE.match(self.repo_id) or ".." in self.repo_id:
            raise ValueError(f"invalid repo id {self.repo_id!r}: expected 'namespace/name'")
        if self.repo_type not in REPO_TYPES:
            raise ValueError(f"{self.repo_id}: repo_type must be one of {REPO_TYPES}")
        if self.gated not in (False, "auto", "manual"):
            raise ValueError(f"{self.repo_id}: gated must be False, 'auto' or 'manual'")
        self.files = list(self.files)
        paths = [f.path for f in self.files]
        if len(set(paths)) != len(paths):
            dupes = sorted(p for p, n in Counter(paths).items() if n > 1)
            raise ValueError(f"{self.repo_id}: duplicate file paths {dupes}")
        self.created_at = to_utc(self.created_at)
        self.last_modified = to_utc(self.last_modified) if self.last_modified else self.created_at
        if self.sha is not None:
            self.sha = self.sha.lower()
            if not _HEX40_RE.match(self.sha):
                raise ValueError(f"{self.repo_id}: sha must be 40 hex characters")
        if not self.history:
            self.history = self._initial_history()
        else:
            self.history = list(self.history)
            self.sha = self.history[-1].id
        self.tags = list(self.tags)

    def _initial_history(self) -> list[Commit]:
        author = self.author
        head_id = self.sha or _commit_id(
            self.repo_id, iso_z(self.last_modified), *(f"{f.path}:{f.size}:{f.sha256}" for f in self.files)
        )
        self.sha = head_id
        assert self.last_modified is not None
        if self.last_modified <= self.created_at:
            return [Commit(head_id, "initial commit", self.created_at, tuple(self.files), "", (author,))]
        first_files = tuple(f for f in self.files if f.path == ".gitattributes")
        first = Commit(_commit_id(self.repo_id, "initial"), "initial commit", self.created_at, first_files, "", (author,))
        upload = Commit(head_id, "Upload folder using huggingface_hub", self.last_modified, tuple(self.files), "",
                        (author,))
        return [first, upload]

    @property
    def author(self) -> str:
        return self.repo_id.split("/", 1)[0]

    @property
    def key(self) -> str:
        """The repo's name on this hub: its id for a model, `datasets/...`/`spaces/...` otherwise."""
        return repo_key(self.repo_type, self.repo_id)

    @property
    def name(self) -> str:
        return self.repo_id.split("/", 1)[1]

    @property
    def head(self) -> Commit:
        return self.history[-1]

    def resolve_revision(self, revision: str) -> Commit | None:
        """A branch name (`main`), a full commit id, or an unambiguous prefix of 7+ hex characters."""
        history = self.history
        if revision == "main":
            return history[-1]
        rev = revision.lower()
        if _HEX40_RE.match(rev):
            for c in history:
                if c.id == rev:
                    return c
            return None
        if 7 <= len(rev) < 40 and all(ch in "0123456789abcdef" for ch in rev):
            found = [c for c in history if c.id.startswith(rev)]
            return found[0] if len(found) == 1 else None
        return None

    def last_commits(self, upto: Commit) -> dict[str, Commit]:
        """For each file and folder at `upto`: the latest commit (up to it) that changed it."""
        result: dict[str, Commit] = {}
        previous: dict[str, str] = {}
        for commit in self.history:
            for f in commit.files:
                if previous.get(f.path) != f.git_oid:
                    result[f.path] = commit
                    parts = f.path.split("/")[:-1]
                    for i in range(1, len(parts) + 1):
                        result["/".join(parts[:i])] = commit
            previous = {f.path: f.git_oid for f in commit.files}
            if commit is upto:
                break
        return result

    @property
    def used_storage(self) -> int:
        return sum(f.size or 0 for f in self.files)


@dataclass
class HubStats:
    """What the server has been asked, for tests and benchmarks to assert on.

    by_kind: requests per quota kind ("api", "resolvers", "cdn", "other");
    by_endpoint: "list_models" (and "list_datasets", "list_spaces"), "model_info", "tree", "paths_info", "commits", "resolve_head",
    "resolve_get", "cdn_head", "cdn_get", "unknown"; by_status: responses per HTTP status;
    by_repo: requests naming a repo (API, resolve and CDN); rate_limited: 429s sent;
    range_bytes: body bytes sent in 206 answers; file_bytes: file body bytes sent (200 and 206);
    faults: injected faults by name; internal_errors: handler exceptions (a bug in the test hub);
    connections: TCP connections accepted (keep-alive clients reuse them).
    """

    by_kind: Counter[str] = field(default_factory=Counter)
    by_endpoint: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)
    by_repo: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    rate_limited: int = 0
    range_bytes: int = 0
    file_bytes: int = 0
    internal_errors: int = 0
    connections: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())

    def record_request(self, kind: str, endpoint: str, repo_id: str | None) -> None:
        with self._lock:
            self.by_kind[kind] += 1
            self.by_endpoint[endpoint] += 1
            if repo_id:
                self.by_repo[repo_id] += 1

    def record_response(self, status: int) -> None:
        """Counted before the answer is written, so a client that got it always sees it counted."""
        with self._lock:
            self.by_status[status] += 1
            if status == 429:
                self.rate_limited += 1

    def record_bytes(self, n: int, *, ranged: bool) -> None:
        """File body bytes about to be written (206 answers also count as range bytes)."""
        with self._lock:
            self.file_bytes += n
            if ranged:
                self.range_bytes += n

    def record_fault(self, name: str) -> None:
        with self._lock:
            self.faults[name] += 1

    def record_connection(self) -> None:
        with self._lock:
            self.connections += 1

    def record_internal_error(self) -> None:
        with self._lock:
            self.internal_errors += 1

    def reset(self) -> None:
        with self._lock:
            for c in (self.by_kind, self.by_endpoint, self.by_status, self.by_repo, self.faults):
                c.clear()
            self.rate_limited = self.range_bytes = self.file_bytes = self.internal_errors = self.connections = 0

    def snapshot(self) -> dict[str, object]:
        """A plain-dict copy (JSON-friendly) for reports and benchmark output."""
        with self._lock:
            return {
                "total": sum(self.by_kind.values()),
                "by_kind": dict(self.by_kind),
                "by_endpoint": dict(self.by_endpoint),
                "by_status": {str(k): v for k, v in self.by_status.items()},
                "rate_limited": self.rate_limited,
                "range_bytes": self.range_bytes,
                "file_bytes": self.file_bytes,
                "faults": dict(self.faults),
                "internal_errors": self.internal_errors,
                "connections": self.connections,
            }


class Hub:
    """The repositories a test hub serves, safe to change while the server runs.

    Change repos through these methods (not by assigning attributes of a `Repo` being served): they
    take the lock, bump `version` (which invalidates the listing's sort caches) and keep the commit
    history. `serve_filler=True` lets downloads of declared-only files return filler bytes.
    """

    def __init__(self, repos: Iterable[Repo] = (), *, serve_filler: bool = False) -> None:
        self._lock = threading.RLock()
        self._repos: dict[str, Repo] = {}
        self._aliases: dict[str, str] = {}
        self._seq: dict[str, int] = {}
        self._next_seq = 0
        self.version = 0
        self.serve_filler = serve_filler
        self.stats = HubStats()
        for repo in repos:
            self.add(repo)

    # -- reading ---------------------------------------------------------------------------
    def get(self, repo_id: str) -> Repo:
        """The repo (private, gated and disabled ones included); KeyError if there is none. Every
        method here takes a repo's key: its id for a model, `datasets/ns/name` / `spaces/ns/name`."""
        with self._lock:
            return self._repos[repo_id]

    def find(self, repo_id: str) -> Repo | None:
        with self._lock:
            return self._repos.get(repo_id)

    def repos(self) -> list[Repo]:
        """Snapshot of every repo, in insertion order."""
        with self._lock:
            return list(self._repos.values())

    def alias_target(self, repo_id: str) -> str | None:
        """The current id an old id redirects to (a legacy id without namespace, or a renamed repo),
        if that id is not a repo itself."""
        with self._lock:
            if repo_id in self._repos:
                return None
            return self._aliases.get(repo_id)

    def seq(self, repo_id: str) -> int:
        """Insertion number of a repo (the listing's default order)."""
        with self._lock:
            return self._seq[repo_id]

    def snapshot(self) -> tuple[int, list[tuple[int, Repo]]]:
        """(version, [(seq, repo)...]) taken under the lock, for the listing."""
        with self._lock:
            return self.version, [(self._seq[rid], r) for rid, r in self._repos.items()]

    def __len__(self) -> int:
        return len(self._repos)

    def __contains__(self, repo_id: object) -> bool:
        return repo_id in self._repos

    def __iter__(self) -> Iterator[Repo]:
        return iter(self.repos())

    # -- changing --------------------------------------------------------------------------
    def add(self, repo: Repo, *, replace: bool = False) -> Repo:
        """Add a repo; ValueError if its id exists (unless `replace`, which keeps its listing position)."""
        with self._lock:
            if repo.key in self._repos and not replace:
                raise ValueError(f"repo {repo.key} already exists")
            if repo.key not in self._seq:
                self._seq[repo.key] = self._next_seq
                self._next_seq += 1
            self._repos[repo.key] = repo
            self.version += 1
            return repo

    def add_many(self, repos: Iterable[Repo]) -> None:
        with self._lock:
            for repo in repos:
                self.add(repo)

    def update_files(
        self,
        repo_id: str,
        files: Iterable[RepoFile],
        *,
        title: str = "Upload folder using huggingface_hub",
        at: datetime | None = None,
    ) -> str:
        """Replace the repo's files by a new commit; returns its sha. `last_modified` becomes `at`
        (default: now, and always later than the previous commit). Old revisions stay resolvable."""
        new_files = list(files)
        with self._lock:
            repo = self._repos[repo_id]
            paths = [f.path for f in new_files]
            if len(set(paths)) != len(paths):
                raise ValueError(f"{repo_id}: duplicate file paths")
            prev = repo.history[-1]
            when = to_utc(at) if at else datetime.now(UTC)
            if when <= prev.date:
                when = prev.date + timedelta(seconds=1)
            sha = _commit_id(repo_id, prev.id, title, iso_z(when), *(f"{f.path}:{f.git_oid}" for f in new_files))
            commit = Commit(sha, title, when, tuple(new_files), "", (repo.author,))
            repo.history = [*repo.history, commit]
            repo.files = new_files
            repo.sha = sha
            repo.last_modified = when
            self.version += 1
            return sha

    def add_alias(self, old_id: str, repo_id: str) -> None:
        """Make `old_id` redirect (307) to `repo_id`, as the Hub does for legacy ids without a
        namespace (`gpt2` -> `openai-community/gpt2`) and for renamed or moved repos."""
        parts = old_id.split("/")
        if not 1 <= len(parts) <= 2 or not all(parts) or any(p in (".", "..") for p in parts) or any(
                not all(c.isalnum() or c in "._-" for c in p) for p in parts):
            raise ValueError(f"invalid old repo id {old_id!r}")
        with self._lock:
            if repo_id not in self._repos:
                raise KeyError(repo_id)
            self._aliases[old_id] = repo_id

    def rename(self, repo_id: str, new_id: str) -> Repo:
        """Move a repo to `new_id` (keeping its listing position); the old id then redirects (307)."""
        from dataclasses import replace

        with self._lock:
            repo = self._repos.pop(repo_id)
            seq = self._seq.pop(repo_id)
            moved = replace(repo, repo_id=new_id)
            moved.history = repo.history
            new_id = moved.key
            self._repos[new_id] = moved
            self._seq[new_id] = seq
            self._aliases = {k: (new_id if v == repo_id else v) for k, v in self._aliases.items()}
            self._aliases[repo_id] = new_id
            self.version += 1
            return moved

    def remove(self, repo_id: str) -> Repo:
        """Delete a repo (it then answers RepoNotFound); KeyError if there is none."""
        with self._lock:
            repo = self._repos.pop(repo_id)
            self._seq.pop(repo_id, None)
            self.version += 1
            return repo

    def set_disabled(self, repo_id: str, disabled: bool = True) -> None:
        self._set(repo_id, disabled=bool(disabled))

    def set_gated(self, repo_id: str, gated: Gated = "auto") -> None:
        if gated not in (False, "auto", "manual"):
            raise ValueError("gated must be False, 'auto' or 'manual'")
        self._set(repo_id, gated=gated)

    def set_private(self, repo_id: str, private: bool = True) -> None:
        self._set(repo_id, private=bool(private))

    def set_counts(self, repo_id: str, *, downloads: int | None = None, likes: int | None = None,
                   trending_score: int | None = None) -> None:
        """Change popularity numbers (what the downloads/likes/trendingScore sorts use)."""
        changes = {k: v for k, v in (("downloads", downloads), ("likes", likes),
                                     ("trending_score", trending_score)) if v is not None}
        self._set(repo_id, **changes)

    def _set(self, repo_id: str, **changes: object) -> None:
        with self._lock:
            repo = self._repos[repo_id]
            for k, v in changes.items():
                setattr(repo, k, v)
            self.version += 1

    def reset_stats(self) -> None:
        self.stats.reset()
