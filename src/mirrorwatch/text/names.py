"""Names normalised for search: case-, accent- and punctuation-insensitive."""

from __future__ import annotations

import re
import unicodedata

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)

# Names that identify nothing: never used as name evidence on their own.
GENERIC_NAMES = frozenset(
    {
        "lora", "loras", "model", "models", "test", "test model", "testmodel", "my lora", "new lora",
        "lora model", "checkpoint", "untitled", "last", "final", "output", "v1", "v2", "sdxl", "sd15",
        "flux", "pony", "style", "character", "person", "woman", "man", "girl", "boy",
    }
)


def normalise_name(text: str) -> str:
    """Lower-case, strip accents (NFKD minus combining marks), punctuation to spaces, collapse spaces."""
    if not text:
        return ""
    if text.isascii():  # most names: no accents to strip
        return " ".join(_NON_WORD.sub(" ", text.lower()).split())
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(_NON_WORD.sub(" ", stripped.casefold()).split())


def is_generic(text: str) -> bool:
    norm = normalise_name(text)
    return not norm or norm in GENERIC_NAMES or len(norm) < 3
