"""Hash forms: the ways a model file's identity is written down on hubs and in sheets.

Each form is one small registered class (in the style of ThreatExchange's signal types): it knows
its name, how many hex characters it has, the label Civitai shows, how to normalise a value typed
or pasted by a person, and which shorter forms can be derived from it. Everything that stores or
compares hashes goes through :func:`normalise_hash` so there is exactly one normal form:
lowercase hex, no prefix, no whitespace.

The forms (see DESIGN.md, "Hash forms"):

======== ======= ==============================================================================
name      hex    definition
======== ======= ==============================================================================
sha256    64     SHA-256 of the whole file
autov1     8     SHA-256 of the 64 KiB at offset 1 MiB, first 8 hex; none for files under 2 MiB
autov2    10     first 10 hex of sha256
autov3    12     first 12 hex of autov3_full
autov3_full 64   SHA-256 of the bytes after the safetensors header (kohya's ``sshs_model_hash``)
crc32      8     CRC-32 of the whole file, bytes in Civitai's (little-endian) order
blake3    64     BLAKE3 of the whole file
======== ======= ==============================================================================

A bare value is ambiguous: 8 hex may be AutoV1 or CRC32, 64 hex may be SHA256, BLAKE3 or a full
AutoV3. :func:`candidate_forms` says which forms a lookup must try.
"""

from __future__ import annotations

import re
from typing import ClassVar

from mirrorwatch.errors import InvalidHash, InvalidInput

__all__ = [
    "FORMS",
    "KNOWN_LENGTHS",
    "HashForm",
    "candidate_forms",
    "civitai_crc32",
    "derived_forms",
    "normalise_hash",
    "register",
]

#: Hex lengths a hash form can have, shortest first.
KNOWN_LENGTHS: tuple[int, ...] = (8, 10, 12, 64)

_HEX = frozenset("0123456789abcdef")
_CLEAN = re.compile(r"^(?:[0-9a-fA-F]{64}|[0-9a-fA-F]{12}|[0-9a-fA-F]{10}|[0-9a-fA-F]{8})$")
_QUOTES = "\"'`\u2018\u2019\u201c\u201d"
# "sha256:", "SHA-256 =", "blake3:", "AutoV2:", "0x" ... in front of the hex. Longest names first so
# "autov3_full" is not read as "autov3" followed by "_full".
_PREFIX = re.compile(
    r"^(?:(?:sha-?256|autov3[_-]?full|autov[123]|crc-?32|blake3)\s*[:=]\s*)?(?:0x)?",
    re.IGNORECASE,
)


def _shown(text: str, limit: int = 24) -> str:
    """A short quotable version of a bad value for an error message."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def normalise_hash(text: str) -> str:
    """Return the one normal form of a hash value: lowercase hex without prefix or whitespace.

    Accepts what people paste: surrounding whitespace or quotes, ``sha256:``/``0x``-style prefixes,
    upper case. Rejects anything that is not hex or not 8, 10, 12 or 64 characters long with an
    :class:`~mirrorwatch.errors.InvalidHash` whose message says what is wrong.
    """
    if not isinstance(text, str):
        raise InvalidHash(f"{text!r} is not a hash: expected text, got {type(text).__name__}")
    if _CLEAN.match(text):  # fast path: already a bare hex value of a known length
        return text.lower()
    value = text.strip().strip(_QUOTES).strip()
    value = _PREFIX.sub("", value, count=1).strip().lower()
    if not value:
        raise InvalidHash(f"'{_shown(text.strip())}' is not a hash: it is empty")
    bad = next((ch for ch in value if ch not in _HEX), None)
    if bad is not None:
        raise InvalidHash(
            f"'{_shown(value)}' is not a hash: {bad!r} is not a hex character "
            "(expected 8, 10, 12 or 64 characters 0-9 a-f)"
        )
    if len(value) not in KNOWN_LENGTHS:
        raise InvalidHash(
            f"'{_shown(value)}' is not a hash: {len(value)} hex characters (expected 8, 10, 12 or 64)"
        )
    return value


class HashForm:
    """One way of writing a file's identity down. Subclasses set the class attributes."""

    name: ClassVar[str]
    label: ClassVar[str]
    hex_length: ClassVar[int]
    description: ClassVar[str]

    def normalise(self, value: str) -> str:
        """Normalise ``value`` and check it has this form's length."""
        normal = normalise_hash(value)
        if len(normal) != self.hex_length:
            raise InvalidHash(
                f"'{_shown(normal)}' is not a valid {self.label}: {len(normal)} hex characters "
                f"({self.label} has {self.hex_length})"
            )
        return normal

    def derived(self, value: str) -> dict[str, str]:
        """Shorter forms that follow from a (normalised) value of this form."""
        return {}

    def __repr__(self) -> str:
        return f"<HashForm {self.name}>"


FORMS: dict[str, HashForm] = {}


def register(cls: type[HashForm]) -> type[HashForm]:
    """Class decorator: add one instance of a form to :data:`FORMS` under its name."""
    if cls.name in FORMS:
        raise ValueError(f"hash form {cls.name!r} registered twice")
    FORMS[cls.name] = cls()
    return cls


@register
class Sha256(HashForm):
    name = "sha256"
    label = "SHA256"
    hex_length = 64
    description = "SHA-256 of the whole file"

    def derived(self, value: str) -> dict[str, str]:
        return {"autov2": value[:10]}


@register
class AutoV1(HashForm):
    name = "autov1"
    label = "AutoV1"
    hex_length = 8
    description = "SHA-256 of the 64 KiB at offset 1 MiB, first 8 hex (files of 2 MiB or more)"


@register
class AutoV2(HashForm):
    name = "autov2"
    label = "AutoV2"
    hex_length = 10
    description = "first 10 hex of the SHA256"


@register
class AutoV3(HashForm):
    name = "autov3"
    label = "AutoV3"
    hex_length = 12
    description = "first 12 hex of the SHA-256 of a safetensors file's tensor data"


@register
class AutoV3Full(HashForm):
    name = "autov3_full"
    label = "AutoV3 (full)"
    hex_length = 64
    description = "SHA-256 of a safetensors file's tensor data (kohya's sshs_model_hash)"

    def derived(self, value: str) -> dict[str, str]:
        return {"autov3": value[:12]}


@register
class Crc32(HashForm):
    name = "crc32"
    label = "CRC32"
    hex_length = 8
    description = "CRC-32 of the whole file, bytes in Civitai's (little-endian) order"


@register
class Blake3(HashForm):
    name = "blake3"
    label = "BLAKE3"
    hex_length = 64
    description = "BLAKE3 of the whole file"


_CANDIDATES: dict[int, tuple[str, ...]] = {
    64: ("sha256", "blake3", "autov3_full"),
    12: ("autov3",),
    10: ("autov2",),
    8: ("autov1", "crc32"),
}


def candidate_forms(normalised: str) -> tuple[str, ...]:
    """Forms a normalised value may be, most likely first (a lookup tries them all)."""
    try:
        return _CANDIDATES[len(normalised)]
    except KeyError:
        raise InvalidHash(
            f"'{_shown(normalised)}' is not a hash: {len(normalised)} hex characters "
            "(expected 8, 10, 12 or 64)"
        ) from None


def derived_forms(form: str, value: str) -> dict[str, str]:
    """Forms that follow from ``value`` of ``form``: sha256 gives autov2, autov3_full gives autov3."""
    try:
        hash_form = FORMS[form]
    except KeyError:
        raise InvalidInput(f"unknown hash form {form!r} (known: {', '.join(FORMS)})") from None
    return hash_form.derived(hash_form.normalise(value))


def civitai_crc32(crc: int) -> str:
    """Write a CRC-32 (as :func:`zlib.crc32` returns it) the way Civitai shows it, lowercase.

    Civitai prints the four bytes of the CRC least significant first, so ``hello world``
    (zlib.crc32 = 0x0D4A1185) is shown as ``85114a0d``.
    """
    return (crc & 0xFFFFFFFF).to_bytes(4, "little").hex()
