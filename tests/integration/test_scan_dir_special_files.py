"""`scan dir` never hangs on a fifo or a device file: non-regular files are skipped with a recorded
reason, and a fifo swapped in after the walk is refused without blocking (issue 13, defect 11)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from mirrorwatch.hashing.engine import hash_file
from mirrorwatch.hubs.base import RepoListing
from mirrorwatch.hubs.localdir.hub import LocalDirHub


def _model(path: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    save_file({"w": rng.standard_normal((16, 16), dtype=np.float32)}, str(path))


def _unblock(fifo: Path) -> None:
    """Release a reader stuck opening the fifo (only ever needed when the code under test blocks)."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
    except OSError:
        pass


def test_scan_dir_skips_a_fifo_with_a_recorded_reason(tmp_path, cli):
    store = tmp_path / "storage"
    store.mkdir()
    _model(store / "real.safetensors")
    fifo = store / "pipe.safetensors"
    os.mkfifo(fifo)
    try:
        out = cli("scan", "dir", str(store), "--json", timeout=60)
    finally:
        _unblock(fifo)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["status"] == "finished" and summary["counts"]["files"] == 1
    errors = cli("scan", "errors", str(summary["run_id"]), "--json")
    reasons = [e["reason"] for e in json.loads(errors.stdout)]
    assert any("pipe.safetensors" in r and "not a regular file" in r for r in reasons), reasons


@pytest.mark.parametrize("device", ["/dev/null", "/dev/zero"])
def test_a_device_file_linked_in_is_never_read(tmp_path, device):
    if not os.path.exists(device):
        pytest.skip(f"no {device}")
    # (a link to a device outside the folder is refused by the walker; open_regular refuses the device)
    with pytest.raises(OSError, match="not a regular file"):
        hash_file(device)


def test_a_fifo_swapped_in_after_the_walk_does_not_block(tmp_path):
    root = tmp_path / "storage"
    root.mkdir()
    target = root / "model.safetensors"
    _model(target)
    _model(root / "other.safetensors", seed=1)
    hub = LocalDirHub(root)
    listing = next(iter(hub.list_pages({})))[0]
    assert isinstance(listing, RepoListing) and listing.paths == ["model.safetensors", "other.safetensors"]
    target.unlink()
    os.mkfifo(target)  # swapped in between the walk and the read
    result: dict = {}

    def fetch() -> None:
        result["files"] = hub.fetch_files(listing, None)

    t = threading.Thread(target=fetch, daemon=True)
    t.start()
    t.join(10)
    blocked = t.is_alive()
    _unblock(target)
    t.join(5)
    assert not blocked, "fetch_files blocked opening a fifo"
    files = result["files"]
    assert [f.path for f in files.files] == ["other.safetensors"]
    assert files.problems == [("model.safetensors", "skipped, cannot read: not a regular file")]
    # the header tier and the content tier refuse it too, at once
    with pytest.raises(OSError, match="not a regular file"):
        hub.read_header(listing.repo_id, "model.safetensors", None, None)
    with pytest.raises(OSError, match="not a regular file"):
        hub.fetch_to(listing.repo_id, "model.safetensors", None, tmp_path / "x", max_bytes=10)
