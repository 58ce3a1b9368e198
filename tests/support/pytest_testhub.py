"""pytest fixtures for driving the test hub (mirrorwatch.testhub) with the real huggingface_hub client.

Use them from a test module with
    from pytest_testhub import hf_env, testhub  # noqa: F401
or `pytest_plugins = ["pytest_testhub"]` (tests/support is on sys.path, see tests/conftest.py).

`hf_env` isolates the client: temp HF_HOME/HF_HUB_CACHE, no HF_TOKEN, implicit tokens disabled.
The client reads some of these at import time, so its `constants` are patched too; a stored token
is therefore never sent to the test hub. `testhub` is a factory: `testhub(hub_or_repos, **serve_kwargs)`
returns a started RunningHub that is stopped after the test.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mirrorwatch.testhub import Hub, Repo, RunningHub, serve


def isolate_hf_client(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """Point the huggingface_hub client at throw-away folders and make it anonymous."""
    from huggingface_hub import constants

    cache = home / "hub"
    cache.mkdir(parents=True, exist_ok=True)
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_IMPLICIT_TOKEN", True, raising=False)
    monkeypatch.setattr(constants, "HF_HOME", str(home), raising=False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache), raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"), raising=False)
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"), raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False, raising=False)
    assert "HF_TOKEN" not in os.environ


@pytest.fixture
def hf_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An anonymous huggingface_hub client with temp cache folders; returns HF_HOME."""
    home = tmp_path / "hf-home"
    isolate_hf_client(monkeypatch, home)
    return home


@pytest.fixture
def testhub(hf_env: Path) -> Iterator[Callable[..., RunningHub]]:
    """Factory: `testhub(Hub | [Repo...], faults=..., quotas=..., page_size=...)` -> RunningHub."""
    started: list[RunningHub] = []

    def start(hub: Hub | Iterable[Repo], **kwargs: Any) -> RunningHub:
        running = serve(hub, **kwargs)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()
