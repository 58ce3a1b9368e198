"""Configuration shared by every package: where the database lives, where data files go.

Secrets (hub tokens, MIRRORWATCH_SECRET_KEY) come only from the environment. Hubs and their web
addresses are listed in `hubs/registry.py`."""

from __future__ import annotations

import os
from pathlib import Path

ENV_DB = "MIRRORWATCH_DB"
ENV_HOME = "MIRRORWATCH_HOME"


def data_home() -> Path:
    """Per-user data folder: $MIRRORWATCH_HOME, else $XDG_DATA_HOME/mirrorwatch, else ~/.local/share/mirrorwatch."""
    if os.environ.get(ENV_HOME):
        return Path(os.environ[ENV_HOME]).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "mirrorwatch"


def resolve_db_url(value: str | None = None) -> str:
    """Turn `--db`/$MIRRORWATCH_DB (a SQLAlchemy URL or a file path) into a SQLAlchemy URL."""
    raw = value or os.environ.get(ENV_DB)
    if not raw:
        path = data_home() / "mirrorwatch.db"
        return f"sqlite:///{path}"
    if "://" in raw:
        return raw
    return f"sqlite:///{Path(raw).expanduser().resolve()}"


def sqlite_path(url: str) -> Path | None:
    """The file behind a sqlite URL, or None for other databases / in-memory."""
    if not url.startswith("sqlite"):
        return None
    rest = url.split(":///", 1)[1] if ":///" in url else ""
    if not rest or rest == ":memory:":
        return None
    return Path(rest)


def sidecar_dir(url: str) -> Path:
    """Folder for files kept beside the database (e.g. the fingerprint index)."""
    p = sqlite_path(url)
    if p is not None:
        return p.parent / (p.stem + ".d")
    return data_home() / "index"
