"""json.loads for untrusted text: every failure is one ValueError with a one-line reason.

The standard parser raises RecursionError on deeply nested arrays (``[[[[...``), ValueError on
integers of thousands of digits (Python's int max_str_digits) and JSONDecodeError on syntax; and a
document nested a few hundred levels deep parses but then breaks code that walks it recursively
(``repr``, ``str``). :func:`loads_bounded` turns all of these into :class:`JsonRefused` and refuses
documents nested deeper than ``max_depth``."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["JsonRefused", "depth_within", "loads_bounded"]


class JsonRefused(ValueError):
    """Untrusted JSON that is malformed, too deep or holds an unreadable number."""


def depth_within(doc: Any, max_depth: int) -> bool:
    """Whether lists and objects in `doc` nest at most `max_depth` levels (iterative: no recursion)."""
    stack = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            node = node.values()
        elif not isinstance(node, list):
            continue
        if depth > max_depth:
            return False
        stack.extend((child, depth + 1) for child in node if isinstance(child, dict | list))
    return True


def loads_bounded(data: str | bytes, *, max_depth: int, **kwargs: Any) -> Any:
    """Parse JSON; raise JsonRefused (a ValueError) with a one-line reason on any problem."""
    try:
        doc = json.loads(data, **kwargs)
    except json.JSONDecodeError as exc:
        raise JsonRefused(f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise JsonRefused(f"malformed JSON: nested more than {max_depth} levels deep") from None
    except (ValueError, TypeError) as exc:  # an integer of thousands of digits, undecodable bytes
        raise JsonRefused(f"malformed JSON: {str(exc)[:200]}") from None
    if not depth_within(doc, max_depth):
        raise JsonRefused(f"malformed JSON: nested more than {max_depth} levels deep")
    return doc
