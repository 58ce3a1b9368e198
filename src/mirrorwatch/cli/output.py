"""Small output helpers shared by commands: JSON to stdout, truncated hashes for tables, and `term`
for any hub- or user-controlled text printed through Rich."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.markup import escape

from mirrorwatch.display import safe_text


def term(value: object) -> str:
    """Untrusted text for Rich: control and bidi characters shown as escapes (mirrorwatch.display),
    then markup escaped, so "[link=...]" or an ESC sequence in a hub file name prints as itself."""
    return escape(safe_text("" if value is None else str(value)))


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def short(value: str | None, n: int = 12) -> str:
    """Cut to n characters, made safe to print (see term)."""
    if not value:
        return "-"
    return term(value if len(value) <= n else value[:n] + "…")
