"""Written file sizes read as byte bounds (bank/sizes.py): units, rounding, thousands, bad input."""

from __future__ import annotations

import pytest

from mirrorwatch.bank.sizes import BadSize, parse_size, size_agrees, size_bounds, size_value


@pytest.mark.parametrize(("raw", "unit", "bounds"), [
    ("151234567", "", (151234567, 151234567)),
    ("151,234,567", "", (151234567, 151234567)),
    ("151 234 567 bytes", "", (151234567, 151234567)),
    (151234567, "", (151234567, 151234567)),
    # Civitai's sizeKB: KiB, exact to the byte when written in full (real answers, tests/data/real)
    (17.017578125, "kib", (17426, 17426)),
    (167938.8828125, "kib", (171969416, 171969416)),
    ("223124.37109375", "kb", (228479356, 228479356)),  # whole only in KiB: only that reading kept
    (6775430.35, "kib", (6938040674, 6938040683)),  # rounded to 2 decimals: +-0.005 KiB
    # rounded display sizes in ambiguous units cover both readings (1000 and 1024)
    ("144 KB", "", (143500, 147968)),
    ("144", "kb", (143500, 147968)),
    ("1.2 MB", "", (1150000, 1310720)),
    ("1.2MiB", "", (1205863, 1310720)),
    ("3 GiB", "", (2684354560, 3758096384)),
])
def test_sizes_parse_to_byte_bounds(raw, unit, bounds):
    assert parse_size(raw, unit) == bounds


@pytest.mark.parametrize("raw", ["", "  ", "0", 0, 0.0])
def test_blank_and_zero_are_unknown(raw):
    assert parse_size(raw, "kib") is None


@pytest.mark.parametrize(("raw", "why"), [
    ("-5", "negative"), (-1.5, "negative"), ("abc", "not a number"), ("12 parsecs", "unknown unit"),
    ("2 TB", "over 1 TiB"), ("1,5 MB", "grouped by 3"), ("1.5", "whole number of bytes"),
    (float("nan"), "not a number"), (True, "not a number"), ("1.2.3 MB", "not a number"),
])
def test_bad_sizes_are_refused_with_a_reason(raw, why):
    with pytest.raises(BadSize, match=why):
        parse_size(raw)


def test_stored_values_round_trip_and_agree():
    exact, ranged = size_value((100, 100)), size_value((90, 110))
    assert (exact, ranged) == ("100", "90-110")
    assert size_bounds(exact) == (100, 100) and size_bounds(ranged) == (90, 110)
    assert size_bounds("junk") is None and size_bounds("5-x") is None
    assert size_agrees({exact}, 100) and not size_agrees({exact}, 101)
    assert size_agrees({ranged, "junk"}, 110) and not size_agrees({ranged}, 111)
