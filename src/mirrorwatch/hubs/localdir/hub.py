"""A local folder as a hub, for platforms scanning their own storage.

The folder is one repo (its absolute path); its model-weight files are hashed with the engine
(all six forms, one read each). A file whose size and modification time are unchanged since the
last sweep keeps its stored hashes instead of being read again."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, ClassVar

from mirrorwatch.errors import InvalidInput, MalformedFile
from mirrorwatch.formats.archives import ReadRange, StreamRange, archive_kind, local_reader, local_stream
from mirrorwatch.hashing.engine import hash_file, open_regular
from mirrorwatch.hubs.base import (
    LIVE,
    REMOVED,
    WEIGHT_EXTENSIONS,
    Hub,
    ListingPage,
    ListingProblem,
    RemoteFile,
    RepoFiles,
    RepoListing,
    RepoStatus,
    Scope,
    SkipRepo,
    is_weight_file,
)
from mirrorwatch.hubs.localdir import NAME, REPO_TYPE
from mirrorwatch.hubs.localdir.walk import Skipped, walk_files

if TYPE_CHECKING:
    from mirrorwatch.formats.safetensors import SafetensorsHeader
    from mirrorwatch.store.models import HubFile


class LocalDirHub(Hub):
    """One folder as one repo. Never follows a link off the folder; reads files where they are."""

    name: ClassVar[str] = NAME
    label: ClassVar[str] = "local folder"
    repo_types: ClassVar[tuple[str, ...]] = (REPO_TYPE,)

    def __init__(self, root: Path, *, extensions: tuple[str, ...] = WEIGHT_EXTENSIONS,
                 known: dict[str, dict] | None = None, archives: bool = True) -> None:
        self.root = root.expanduser().resolve()
        if not self.root.is_dir():
            raise InvalidInput(f"{root} is not a folder")
        self.extensions = extensions
        self.known = known or {}  # path -> stored hashes (with size and mtime) from earlier sweeps
        self.errors: list[tuple[str, str]] = []
        self.archives = archives  # archives (.zip, .tar, ...) are swept too: their members are matched

    def _walk(self, notes: list[Skipped] | None = None) -> Iterator[Path]:
        """Model-weight files under the folder, by the one walker's rules (`walk.py`); what the walker
        skipped is added to `notes` (non-regular files and bad links among weight files, and errors)."""

        def skipped(skip: Skipped) -> None:
            if skip.is_error:
                self.errors.append((skip.path, f"{skip.kind.replace('_', ' ')} {skip.detail}".strip()))
            if notes is not None and (skip.is_error or is_weight_file(skip.path, self.extensions)):
                notes.append(skip)

        for path in walk_files(str(self.root), skipped):
            if is_weight_file(path, self.extensions) or (self.archives and archive_kind(path) is not None):
                yield Path(path)

    def list_pages(self, scope: Scope) -> Iterator[ListingPage]:
        notes: list[Skipped] = []
        paths = [str(p.relative_to(self.root)) for p in self._walk(notes)]
        stamp = datetime.fromtimestamp(self.root.stat().st_mtime, UTC).replace(tzinfo=None)
        page: ListingPage = [RepoListing(repo_id=str(self.root), author=None, sha=None, last_modified=stamp,
                                         paths=paths, repo_type=REPO_TYPE)]
        for skip in notes:
            what = {"not_regular": "not a regular file (fifo, socket or device)", "broken_link": "broken link",
                    "outside_link": "link to outside the folder", "unreadable": "unreadable"}[skip.kind]
            page.append(ListingProblem(str(self.root), f"{skip.path}: skipped, {what} {skip.detail}".strip()))
        yield page

    def repo_listing(self, repo_id: str, repo_type: str | None = None) -> RepoListing:
        return next(iter(self.list_pages({})))[0]

    def fetch_files(self, repo: RepoListing, paths: list[str] | None) -> RepoFiles:
        files = []
        problems: list[tuple[str, str]] = []
        for rel in paths if paths is not None else repo.paths or []:
            p = self.root / rel
            try:
                with open_regular(p) as f:  # (a fifo or device swapped in since the walk: refused, never opened blocking)
                    st = os.fstat(f.fileno())
                prev = self.known.get(rel) or {}
                if prev.get("size") == st.st_size and prev.get("mtime") == int(st.st_mtime_ns) and prev.get("sha256"):
                    hashes = dict(prev)
                elif self.hashes_by_reading:  # hashed by the sweep's content stage (e.g. Ray tasks)
                    hashes = {"size": st.st_size, "mtime": int(st.st_mtime_ns)}
                else:
                    h = hash_file(p)
                    hashes = {k: v for k, v in h.to_dict().items() if k not in ("path", "size") and v}
                    hashes["size"] = st.st_size
                    hashes["mtime"] = int(st.st_mtime_ns)
            except OSError as exc:
                self.errors.append((rel, f"cannot read: {exc.strerror}"))
                problems.append((rel, f"skipped, cannot read: {exc.strerror}"))
                continue
            files.append(RemoteFile(path=rel, size=st.st_size, sha256=hashes.get("sha256"), lfs=True,
                                    hashes={k: v for k, v in hashes.items() if k != "sha256"}))
        if not files and (paths or repo.paths) and self.errors:
            raise SkipRepo(f"no file could be read ({self.errors[0][1]})")
        return RepoFiles(repo=repo, files=files, method="local", requests=0, problems=problems)

    def read_header(self, repo_id: str, path: str, revision: str | None,
                    size: int | None, *, repo_type: str | None = None) -> tuple[SafetensorsHeader, int]:
        from mirrorwatch.formats.safetensors import read_header

        with open_regular(self.root / path) as f:
            header = read_header(f)
        return header, 8 + header.header_len

    def fetch_to(self, repo_id: str, path: str, revision: str | None, dest: Path, *, max_bytes: int,
                 repo_type: str | None = None) -> Path:
        """Local files are read where they are: nothing is copied."""
        p = self.root / path
        with open_regular(p) as f:  # (a fifo or device is refused here, never opened blocking)
            size = os.fstat(f.fileno()).st_size
        if size > max_bytes:
            raise MalformedFile(f"{path} is larger than the {max_bytes:,}-byte content-tier cap")
        return p

    @contextmanager
    def open_stream(self, repo_id: str, path: str, revision: str | None) -> Iterator[BinaryIO]:
        """A file's bytes as a stream, for hashing a file larger than the content-tier cap."""
        with open_regular(self.root / path) as f:
            yield f

    def archive_reader(self, f: HubFile) -> tuple[ReadRange, int, StreamRange | None] | None:
        """Range reads of one swept file of this folder (for archives' members; match/archives.py)."""
        p = (self.root / f.path).resolve()
        if not self.archives or not p.is_relative_to(self.root) or not p.is_file():
            return None
        read, size = local_reader(p)
        return read, size, local_stream(p)

    def repo_status(self, repo_id: str, *, repo_type: str | None = None) -> RepoStatus:
        root = Path(repo_id)
        if not root.is_dir():
            return RepoStatus(REMOVED, "folder no longer exists")
        files = []
        for p in self._walk() if root == self.root else []:
            files.append(RemoteFile(path=str(p.relative_to(self.root)), size=p.stat().st_size))
        return RepoStatus(LIVE, "", files=files)
