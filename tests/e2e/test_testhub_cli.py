"""The test hub's command line (`python -m mirrorwatch.testhub`) as a subprocess: serves until SIGTERM,
refuses bad arguments with a one-line error (moved from unit/test_testhub_model.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx


def test_command_line_serves_until_sigterm(tmp_path: Path):
    url_file = tmp_path / "url"
    local = tmp_path / "removed.safetensors"
    local.write_bytes(b"removed model bytes")
    env = {k: v for k, v in os.environ.items() if k != "HF_TOKEN"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mirrorwatch.testhub", "--repos", "25", "--seed", "1", "--latency-ms", "1",
         "--url-file", str(url_file), "--plant", f"demo-user/reupload={local}:loras/renamed.safetensors"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 20
        while not url_file.exists() or not url_file.read_text().strip():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.05)
        url = url_file.read_text().strip()
        assert url.startswith("http://127.0.0.1:")
        with httpx.Client() as http:
            ids = [m["id"] for m in http.get(f"{url}/api/models", params={"limit": 1000}).json()]
            assert "demo-user/reupload" in ids
            r = http.get(f"{url}/demo-user/reupload/resolve/main/loras/renamed.safetensors", follow_redirects=True)
            assert r.content == b"removed model bytes"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert url in out and "25 repos" in out


def test_command_line_rejects_bad_plant(tmp_path: Path):
    r = subprocess.run([sys.executable, "-m", "mirrorwatch.testhub", "--repos", "1", "--plant", "nonsense"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "REPO_ID=LOCAL_FILE" in r.stderr and "Traceback" not in r.stderr
