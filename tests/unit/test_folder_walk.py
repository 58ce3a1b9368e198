"""One folder walker for `scan dir` and `hash`: regular files only, symlinks followed only inside."""

from __future__ import annotations

import os

from mirrorwatch.hubs.base import ListingProblem
from mirrorwatch.hubs.localdir.hub import LocalDirHub
from mirrorwatch.hubs.localdir.walk import Skipped, walk_files


def make_tree(tmp_path):
    root = tmp_path / "store"
    (root / "sub").mkdir(parents=True)
    outside = tmp_path / "outside.safetensors"
    outside.write_bytes(b"x" * 10)
    (root / "a.safetensors").write_bytes(b"a" * 10)
    (root / "sub" / "b.ckpt").write_bytes(b"b" * 10)
    (root / "notes.txt").write_text("hi")
    os.symlink(root / "a.safetensors", root / "inside-link.safetensors")
    os.symlink(outside, root / "outside-link.safetensors")
    os.symlink(tmp_path / "missing", root / "broken.safetensors")
    os.symlink(root / "sub", root / "sub-link")  # a symlinked folder is never entered
    os.mkfifo(root / "pipe.safetensors")
    return root


def test_walker_rules_and_reasons(tmp_path):
    root = make_tree(tmp_path)
    skipped: list[Skipped] = []
    files = [os.path.relpath(p, root) for p in walk_files(str(root), skipped.append)]
    assert files == ["a.safetensors", "inside-link.safetensors", "notes.txt", os.path.join("sub", "b.ckpt")]
    kinds = {os.path.relpath(s.path, root): s.kind for s in skipped}
    assert kinds == {"broken.safetensors": "broken_link", "outside-link.safetensors": "outside_link",
                     "pipe.safetensors": "not_regular"}
    assert [s.is_error for s in skipped if s.kind == "broken_link"] == [True]


def test_local_hub_lists_what_the_walker_gives(tmp_path):
    root = make_tree(tmp_path)
    hub = LocalDirHub(root)
    [page] = list(hub.list_pages({}))
    listing, *problems = page
    # what the walker skipped among weight files is reported as listing problems (recorded by the sweep)
    assert all(isinstance(p, ListingProblem) and p.reason.startswith(str(root)) for p in problems)
    assert any("broken.safetensors: skipped, broken link" in p.reason for p in problems)
    assert listing.paths == ["a.safetensors", "inside-link.safetensors", os.path.join("sub", "b.ckpt")]
    assert [p for p, _ in hub.errors] == [str(root / "broken.safetensors")]
