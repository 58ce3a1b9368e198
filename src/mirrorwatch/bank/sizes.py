"""File sizes banks learn (issue 10): a sheet's size column, Civitai's ``files[].sizeKB``, a
ComfyUI-Manager ``size``. Sizes make an archive member's CRC-32 a real lead (match/archives.py).

How a size is kept: one ``entry_signal`` row of form ``"size"`` per banked file, value the size in
bytes as decimal text -- ``"151234567"`` when the source gave it exactly, ``"151234560-151234570"``
(inclusive bounds) when the source rounded it (``"1.2 MB"``, ``"144 KB"``, Civitai's two-decimal
``sizeKB`` for big files). Why a signal and not a new ``entry_file`` table: signals already carry an
entry's per-file facts (``file_name``), merge idempotently on re-import (unique entry/form/value),
are shown by ``lookup --json`` (``signals.size``) and the entry page, and need no migration. The
cost: a size is not tied to one of the entry's files, so an archive lead asks "does the member's
size equal one of this entry's banked file sizes" -- an entry with several files (rare: Civitai
lists pruned/full files as separate versions mostly) accepts a CRC-32 of one file with the size of
another. A CRC-32 collision that also lands on one of a handful of exact sizes is ~never.

Units. Civitai's ``sizeKB`` is KiB (bytes / 1024): real answers in tests/data/real hold
``"sizeKB": 17.017578125`` (= 17426 bytes exactly), ``223124.37109375`` (= 228479356 bytes) and
``167938.8828125`` (= 171969416 bytes) -- every fraction is a multiple of 1/1024, which a
thousand-based KB would not give; big files come rounded to two decimals (``6775430.35``), kept as a
range. Sheet units are what people type: ``KiB``/``MiB``/``GiB`` are binary; ``KB``/``MB``/``GB``
are ambiguous in practice (Windows and Civitai mean 1024, disk makers 1000), so a rounded value in
them keeps the range that covers both readings (a value written finer than a byte, like
``17.017578125 KB``, is whole in one reading only, and only that one is kept).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation


class BadSize(ValueError):
    """A written size that is not one (bank/records.py reports it as the row's problem)."""


#: The signal form of a banked file size.
SIZE_FORM = "size"
#: No model file is a terabyte; a size above this is a typo or a unit mistake (a row problem).
MAX_FILE_SIZE = 1024**4

_UNITS: dict[str, tuple[int, ...]] = {
    "": (1,), "b": (1,), "byte": (1,), "bytes": (1,),
    "k": (1000, 1024), "kb": (1000, 1024), "kib": (1024,),
    "m": (1000**2, 1024**2), "mb": (1000**2, 1024**2), "mib": (1024**2,),
    "g": (1000**3, 1024**3), "gb": (1000**3, 1024**3), "gib": (1024**3,),
    "t": (1000**4, 1024**4), "tb": (1000**4, 1024**4), "tib": (1024**4,),
}
_VALUE = re.compile(r"^\s*([0-9][0-9,_ \u00a0\u202f]*(?:\.[0-9]+)?|\.[0-9]+)\s*([a-z]*)\s*$", re.IGNORECASE)
_GROUPED = re.compile(r"^[0-9]{1,3}([,_ \u00a0\u202f][0-9]{3})+(\.[0-9]+)?$")


def _bounds(value: Decimal, mult: int, exact_input: bool) -> tuple[int, int] | None:
    """Whole byte counts the written value may stand for, or None when it names none."""
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    if exact_input and mult == 1:
        return (int(value), int(value)) if value == value.to_integral_value() else None
    half = Decimal(5).scaleb(exponent - 1) if exponent < 0 else Decimal("0.5")
    # the written precision: "144 KB" is 143.5-144.5 KB; "17.017578125 KB" is finer than a byte
    lo = math.ceil((value - half) * mult)
    hi = math.floor((value + half) * mult)
    return (lo, hi) if lo <= hi else None


def parse_size(raw: str | float | int, unit: str = "") -> tuple[int, int] | None:
    """A written size as (low, high) bytes, inclusive; None for a blank or zero ("unknown").

    ``unit`` is the column's unit when the cells have none (``"kb"`` for a ``sizeKB`` column).
    Raises BadSize for text that is not a size, a negative size, or one over 1 TiB."""
    if isinstance(raw, bool):
        raise BadSize(f"size is not a number: {raw!r}")
    if isinstance(raw, int | float):
        if isinstance(raw, float) and not math.isfinite(raw):
            raise BadSize(f"size is not a number: {raw!r}")
        if raw < 0:
            raise BadSize(f"size is negative: {raw!r}")
        text = repr(raw) if isinstance(raw, float) else str(raw)
        if "e" in text.lower():
            text = format(Decimal(text), "f")
    else:
        text = raw.strip()
    if not text:
        return None
    if text.startswith("-"):
        raise BadSize(f"size is negative: {text[:40]!r}")
    m = _VALUE.match(text)
    if not m:
        raise BadSize(f"size is not a number of bytes, KB, MB or GB: {text[:40]!r}")
    number, suffix = m.group(1).strip(), (m.group(2) or unit).lower()
    if suffix not in _UNITS:
        raise BadSize(f"size has an unknown unit {m.group(2)[:20]!r}: {text[:40]!r}")
    if any(c in number for c in ", _\u00a0\u202f"):
        if not _GROUPED.match(number):  # "1,5 MB" (a decimal comma) or "15,00": not a grouping
            raise BadSize(f"size {text[:40]!r} is not a number (thousands are grouped by 3 digits; "
                             "decimals take a point)")
        number = re.sub(r"[,_ \u00a0\u202f]", "", number)
    try:
        value = Decimal(number)
    except InvalidOperation:
        raise BadSize(f"size is not a number: {text[:40]!r}") from None
    if value == 0:
        return None
    bases = _UNITS[suffix]
    found = [b for b in (_bounds(value, mult, True) for mult in bases) if b is not None]
    if not found:
        raise BadSize(f"size {text[:40]!r} is not a whole number of bytes")
    lo, hi = min(b[0] for b in found), max(b[1] for b in found)
    lo = max(lo, 1)
    if lo > MAX_FILE_SIZE:
        raise BadSize(f"size {text[:40]!r} is over 1 TiB: not a model file (a unit mistake?)")
    return lo, hi


def size_value(bounds: tuple[int, int]) -> str:
    """The stored signal value of a size: "N" or "LO-HI"."""
    lo, hi = bounds
    return str(lo) if lo == hi else f"{lo}-{hi}"


def size_bounds(value: str) -> tuple[int, int] | None:
    """Parse a stored size signal value back; None for a value not written by size_value."""
    lo, sep, hi = value.partition("-")
    if not lo.isdigit() or (sep and not hi.isdigit()):
        return None
    return (int(lo), int(hi)) if sep else (int(lo), int(lo))


def size_agrees(values: set[str] | list[str], size: int) -> bool:
    """Whether a file of ``size`` bytes is one of the banked sizes ``values``."""
    for v in values:
        b = size_bounds(v)
        if b is not None and b[0] <= size <= b[1]:
            return True
    return False
