"""Hash forms: names, normalisation of pasted values, ambiguity, derived forms, Civitai's CRC32."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mirrorwatch.errors import InvalidHash, InvalidInput, MirrorwatchError
from mirrorwatch.hashing.forms import (
    FORMS,
    HashForm,
    candidate_forms,
    civitai_crc32,
    derived_forms,
    normalise_hash,
)

HELLO_SHA = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"


def test_registered_forms_and_lengths():
    assert set(FORMS) == {"sha256", "autov1", "autov2", "autov3", "autov3_full", "crc32", "blake3"}
    lengths = {name: form.hex_length for name, form in FORMS.items()}
    assert lengths == {
        "sha256": 64,
        "autov1": 8,
        "autov2": 10,
        "autov3": 12,
        "autov3_full": 64,
        "crc32": 8,
        "blake3": 64,
    }
    for name, form in FORMS.items():
        assert isinstance(form, HashForm)
        assert form.name == name
        assert form.label
    assert FORMS["autov2"].label == "AutoV2"
    assert FORMS["sha256"].label == "SHA256"


@pytest.mark.parametrize(
    "text",
    [
        HELLO_SHA,
        HELLO_SHA.upper(),
        f"  {HELLO_SHA.upper()}\n",
        f'"{HELLO_SHA}"',
        f"'{HELLO_SHA}'",
        f"sha256:{HELLO_SHA}",
        f"SHA256: {HELLO_SHA.upper()}",
        f"SHA-256={HELLO_SHA}",
        f"0x{HELLO_SHA}",
        f"0X{HELLO_SHA.upper()}",
    ],
)
def test_normalise_accepts_what_people_paste(text):
    assert normalise_hash(text) == HELLO_SHA


@pytest.mark.parametrize(
    "value", ["85114A0D", "B94D27B993", "e8b31e302d11", "crc32:85114a0d", "AutoV2: B94D27B993"]
)
def test_normalise_short_forms(value):
    normal = normalise_hash(value)
    assert normal == normal.lower()
    assert ":" not in normal and " " not in normal


def test_normalise_rejects_wrong_length_with_clear_message():
    with pytest.raises(InvalidHash) as info:
        normalise_hash(HELLO_SHA[:63])
    message = str(info.value)
    assert "is not a hash" in message
    assert "63 hex characters" in message
    assert "expected 8, 10, 12 or 64" in message
    assert "\n" not in message


@pytest.mark.parametrize("bad", ["xyz", "b94d27b99g", "b94d-27b993", "", "   ", "sha256:", "0x"])
def test_normalise_rejects_non_hex_and_empty(bad):
    with pytest.raises(InvalidHash) as info:
        normalise_hash(bad)
    assert "is not a hash" in str(info.value)
    assert isinstance(info.value, MirrorwatchError)


def test_normalise_rejects_non_text():
    with pytest.raises(InvalidHash):
        normalise_hash(1234)  # type: ignore[arg-type]


def test_long_bad_value_is_shortened_in_message():
    with pytest.raises(InvalidHash) as info:
        normalise_hash("a" * 500)
    assert len(str(info.value)) < 120
    assert "500 hex characters" in str(info.value)


def test_candidate_forms():
    assert candidate_forms(HELLO_SHA) == ("sha256", "blake3", "autov3_full")
    assert candidate_forms("e8b31e302d11") == ("autov3",)
    assert candidate_forms("b94d27b993") == ("autov2",)
    assert candidate_forms("85114a0d") == ("autov1", "crc32")
    with pytest.raises(InvalidHash):
        candidate_forms("abc")


def test_derived_forms():
    assert derived_forms("sha256", HELLO_SHA) == {"autov2": "b94d27b993"}
    assert derived_forms("sha256", HELLO_SHA.upper()) == {"autov2": "b94d27b993"}
    assert derived_forms("autov3_full", HELLO_SHA) == {"autov3": HELLO_SHA[:12]}
    for form in ("autov1", "autov2", "autov3", "crc32"):
        value = "a" * FORMS[form].hex_length
        assert derived_forms(form, value) == {}
    assert derived_forms("blake3", HELLO_SHA) == {}
    with pytest.raises(InvalidInput, match="unknown hash form"):
        derived_forms("md5", HELLO_SHA)
    with pytest.raises(InvalidHash):
        derived_forms("sha256", "b94d27b993")  # an AutoV2 is not a SHA256


def test_form_normalise_checks_its_own_length():
    assert FORMS["autov2"].normalise(" B94D27B993 ") == "b94d27b993"
    with pytest.raises(InvalidHash, match="AutoV2"):
        FORMS["autov2"].normalise("85114a0d")


def test_civitai_crc32_byte_order():
    assert civitai_crc32(zlib.crc32(b"hello world")) == "85114a0d"
    assert f"{zlib.crc32(b'hello world'):08X}" == "0D4A1185"
    assert civitai_crc32(0) == "00000000"
    assert civitai_crc32(0x12345678) == "78563412"


@given(
    st.sampled_from([8, 10, 12, 64]).flatmap(
        lambda n: st.text("0123456789abcdefABCDEF", min_size=n, max_size=n)
    ),
    st.sampled_from(["", "0x", "sha256:", "BLAKE3 = ", "autov3_full:"]),
    st.sampled_from(["", " ", "\t", '"']),
)
def test_normalise_is_idempotent_lowercase(value, prefix, pad):
    normal = normalise_hash(f"{pad}{prefix}{value}{pad}")
    assert normal == value.lower()
    assert normalise_hash(normal) == normal
    assert candidate_forms(normal)
