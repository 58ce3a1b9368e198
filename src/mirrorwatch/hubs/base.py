"""The hub port: what a sweep, a recheck and the robust tiers need from a place re-uploads live.

A hub is one subpackage of `mirrorwatch.hubs` holding a `Hub` subclass and a `SPEC` (its name,
label, kind, web links and factory), listed once in `hubs/registry.py`. Nothing outside the hub's
subpackage knows anything hub-specific; the sweep only calls the methods below.

This module is light on purpose (no network client imported): the registry, the CLI and the web
pages import it to learn which hubs exist and where their pages are."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, TypedDict

if TYPE_CHECKING:
    from mirrorwatch.formats.safetensors import SafetensorsHeader

WEIGHT_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf")


def is_weight_file(path: str, extensions: tuple[str, ...] = WEIGHT_EXTENSIONS) -> bool:
    return path.lower().endswith(extensions)


class Scope(TypedDict, total=False):
    """What part of a hub a sweep covers. Remote hubs read author/search/filter/sort/since;
    `repos` (explicit repo ids) is handled by the sweep through `Hub.repo_listing`."""

    author: str | None
    search: str | None
    filter: list[str]
    sort: str  # "createdAt" or "lastModified": newest first by this date
    repos: list[str]
    since: datetime | None
    root: str
    # Which of the hub's repo types a sweep covers (default: all of `HubSpec.repo_types`); the sweep
    # lists them one after the other and passes the one being listed as `repo_type`.
    repo_types: list[str]
    repo_type: str
    # Where an incremental sweep starts, per repo type (the sweep puts the type's date in `since`).
    since_by_type: dict[str, datetime | None]


DEFAULT_REPO_TYPE = "model"


def split_typed_id(text: str, types: tuple[str, ...]) -> tuple[str | None, str]:
    """`datasets/ns/name` -> ("dataset", "ns/name") when "dataset" is one of `types` (the hub's URL
    prefix form, as in `https://huggingface.co/datasets/ns/name`); any other text -> (None, text)."""
    head, sep, rest = text.partition("/")
    if sep and rest and head.endswith("s") and head[:-1] in types and head[:-1] != DEFAULT_REPO_TYPE:
        return head[:-1], rest
    return None, text


@dataclass
class RepoListing:
    """A repo as a listing shows it (no file hashes). `repo_type` is one of the hub's
    `HubSpec.repo_types` (a hub may hold a model and a dataset under the same id)."""

    repo_id: str
    author: str | None = None
    sha: str | None = None
    created_at: datetime | None = None
    last_modified: datetime | None = None
    gated: bool = False
    disabled: bool = False
    private: bool = False
    tags: list[str] = field(default_factory=list)
    paths: list[str] | None = None  # file paths when the listing carries them
    repo_type: str = DEFAULT_REPO_TYPE
    # How many files the listing says the repo has (None: not said). A hub reads a repo with many
    # files by paging (a long file list in one answer may be cut short) and may leave `paths` None.
    files_count: int | None = None


@dataclass(frozen=True)
class ListingProblem:
    """A listing item the hub returned but that cannot be used (recorded as a scan error)."""

    repo_id: str | None
    reason: str


ListingPage = list[RepoListing | ListingProblem]


@dataclass
class RemoteFile:
    """A file of a repo with what the hub's metadata says about it (never its bytes)."""

    path: str
    size: int | None = None
    sha256: str | None = None
    lfs: bool = True
    revision: str | None = None
    hashes: dict[str, str] = field(default_factory=dict)  # extra forms a hub knows (local folders hash all)
    # What the hub says this file is at its source: bank-entry id fields naming this very upload
    # (e.g. {"civitai_model_id": 12, "civitai_version_id": 34}) and flags kept as metadata (e.g.
    # "nsfw"). A bank entry carrying the same ids IS this file, not a re-upload of it: the match
    # layer skips that pair (`match.hits.is_itself`). Stored with the file (HubFile.hashes["source"]).
    source: dict[str, Any] = field(default_factory=dict)


@dataclass
class RepoFiles:
    repo: RepoListing
    files: list[RemoteFile]
    method: str  # how the hashes were obtained: "api", "resolver", "local"
    requests: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) of files left out


# The key under which a file's `RemoteFile.source` is stored in HubFile.hashes.
SOURCE_KEY = "source"

# Statuses a repo (or a file in it) can have, recorded over time.
LIVE, GATED, DISABLED, REMOVED, ERROR = "live", "gated", "disabled", "removed", "error"
FILE_PRESENT, FILE_GONE, FILE_CHANGED = "present", "gone", "changed"


@dataclass
class RepoStatus:
    status: str  # live / gated / disabled / removed / error
    detail: str = ""
    sha: str | None = None
    files: list[RemoteFile] | None = None


class SkipRepo(Exception):
    """A repo that cannot be read now (after retries): recorded with its reason, the sweep goes on."""


class HubLinks:
    """Where a person opens a repo, a file or an uploader on a hub (None: the hub has no web pages).

    Pure functions of the ids (and the environment): no network, usable without a hub instance.
    Every id is percent-encoded into the URL."""

    def repo_url(self, repo_id: str, repo_type: str | None = None) -> str | None:
        return None

    def file_url(self, repo_id: str, path: str, repo_type: str | None = None) -> str | None:
        return None

    def uploader_url(self, author: str) -> str | None:
        return None


class Hub(ABC):
    """The port every hub implements.

    An implementation MUST:
    - list repos in pages (`list_pages`), newest first by `scope["sort"]`, each item parsed into a
      `RepoListing` — or a `ListingProblem` when an item is unusable (never raise for one bad item);
    - give a repo's file sizes and sha256s from the hub's own metadata (`fetch_files`), raising
      `SkipRepo` with a short human reason for a repo it cannot read now (missing, disabled, failing
      after retries, malformed answer) — never any other exception for a per-repo problem;
    - bound every read: `read_header` reads at most a small first read plus the declared header;
      `fetch_to` refuses (MalformedFile) past `max_bytes`, whatever the server announces or sends;
    - retry transient failures itself (timeouts, 408/429/5xx) with backoff, pace itself below the
      hub's announced quotas, and bound each request with a deadline;
    - report its quota pools through `quota()` (empty when it has none);
    - address every repo by (repo type, repo id): `list_pages` lists `scope["repo_type"]`, and
      `RepoListing.repo_type` / the `repo_type` arguments say which kind of repo an id names.

    An implementation MUST NOT:
    - store or serve model bytes: the content a `fetch_to` writes is transient (the caller deletes
      it at once); nothing of a file but its hashes, header signals and fingerprint is kept;
    - follow links off its configured origin with credentials: pagination links and redirects to
      another origin are refused or followed without the hub's token (CDN redirects carry none);
    - read secrets from anywhere but the environment, or send them to any other host;
    - unpickle, import or execute anything it reads;
    - touch the database: a hub only talks to its hub (the sweep persists what it returns).
    """

    name: ClassVar[str]  # stored in HubRepo.hub and ScanRun.source; the registry key
    label: ClassVar[str]  # for people ("Hugging Face", "local folder")
    links: ClassVar[HubLinks] = HubLinks()
    # False for a hub that gives hashes only (its listing carries every form) and never reads file
    # bytes: the sweep then skips the header and content tiers for it instead of asking.
    reads_bytes: ClassVar[bool] = True
    # The hub's repo types (as its HubSpec.repo_types): the sweep lists them one after the other.
    repo_types: ClassVar[tuple[str, ...]] = (DEFAULT_REPO_TYPE,)
    # True for a hub whose `fetch_files` leaves files it would have to read to hash unhashed
    # (sha256 None, with what identifies the version in `hashes`): the sweep's content stage then
    # reads each once for every hash form, its header and fingerprint (in process, or as Ray tasks).
    hashes_by_reading: bool = False

    # -- listing ---------------------------------------------------------------------------------
    @abstractmethod
    def list_pages(self, scope: Scope) -> Iterator[ListingPage]:
        """Pages of parsed listings for a scope (the sweep stops early when it has what it needs)."""

    @abstractmethod
    def repo_listing(self, repo_id: str, repo_type: str | None = None) -> RepoListing:
        """One repo (of `repo_type`, default the hub's first type) as a listing would show it (for
        `--repo`). Raises on a missing repo."""

    # -- hashes ----------------------------------------------------------------------------------
    @abstractmethod
    def fetch_files(self, repo: RepoListing, paths: list[str] | None) -> RepoFiles:
        """Sizes and sha256s of the repo's files (all, or the given paths). Raises SkipRepo."""

    # -- bounded reads ---------------------------------------------------------------------------
    @abstractmethod
    def read_header(self, repo_id: str, path: str, revision: str | None,
                    size: int | None, *, repo_type: str | None = None) -> tuple[SafetensorsHeader, int]:
        """The safetensors header of a file and the bytes read for it (bounded: at most a small
        first read plus the declared header). Raises SafetensorsError/MirrorwatchError or SkipRepo."""

    @abstractmethod
    def fetch_to(self, repo_id: str, path: str, revision: str | None, dest: Path, *, max_bytes: int,
                 repo_type: str | None = None) -> Path:
        """A local path holding the file's bytes for the content tier: `dest` after streaming at most
        `max_bytes` into it (the caller deletes it), or the file itself when the hub is local (never
        copied). Raises MalformedFile past `max_bytes`."""

    # -- status ----------------------------------------------------------------------------------
    @abstractmethod
    def repo_status(self, repo_id: str, *, repo_type: str | None = None) -> RepoStatus:
        """Whether a repo (of `repo_type`, default the hub's first type) is live, gated, disabled or
        removed, with its files when readable."""

    # -- quota -----------------------------------------------------------------------------------
    def quota(self) -> dict[str, dict[str, Any]]:
        """Quota pools and what was spent (pool -> remaining, quota, reset_in_s, sent, throttled,
        waited_s); empty for a hub without quotas."""
        return {}


HubKind = Literal["remote", "folder"]


class HubFactory(Protocol):
    def __call__(self, location: str | None = None, *, extensions: tuple[str, ...] = WEIGHT_EXTENSIONS,
                 known: dict[str, dict] | None = None) -> Hub: ...


@dataclass(frozen=True)
class HubSpec:
    """A hub as the registry knows it, without importing its client.

    kind "remote": a hub listed by scope (author, search, filter, since), located by an endpoint URL;
    kind "folder": a tree of files located by a path. `open(location, extensions=..., known=...)`
    builds the hub (importing its client only then); `known` carries the hashes stored by earlier
    sweeps for hubs that hash files themselves."""

    name: str
    label: str
    kind: HubKind
    links: HubLinks
    open: HubFactory
    help: str = ""
    # How a takedown report reaches this hub, for people (shown at the top of a report); "" when
    # the hub has no reporting channel of its own (a local folder).
    report_route: str = ""
    # The hub's own policy a re-upload of a removed likeness model breaks, named as the hub names it
    # (and where it is published), cited in the report text; "" when the hub has none (a local folder).
    report_policy: str = ""
    # Whether the hub reads its files by range for archives' members (`Hub.archive_reader`): its
    # remote sweep then includes .zip/.tar files (`--archives`, on by default).
    archives: bool = False
    # The kinds of repo this hub holds (stored in HubRepo.repo_type); the first is the default. A
    # hub with several (Hugging Face: model, dataset, space) may hold two repos under one id.
    repo_types: tuple[str, ...] = (DEFAULT_REPO_TYPE,)
    # The URL scheme of the hub's locations ("s3"): `mirrorwatch scan s3://bucket/prefix` opens it;
    # "" for a hub located by a path or an endpoint.
    scheme: str = ""
