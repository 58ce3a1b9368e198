"""The hub interface: list repos, list a repo's files with sizes and sha256s, check a repo's status.

A sweep only talks to hubs through this interface; a new hub is one module implementing it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

WEIGHT_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf")


def is_weight_file(path: str, extensions: tuple[str, ...] = WEIGHT_EXTENSIONS) -> bool:
    return path.lower().endswith(extensions)


@dataclass
class RepoListing:
    """A repo as a listing shows it (no file hashes)."""

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


@dataclass
class RemoteFile:
    """A file of a repo with what the hub's metadata says about it (never its bytes)."""

    path: str
    size: int | None = None
    sha256: str | None = None
    lfs: bool = True
    revision: str | None = None
    hashes: dict[str, str] = field(default_factory=dict)  # extra forms (local folders hash all of them)
    # filled by the robust tiers when they run on this file:
    header: dict | None = None  # {"signals": {...}, "kind": ..., "bytes": N} or {"error": reason}
    fingerprint: bytes | None = None  # serialized weight fingerprint (content tier)
    content_error: str | None = None


@dataclass
class RepoFiles:
    repo: RepoListing
    files: list[RemoteFile]
    method: str  # how the hashes were obtained: "api", "resolver", "local"
    requests: int = 0


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


class Hub(Protocol):
    name: str

    def list_repos(self, scope: dict) -> Iterator[RepoListing]:
        """Repos in scope, newest first, as the hub lists them."""
        ...

    def fetch_files(self, repo: RepoListing, paths: list[str] | None) -> RepoFiles:
        """Sizes and sha256s of the repo's files (all, or the given paths). Raises SkipRepo."""
        ...

    def repo_status(self, repo_id: str) -> RepoStatus:
        """Whether a repo is live, gated, disabled or removed, with its files when readable."""
        ...
