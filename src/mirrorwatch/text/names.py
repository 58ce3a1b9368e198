"""Names normalised for search: case-, accent- and punctuation-insensitive; the numbers a name
carries (versions, epochs), which must agree exactly for a name to be evidence."""

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


# Base-model tags name the model a LoRA was trained for, not its version ("SD1.5", "SDXL 1.0", "Flux.1"):
# left out before version numbers are compared. Matched on normalised text ("sd1.5" -> "sd1 5").
_BASE_TAGS = re.compile(
    r"\b(?:sd ?1 ?[45]|sd ?2(?: ?[01])?|sd ?3(?: ?5)?|sdxl(?: ?1(?: ?0)?)?|xl ?1 ?0|flux ?1|f1)\b"
)
_DIGITS = re.compile(r"\d+")


def version_numbers(text: str) -> tuple[int, ...]:
    """The numbers a name carries (versions v3/1.0, epochs -000010, other digits), sorted, as integers
    (leading zeros do not count). A ``.0`` part of a dotted version is dropped ("v1.0" is version 1),
    and base-model tags (SD1.5, SDXL 1.0, Flux.1) are not numbers of the name."""
    norm = _BASE_TAGS.sub(" ", normalise_name(text))
    numbers: list[int] = []
    prev_end = -2
    for m in _DIGITS.finditer(norm):
        value = int(m.group())
        dotted_part = prev_end == m.start() - 1 and norm[prev_end] == " "  # "1 0" from "1.0"
        prev_end = m.end()
        if value == 0 and dotted_part:
            continue
        numbers.append(value)
    return tuple(sorted(numbers))


def same_version(a: str, b: str) -> bool:
    """True when two names carry exactly the same numbers (see :func:`version_numbers`): a name is
    evidence for an entry only then, typo-tolerant as the rest of the comparison may be ("v5" is not a
    typo of "v3"; a version on one side only does not agree either)."""
    return version_numbers(a) == version_numbers(b)
