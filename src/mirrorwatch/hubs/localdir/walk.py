"""The one folder walker: which files under a folder count, and why the others were skipped.

Used by the local-folder hub and by `mirrorwatch hash`. Rules: regular files only (fifos, sockets
and devices are skipped with a reason); a symlink is followed only when its target stays inside the
folder, and a symlinked folder is never entered (its files, if inside, are reached directly);
broken symlinks and unreadable entries are reported; the order is sorted and stable."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

SkipKind = Literal["unreadable", "broken_link", "outside_link", "not_regular"]


@dataclass(frozen=True)
class Skipped:
    path: str
    kind: SkipKind
    detail: str = ""

    @property
    def is_error(self) -> bool:
        """A problem worth an error (unreadable, broken link); the rest are notes."""
        return self.kind in ("unreadable", "broken_link")


def is_inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def walk_files(root: str, on_skip: Callable[[Skipped], None] | None = None) -> Iterator[str]:
    """Paths of the regular files under `root` (as joined from `root`), by the rules above."""
    real_root = os.path.realpath(root)
    skip = on_skip or (lambda _s: None)

    def onerror(exc: OSError) -> None:
        skip(Skipped(exc.filename or root, "unreadable", str(exc.strerror or exc)))

    for dirpath, dirnames, filenames in os.walk(root, onerror=onerror, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]):
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                target = os.path.realpath(full)
                if not os.path.exists(target):
                    skip(Skipped(full, "broken_link"))
                    continue
                if not is_inside(target, real_root):
                    skip(Skipped(full, "outside_link"))
                    continue
                if os.path.isdir(target):
                    continue
            try:
                mode = os.stat(full).st_mode
            except OSError as exc:
                skip(Skipped(full, "unreadable", str(exc.strerror or exc)))
                continue
            if stat.S_ISREG(mode):
                yield full
            else:
                skip(Skipped(full, "not_regular"))
