"""Untrusted text made safe to show, in the terminal and on web pages alike.

Hub file names, repo ids, uploader names, sheet cells and token labels come from people we do not
trust. Shown raw, control characters reach the terminal (ESC sequences that move the cursor, hide
rows, set the window title or make links), and bidirectional controls (U+202E RIGHT-TO-LEFT
OVERRIDE and friends) reorder what is shown, so "evil\u202egnp.safetensors" reads as a different
name. `safe_text` replaces each such character with a visible escape (``\\x1b``, ``\\u202e``): the
text stays recognisable, searchable and copyable, and nothing invisible acts on the reader.

Escaped: control characters (Unicode Cc: C0, DEL, C1; tab and newline only when asked), format
characters (Cf: bidi embeddings, overrides and isolates, marks, zero-width spaces, the BOM...;
except the zero-width joiner and non-joiner, which scripts and emoji need), line and paragraph
separators, and undecodable bytes (lone surrogates). The CLI adds Rich markup escaping on top
(cli/output.py); web pages apply this to every value they print (web/render.py), with Jinja's HTML
escaping after it."""

from __future__ import annotations

import unicodedata

_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_ALLOWED = frozenset({"\u200c", "\u200d"})  # zero-width non-joiner / joiner: needed by scripts and emoji


def _escape(ch: str) -> str:
    if unicodedata.category(ch) == "Cs":  # a lone surrogate: unicode_escape cannot encode it
        return f"\\u{ord(ch):04x}"
    return ch.encode("unicode_escape").decode("ascii")  # \x1b, \n, \u202e, \U000e0001


def needs_escaping(ch: str, keep: str = "") -> bool:
    return ch not in keep and ch not in _ALLOWED and unicodedata.category(ch) in _ESCAPED_CATEGORIES


def safe_text(text: str | None, *, keep_newlines: bool = False) -> str:
    """`text` with every control, bidi/format character and undecodable byte shown as a visible
    escape; newlines and tabs kept when `keep_newlines`."""
    if not text:
        return text or ""
    if text.isascii() and text.isprintable():  # most names: nothing to do
        return text
    keep = "\n\t" if keep_newlines else ""
    return "".join(_escape(ch) if needs_escaping(ch, keep) else ch for ch in text)


def csv_safe(value: object) -> object:
    """A CSV cell that a spreadsheet will not run as a formula: text starting with ``= + - @``, a tab
    or a carriage return gets a leading apostrophe (OWASP's CSV injection advice)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
