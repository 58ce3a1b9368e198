"""Hash forms: the ways a model file's identity is written down on hubs and in sheets.

Each form is one small registered class (in the style of ThreatExchange's signal types) and the
registry :data:`FORMS` is the only list of forms: every other list (``hash --json`` keys, export
columns, sheet column aliases, Civitai JSON keys, lookup queries, exact-match scores, the lengths a
pasted value may have and what a bare value may be) is generated from it. A form declares its name,
label, hex length, how it is derived from another form (:meth:`HashForm.derive`, the one place a
prefix is taken), its sheet aliases and Civitai key, its exact-match score and how it is shown.
Everything that stores or compares hashes goes through :func:`normalise_hash` so there is exactly
one normal form: lowercase hex, no prefix, no whitespace. ``docs/adding-a-hash-form.md`` shows what
a new form needs.

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
AutoV3 (all from the declared lengths). :func:`candidate_forms` says which forms a lookup must try.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from mirrorwatch.errors import InvalidHash, InvalidInput

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (`mirrorwatch hash` start-up)
if TYPE_CHECKING:
    from typing import ClassVar

__all__ = [
    "FORMS",
    "HashForm",
    "add_derived",
    "candidate_forms",
    "civitai_crc32",
    "civitai_forms",
    "civitai_hashes",
    "complete",
    "derive",
    "derived_forms",
    "describe_lengths",
    "display_order",
    "form_for_column",
    "hash_labels",
    "known_lengths",
    "normalise_hash",
    "register",
    "sheet_aliases",
    "sheet_forms",
    "unregister",
    "with_unstored",
]

_HEX = frozenset("0123456789abcdef")
_QUOTES = "\"'`\u2018\u2019\u201c\u201d"


def _shown(text: str, limit: int = 24) -> str:
    """A short quotable version of a bad value for an error message."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


class HashForm:
    """One way of writing a file's identity down. Subclasses set the class attributes.

    Only ``name``, ``label``, ``hex_length`` and ``description`` are required; the rest default to
    "not derived, no sheet column, not on Civitai, cannot match alone".
    """

    #: Key used everywhere: stored signal form, JSON key, export column.
    name: ClassVar[str]
    #: How people and Civitai write the form's name.
    label: ClassVar[str]
    #: Hex characters of a value (values of other lengths are not this form).
    hex_length: ClassVar[int]
    description: ClassVar[str]
    #: Regex matching the form's name as a prefix of a pasted value (``sha256:``); default: the name.
    paste_prefix: ClassVar[str] = ""
    #: The form this one is derived from by taking its first ``hex_length`` hex (see :meth:`derive`).
    derived_from: ClassVar[str | None] = None
    #: Whether a derived value is stored as its own row; if not, lookups answer it by a prefix
    #: range on the source form and views derive it on the way out (AutoV2).
    stored_when_derived: ClassVar[bool] = True
    #: A form whose values may also be written under this form's sheet column or Civitai key: a value
    #: of that form's length there is that form (Civitai's "AutoV3" may be the full 64 hex).
    column_also_takes: ClassVar[str | None] = None
    #: Sheet column headers naming this form, as :func:`mirrorwatch.bank.sheets` compares them
    #: (lower case, words separated by one space). Empty: no column of its own.
    sheet_aliases: ClassVar[tuple[str, ...]] = ()
    #: Key in Civitai's ``hashes`` object, ``None`` if Civitai does not publish it.
    civitai_key: ClassVar[str | None] = None
    #: Among forms of the same length, how likely a bare value is this one (lowest first; a sheet's
    #: "hash" column takes the first).
    guess_rank: ClassVar[int] = 9
    #: Exact tier: score of an agreement on this form alone; ``None``: too short to count alone.
    exact_score: ClassVar[float | None] = None
    #: Exact tier: score when this form and another form that cannot count alone both agree.
    corroborated_score: ClassVar[float | None] = None
    #: Which bytes the form hashes: "file" (a different SHA256 means a different file, so it rules
    #: out a short agreement) or "tensors" (survives header edits, so a different SHA256 does not).
    covers: ClassVar[str] = "file"
    #: Position in human-readable listings (``mirrorwatch hash`` table), lowest first.
    display_rank: ClassVar[int] = 9
    #: Case Civitai shows the form in (we store and print lower case).
    civitai_case: ClassVar[str] = "upper"
    #: The label inside a sentence ("full AutoV3"); default: the label.
    label_in_text: ClassVar[str] = ""

    def normalise(self, value: str) -> str:
        """Normalise ``value`` and check it has this form's length."""
        normal = normalise_hash(value)
        if len(normal) != self.hex_length:
            raise InvalidHash(
                f"'{_shown(normal)}' is not a valid {self.label}: {len(normal)} hex characters "
                f"({self.label} has {self.hex_length})"
            )
        return normal

    def derive(self, source_value: str) -> str:
        """This form's value from a (normalised) value of :attr:`derived_from`."""
        if self.derived_from is None:
            raise InvalidInput(f"{self.label} is not derived from another form")
        return source_value[: self.hex_length]

    def derived(self, value: str) -> dict[str, str]:
        """Shorter forms that follow from a (normalised) value of this form."""
        return {f.name: f.derive(value) for f in _DERIVED.get(self.name, ())}

    def civitai_show(self, value: str) -> str:
        """A value written as Civitai shows it."""
        return value.upper() if self.civitai_case == "upper" else value.lower()

    def __repr__(self) -> str:
        return f"<HashForm {self.name}>"


FORMS: dict[str, HashForm] = {}

# Generated from FORMS by _rebuild() whenever a form is registered.
_LENGTHS: tuple[int, ...] = ()
_CANDIDATES: dict[int, tuple[str, ...]] = {}
# The two patterns of normalise_hash, compiled on first use (registering the forms at import would
# otherwise compile them once per form: a fifth of `mirrorwatch hash`'s start-up).
_CLEAN_SRC = "$^"
_PREFIX_SRC = ""
_patterns: tuple[re.Pattern[str], re.Pattern[str]] | None = None
_DERIVED: dict[str, tuple[HashForm, ...]] = {}  # source -> forms derived from it
_SHEET_FORMS: tuple[str, ...] = ()
_DERIVED_ORDER: tuple[HashForm, ...] = ()  # derived forms, each after the form it derives from


def _expected() -> str:
    """'8, 10, 12 or 64'."""
    shown = [str(n) for n in _LENGTHS]
    return ", ".join(shown[:-1]) + " or " + shown[-1] if len(shown) > 1 else "".join(shown)


def _rebuild() -> None:
    global _LENGTHS, _CANDIDATES, _CLEAN_SRC, _PREFIX_SRC, _patterns, _DERIVED, _SHEET_FORMS, _DERIVED_ORDER
    _DERIVED = {}
    for f in FORMS.values():
        if f.derived_from:
            _DERIVED[f.derived_from] = (*_DERIVED.get(f.derived_from, ()), f)
    _SHEET_FORMS = tuple(f.name for f in FORMS.values() if f.sheet_aliases)

    def depth(f: HashForm) -> int:
        return 1 + depth(FORMS[f.derived_from]) if f.derived_from in FORMS else 0

    _DERIVED_ORDER = tuple(sorted((f for f in FORMS.values() if f.derived_from), key=depth))
    _LENGTHS = tuple(sorted({f.hex_length for f in FORMS.values()}))
    _CANDIDATES = {
        n: tuple(f.name for f in sorted((f for f in FORMS.values() if f.hex_length == n), key=lambda f: f.guess_rank))
        for n in _LENGTHS
    }
    longest_first = sorted(_LENGTHS, reverse=True)
    _CLEAN_SRC = "^(?:" + "|".join(f"[0-9a-fA-F]{{{n}}}" for n in longest_first) + ")$"
    # "sha256:", "SHA-256 =", "blake3:", "AutoV2:", "0x" ... in front of the hex. Longest names first
    # so "autov3_full" is not read as "autov3" followed by "_full".
    names = sorted((f.paste_prefix or re.escape(f.name) for f in FORMS.values()), key=len, reverse=True)
    _PREFIX_SRC = r"^(?:(?:" + "|".join(names) + r")\s*[:=]\s*)?(?:0x)?"
    _patterns = None


def _compiled() -> tuple[re.Pattern[str], re.Pattern[str]]:
    global _patterns
    got = _patterns
    if got is None:
        got = _patterns = (re.compile(_CLEAN_SRC), re.compile(_PREFIX_SRC, re.IGNORECASE))
    return got


def register(cls: type[HashForm]) -> type[HashForm]:
    """Class decorator: add one instance of a form to :data:`FORMS` under its name.

    Registration order is the order users see (``hash --json`` keys, export columns)."""
    if cls.name in FORMS:
        raise ValueError(f"hash form {cls.name!r} registered twice")
    FORMS[cls.name] = cls()
    _rebuild()
    return cls


def unregister(name: str) -> None:
    """Remove a form (for tests that register a throwaway one)."""
    if any(f.derived_from == name for f in FORMS.values()):
        raise ValueError(f"hash form {name!r} is the source of another form")
    FORMS.pop(name)
    _rebuild()


def known_lengths() -> tuple[int, ...]:
    """Hex lengths a hash form can have, shortest first."""
    return _LENGTHS


def normalise_hash(text: str) -> str:
    """Return the one normal form of a hash value: lowercase hex without prefix or whitespace.

    Accepts what people paste: surrounding whitespace or quotes, ``sha256:``/``0x``-style prefixes,
    upper case. Rejects anything that is not hex or not of a registered form's length (8, 10, 12 or
    64 characters) with an :class:`~mirrorwatch.errors.InvalidHash` whose message says what is wrong.
    """
    if not isinstance(text, str):
        raise InvalidHash(f"{text!r} is not a hash: expected text, got {type(text).__name__}")
    clean, prefix = _patterns or _compiled()
    if clean.match(text):  # fast path: already a bare hex value of a known length
        return text.lower()
    value = text.strip().strip(_QUOTES).strip()
    value = prefix.sub("", value, count=1).strip().lower()
    if not value:
        raise InvalidHash(f"'{_shown(text.strip())}' is not a hash: it is empty")
    bad = next((ch for ch in value if ch not in _HEX), None)
    if bad is not None:
        raise InvalidHash(
            f"'{_shown(value)}' is not a hash: {bad!r} is not a hex character "
            f"(expected {_expected()} characters 0-9 a-f)"
        )
    if len(value) not in _LENGTHS:
        raise InvalidHash(
            f"'{_shown(value)}' is not a hash: {len(value)} hex characters (expected {_expected()})"
        )
    return value


@register
class Sha256(HashForm):
    name = "sha256"
    label = "SHA256"
    hex_length = 64
    description = "SHA-256 of the whole file"
    paste_prefix = r"sha-?256"
    sheet_aliases = ("sha256", "sha 256", "sha-256", "sha256 hash", "file sha256", "sha256sum")
    civitai_key = "SHA256"
    guess_rank = 0
    exact_score = 1.0
    display_rank = 0


@register
class AutoV1(HashForm):
    name = "autov1"
    label = "AutoV1"
    hex_length = 8
    description = "SHA-256 of the 64 KiB at offset 1 MiB, first 8 hex (files of 2 MiB or more)"
    sheet_aliases = ("autov1", "auto v1")
    civitai_key = "AutoV1"
    guess_rank = 0  # Civitai's "short hash"
    corroborated_score = 0.9
    display_rank = 2


@register
class AutoV2(HashForm):
    name = "autov2"
    label = "AutoV2"
    hex_length = 10
    description = "first 10 hex of the SHA256"
    derived_from = "sha256"
    stored_when_derived = False  # answered from the SHA256 by prefix
    sheet_aliases = ("autov2", "auto v2", "short hash")
    civitai_key = "AutoV2"
    exact_score = 0.98
    display_rank = 1


@register
class AutoV3(HashForm):
    name = "autov3"
    label = "AutoV3"
    hex_length = 12
    description = "first 12 hex of the SHA-256 of a safetensors file's tensor data"
    derived_from = "autov3_full"
    column_also_takes = "autov3_full"
    sheet_aliases = ("autov3", "auto v3")
    civitai_key = "AutoV3"
    exact_score = 0.99
    covers = "tensors"
    display_rank = 3


@register
class AutoV3Full(HashForm):
    name = "autov3_full"
    label = "AutoV3 (full)"
    label_in_text = "full AutoV3"
    hex_length = 64
    description = "SHA-256 of a safetensors file's tensor data (kohya's sshs_model_hash)"
    paste_prefix = r"autov3[_-]?full"
    guess_rank = 2
    exact_score = 1.0
    covers = "tensors"
    display_rank = 4


@register
class Crc32(HashForm):
    name = "crc32"
    label = "CRC32"
    hex_length = 8
    description = "CRC-32 of the whole file, bytes in Civitai's (little-endian) order"
    paste_prefix = r"crc-?32"
    sheet_aliases = ("crc32", "crc")
    civitai_key = "CRC32"
    guess_rank = 1
    corroborated_score = 0.9
    display_rank = 5


@register
class Blake3(HashForm):
    name = "blake3"
    label = "BLAKE3"
    hex_length = 64
    description = "BLAKE3 of the whole file"
    sheet_aliases = ("blake3",)
    civitai_key = "BLAKE3"
    guess_rank = 1
    exact_score = 1.0
    display_rank = 6


def candidate_forms(normalised: str) -> tuple[str, ...]:
    """Forms a normalised value may be, most likely first (a lookup tries them all)."""
    try:
        return _CANDIDATES[len(normalised)]
    except KeyError:
        raise InvalidHash(
            f"'{_shown(normalised)}' is not a hash: {len(normalised)} hex characters "
            f"(expected {_expected()})"
        ) from None


def _form(name: str) -> HashForm:
    try:
        return FORMS[name]
    except KeyError:
        raise InvalidInput(f"unknown hash form {name!r} (known: {', '.join(FORMS)})") from None


def derived_forms(form: str, value: str) -> dict[str, str]:
    """Forms that follow from ``value`` of ``form``: sha256 gives autov2, autov3_full gives autov3."""
    hash_form = _form(form)
    return hash_form.derived(hash_form.normalise(value))


def derive(form: str, source_value: str) -> str:
    """The value of derived ``form`` from a normalised value of its source (``derive("autov2", sha)``)."""
    return _form(form).derive(source_value)


def complete(values: Mapping[str, str | None]) -> dict[str, str | None]:
    """``values`` by form with every derivable form filled in from its source, in registry order.

    A form missing from ``values`` is ``None`` unless it can be derived; a derived form is always
    taken from its source when the source is known (one derivation, never two disagreeing copies).
    """
    known = add_derived({k: v for k, v in values.items() if v})
    return {name: known.get(name) for name in FORMS}


def add_derived(values: dict[str, str]) -> dict[str, str]:
    """Fill in, in place, every form derivable from the forms in ``values`` (a derived form is always
    taken from its source when the source is there). Returns ``values``."""
    for f in _DERIVED_ORDER:
        source = values.get(f.derived_from)  # type: ignore[arg-type]
        if source:
            values[f.name] = f.derive(source)
    return values


def with_unstored(values: dict[str, list[str]]) -> dict[str, list[str]]:
    """Add the derived forms that are never stored (AutoV2) to a form -> values mapping read from the
    database, from their sources, when the mapping has none of them. Changes and returns ``values``."""
    for f in FORMS.values():
        if not f.stored_when_derived and f.derived_from in values and f.name not in values:
            values[f.name] = [f.derive(v) for v in values[f.derived_from]]
    return values


def form_for_column(form: str, value: str) -> str:
    """The form of a normalised ``value`` given under ``form``'s sheet column or Civitai key.

    Raises :class:`~mirrorwatch.errors.InvalidHash` when the length fits neither the form nor the
    form it also takes (a 64-hex "AutoV3" is a full AutoV3)."""
    hash_form = _form(form)
    if len(value) == hash_form.hex_length:
        return form
    other = hash_form.column_also_takes
    if other is not None and len(value) == FORMS[other].hex_length:
        return other
    raise InvalidHash(f"{hash_form.label} must be {hash_form.hex_length} hex characters, got {len(value)}")


def sheet_forms() -> tuple[str, ...]:
    """Forms that have a sheet column of their own, in registry order."""
    return _SHEET_FORMS


def sheet_aliases() -> dict[str, tuple[str, ...]]:
    """Sheet field (form name) -> column headers naming it."""
    return {f.name: f.sheet_aliases for f in FORMS.values() if f.sheet_aliases}


def civitai_forms() -> dict[str, str]:
    """Civitai ``hashes`` key, lower case -> form name."""
    return {f.civitai_key.lower(): f.name for f in FORMS.values() if f.civitai_key}


def civitai_hashes(values: Mapping[str, str | None]) -> dict[str, str]:
    """A Civitai ``hashes`` object (its keys, its upper case) from form -> value."""
    return {f.civitai_key: f.civitai_show(v) for f in FORMS.values()
            if f.civitai_key and (v := values.get(f.name))}


def describe_lengths() -> str:
    """What a bare value of each length may be, longest first, for people:
    '64 hex (SHA256, BLAKE3 or full AutoV3), 12 (AutoV3), 10 (AutoV2) or 8 (AutoV1 or CRC32)'."""

    def labels(n: int) -> str:
        shown = [FORMS[f].label_in_text or FORMS[f].label for f in _CANDIDATES[n]]
        return ", ".join(shown[:-1]) + " or " + shown[-1] if len(shown) > 1 else shown[0]

    parts = [f"{n}{' hex' if i == 0 else ''} ({labels(n)})" for i, n in enumerate(sorted(_LENGTHS, reverse=True))]
    return ", ".join(parts[:-1]) + " or " + parts[-1] if len(parts) > 1 else parts[0]


def hash_labels() -> str:
    """'SHA256, AutoV1, AutoV2, AutoV3, CRC32, BLAKE3': the forms Civitai shows, for a search box hint."""
    return ", ".join(f.label for f in FORMS.values() if f.civitai_key)


def display_order(names: Iterable[str] | None = None) -> list[str]:
    """Form names (all, or the given ones) in the order people read them."""
    chosen = list(FORMS) if names is None else [n for n in names if n in FORMS]
    return sorted(chosen, key=lambda n: FORMS[n].display_rank)


def civitai_crc32(crc: int) -> str:
    """Write a CRC-32 (as :func:`zlib.crc32` returns it) the way Civitai shows it, lowercase.

    Civitai prints the four bytes of the CRC least significant first, so ``hello world``
    (zlib.crc32 = 0x0D4A1185) is shown as ``85114a0d``.
    """
    return (crc & 0xFFFFFFFF).to_bytes(4, "little").hex()
