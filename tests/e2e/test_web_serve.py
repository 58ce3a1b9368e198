"""`mirrorwatch serve`: the real command starts uvicorn on the configured database; a user made with
`mirrorwatch user add` signs in; API tokens made with `user token create` work against it."""

from __future__ import annotations

import os
import re
import signal
import subprocess

import httpx
import pytest

from procs import start_serve


@pytest.mark.slow
def test_serve_with_cli_made_accounts(cli, db_path):
    assert cli("user", "add", "admin1", "--role", "admin", "--password-stdin", input="admin1-password\n").returncode == 0
    token = cli("user", "token", "create", "admin1", "--name", "script").stdout.strip()
    env = {**os.environ, "MIRRORWATCH_DB": str(db_path)}
    env.pop("MIRRORWATCH_SECRET_KEY", None)
    proc, base = start_serve([], env, timeout=60)
    try:
        with httpx.Client(base_url=base) as c:
            assert c.get("/").status_code == 303
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text).group(1)
            r = c.post("/login", data={"name": "admin1", "password": "admin1-password", "csrf_token": csrf})
            assert r.status_code == 303
            assert "Dashboard" in c.get("/").text
            assert c.get("/admin/users").status_code == 200
        r = httpx.get(base + "/api/me", headers={"Authorization": f"Bearer {token}"})
        assert r.json()["user"]["name"] == "admin1"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            out = proc.communicate(timeout=15)[0]
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out = proc.communicate()[0]
    assert f"mirrorwatch on {base}/" in out
    assert "Traceback" not in out
