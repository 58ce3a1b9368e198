"""Configuration shared by every package: where the database lives, where data files go.

Secrets (hub tokens, MIRRORWATCH_SECRET_KEY) come only from the environment. Hubs and their web
addresses are listed in `hubs/registry.py`."""

from __future__ import annotations

import os
import re
from pathlib import Path

from mirrorwatch.errors import InvalidInput

ENV_DB = "MIRRORWATCH_DB"
ENV_HOME = "MIRRORWATCH_HOME"
# The content tier's per-file read cap: a file larger than this is not copied or fingerprinted, only
# hashed in every form from a stream (its header still read by range requests).
ENV_CONTENT_CAP = "MIRRORWATCH_CONTENT_CAP"
DEFAULT_CONTENT_CAP = 2 * 1024**3

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "kib": 1024, "m": 1e6, "mb": 1e6, "mib": 1024**2,
          "g": 1e9, "gb": 1e9, "gib": 1024**3, "t": 1e12, "tb": 1e12, "tib": 1024**4}


def parse_size(text: str | None) -> int | None:
    """`10MB`, `1.5GiB`, `4096` -> bytes (None for nothing); InvalidInput for anything else."""
    if not text:
        return None
    m = _SIZE.match(text)
    if not m or (m.group(2) or "").lower() not in _UNITS:
        raise InvalidInput(f"not a size: {text!r} (try 10MB, 1.5GiB)")
    return int(float(m.group(1)) * _UNITS[(m.group(2) or "").lower()])


def content_cap() -> int:
    """The content tier's per-file read cap: $MIRRORWATCH_CONTENT_CAP (a size: 512MiB, 4GB), else 2 GiB."""
    raw = os.environ.get(ENV_CONTENT_CAP)
    try:
        cap = parse_size(raw) if raw else DEFAULT_CONTENT_CAP
    except InvalidInput:
        raise InvalidInput(f"{ENV_CONTENT_CAP} is not a size: {raw!r} (try 512MiB, 4GB)") from None
    if not cap or cap < 1024:
        raise InvalidInput(f"{ENV_CONTENT_CAP} must be at least 1 KiB, not {raw!r}")
    return cap


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
