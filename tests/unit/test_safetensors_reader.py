"""The bounded safetensors header reader on real files and on hostile ones."""

from __future__ import annotations

import contextlib
import io
import json
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file

from _hash_helpers import safetensors_bytes, write
from mirrorwatch.errors import MalformedFile, MirrorwatchError
from mirrorwatch.formats.safetensors import (
    DTYPE_BITS,
    SafetensorsError,
    SafetensorsHeader,
    TensorInfo,
    header_length,
    parse_header,
    read_header,
)


def parse_bytes(data: bytes, **kwargs) -> SafetensorsHeader:
    return read_header(io.BytesIO(data), **kwargs)


def reason(data: bytes, **kwargs) -> str:
    with pytest.raises(SafetensorsError) as info:
        parse_bytes(data, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def header_file(header: object, data: bytes = b"") -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def tensor(dtype="F32", shape=(2,), offsets=(0, 8)) -> dict:
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


# --------------------------------------------------------------------------- well-formed files


def test_reads_file_written_by_safetensors(tmp_path):
    path = tmp_path / "lora.safetensors"
    tensors = {
        "lora_unet_a.lora_down.weight": np.zeros((4, 768), dtype=np.float16),
        "lora_unet_a.lora_up.weight": np.ones((320, 4), dtype=np.float32),
        "lora_unet_a.alpha": np.array(4.0, dtype=np.float32),
        "step": np.array([7], dtype=np.int64),
    }
    metadata = {
        "ss_output_name": "synthetic_person_v1",
        "ss_tag_frequency": json.dumps({"10_zorblat woman": {"zorblat": 20}}),
        "sshs_model_hash": "AB" * 32,
        "sshs_legacy_hash": "12345678",
        "modelspec.title": "Synthetic",
        "modelspec.architecture": "stable-diffusion-v1/lora",
        "format": "pt",
    }
    save_file(tensors, str(path), metadata=metadata)
    header = read_header(path)
    size = path.stat().st_size
    assert header.data_start == 8 + header.header_len
    assert header.data_size == size - header.data_start
    assert header.metadata == metadata
    assert set(header.tensors) == set(tensors)
    down = header.tensors["lora_unet_a.lora_down.weight"]
    assert down.dtype == "F16" and down.shape == (4, 768) and down.nbytes == 4 * 768 * 2
    assert header.tensors["lora_unet_a.alpha"].shape == ()
    assert header.tensors["lora_unet_a.alpha"].numel == 1
    assert header.tensors["step"].dtype == "I64"
    # offsets point at the right bytes
    raw = path.read_bytes()
    up = header.tensors["lora_unet_a.lora_up.weight"]
    start = header.data_start + up.begin
    assert np.frombuffer(raw[start : header.data_start + up.end], dtype=np.float32).sum() == 320 * 4
    assert header.kohya_fields == {k: v for k, v in metadata.items() if k.startswith("ss_")}
    assert header.sshs_fields == {"sshs_model_hash": "AB" * 32, "sshs_legacy_hash": "12345678"}
    assert header.modelspec_fields == {
        "modelspec.title": "Synthetic",
        "modelspec.architecture": "stable-diffusion-v1/lora",
    }
    assert header.sshs_model_hash == "ab" * 32
    assert header.dtype_counts == {"F32": 2, "F16": 1, "I64": 1}
    assert header.tensor_bytes == sum(t.nbytes for t in header.tensors.values())


def test_path_file_object_and_unseekable_stream_agree(tmp_path):
    data = safetensors_bytes({"x": ("U8", [3], b"abc")}, {"a": "b"})
    path = write(tmp_path / "x.safetensors", data)
    from_path = read_header(path)
    with open(path, "rb") as f:
        f.read(5)  # a seekable file object is read from its start
        from_file = read_header(f)
    assert from_path == from_file

    class Stream(io.RawIOBase):
        def __init__(self, payload: bytes) -> None:
            self.inner = io.BytesIO(payload)

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return False

        def readinto(self, b) -> int:
            chunk = self.inner.read(min(len(b), 3))  # dribbles: short reads must be handled
            b[: len(chunk)] = chunk
            return len(chunk)

    from_stream = read_header(io.BufferedReader(Stream(data), buffer_size=2))
    assert from_stream.data_size is None
    assert from_stream.tensors == from_path.tensors
    assert from_stream.metadata == from_path.metadata


def test_no_metadata_and_no_tensors():
    header = parse_bytes(header_file({}))
    assert header.metadata == {} and header.tensors == {}
    assert header.sshs_model_hash is None
    assert header.kohya_fields == {} and header.modelspec_fields == {}


def test_sshs_model_hash_must_be_64_hex():
    header = parse_bytes(header_file({"__metadata__": {"sshs_model_hash": "not-a-hash"}}))
    assert header.sshs_model_hash is None
    assert header.sshs_fields == {"sshs_model_hash": "not-a-hash"}


def test_padding_after_json_is_allowed():
    data = safetensors_bytes({"x": ("U8", [2], b"ab")}, pad_header_to=4096)
    header = parse_bytes(data)
    assert header.header_len == 4096 and header.data_size == 2


def test_gaps_and_empty_tensors_are_allowed():
    data = header_file(
        {
            "a": tensor("U8", (4,), (0, 4)),
            "b": tensor("U8", (2,), (10, 12)),  # a gap before b
            "empty": tensor("F32", (0, 5), (4, 4)),  # zero-sized, sits at a's end
        },
        bytes(16),  # trailing bytes after b
    )
    header = parse_bytes(data)
    assert header.tensors["b"] == TensorInfo("U8", (2,), 10, 12)
    assert header.tensors["empty"].nbytes == 0


def test_every_spec_dtype_is_accepted():
    for dtype, bits in DTYPE_BITS.items():
        n = 16
        nbytes = n * bits // 8
        parsed = parse_bytes(header_file({"t": tensor(dtype, (n,), (0, nbytes))}, bytes(nbytes)))
        assert parsed.tensors["t"].dtype == dtype
    for name in ("F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2"):
        assert name in DTYPE_BITS


def test_offsets_checked_only_against_each_other_when_size_unknown():
    text = json.dumps({"t": tensor("F32", (1000,), (0, 4000))}).encode()
    header = parse_header(text, header_len=len(text), file_size=None)
    assert header.data_size is None
    assert header.tensors["t"].end == 4000
    with pytest.raises(SafetensorsError, match="past the data section"):
        parse_header(text, header_len=len(text), file_size=8 + len(text) + 3999)


# --------------------------------------------------------------------------- hostile files


def test_empty_file():
    assert "only 0 bytes" in reason(b"")


def test_shorter_than_length_field():
    assert "only 5 bytes" in reason(b"\x01\x00\x00\x00\x00")


def test_zero_header_length():
    assert "header length is 0" in reason(bytes(8) + b"{}")


def test_one_gigabyte_header_claim_is_refused_before_reading():
    claim = 1_000_000_000
    message = reason(struct.pack("<Q", claim) + b"{}")
    assert "1,000,000,000" in message and "25,000,000" in message and "cap" in message


def test_huge_u64_claim():
    assert "cap" in reason(b"\xff" * 8 + b"{}")


def test_custom_cap():
    data = safetensors_bytes({"x": ("U8", [1], b"a")}, pad_header_to=2000)
    assert "1,000-byte cap" in reason(data, max_header_bytes=1000)
    assert parse_bytes(data, max_header_bytes=2000).header_len == 2000


def test_header_longer_than_file():
    message = reason(struct.pack("<Q", 500) + b'{"a": 1}')
    assert "500" in message and "only 8" in message


def test_truncated_header_bytes():
    with pytest.raises(SafetensorsError, match="truncated"):
        parse_header(b'{"a"', header_len=10, file_size=None)


def test_header_length_function():
    assert header_length(struct.pack("<Q", 12)) == 12
    assert header_length(struct.pack("<Q", 12) + b"ignored") == 12
    with pytest.raises(SafetensorsError, match="beyond|only"):
        header_length(struct.pack("<Q", 12), file_size=15)
    with pytest.raises(SafetensorsError):
        header_length(b"abc")


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"\xff\xfe{}", "does not start with"),
        (b"{\xff\xfe}", "not UTF-8"),
        (b"{not json}", "not valid JSON"),
        (b'{"a": [1, 2}', "not valid JSON"),
        (b"{}garbage", "not valid JSON"),
        (b"[" * 5000 + b"]" * 5000, "does not start with"),
        (b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "not valid JSON"),
        (
            b'{"t": {"dtype": "U8", "shape": [' + b"9" * 5000 + b'], "data_offsets": [0, 1]}}',
            "not valid JSON",
        ),
    ],
)
def test_garbage_headers(payload, expected):
    assert expected in reason(struct.pack("<Q", len(payload)) + payload)


def test_json_not_an_object():
    assert "not a JSON object" in reason(header_file([1, 2, 3]))
    assert "not a JSON object" in reason(header_file("text"))
    assert "not a JSON object" in reason(header_file(42))


def test_metadata_must_be_str_to_str():
    assert "not a string" in reason(header_file({"__metadata__": {"epochs": 10}}))
    assert "not a string" in reason(header_file({"__metadata__": {"nested": {"a": "b"}}}))
    assert "not an object" in reason(header_file({"__metadata__": ["a", "b"]}))
    assert "not an object" in reason(header_file({"__metadata__": "text"}))


def test_duplicate_keys_are_refused():
    text = b'{"t": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, "t": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}'
    assert "twice" in reason(struct.pack("<Q", len(text)) + text + b"x")


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("just a string", "not an object"),
        ([1, 2], "not an object"),
        (tensor(dtype="F128"), "unknown dtype"),
        (tensor(dtype=None), "unknown dtype"),
        ({"shape": [1], "data_offsets": [0, 4]}, "unknown dtype"),
        (tensor(shape=(-1,)), "non-negative"),
        ({"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]}, "non-negative"),
        ({"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}, "non-negative"),
        ({"dtype": "F32", "shape": "2", "data_offsets": [0, 8]}, "non-negative"),
        ({"dtype": "F32", "shape": [1] * 40, "data_offsets": [0, 4]}, "dimensions"),
        (tensor(shape=(2**40, 2**40)), "too many elements"),
        (tensor(offsets=(0,)), "data_offsets"),
        (tensor(offsets=(0, 8, 16)), "data_offsets"),
        ({"dtype": "F32", "shape": [2]}, "data_offsets"),
        (tensor(offsets=(0, "8")), "data_offsets"),
        (tensor(offsets=(-8, 0)), "data_offsets"),
        (tensor(offsets=(8, 0)), "after end"),
        (tensor(offsets=(0, 12)), "needs 8"),
        (tensor("F4", (3,), (0, 2)), "whole bytes"),
        (tensor(offsets=(64, 72)), "past the data section"),
    ],
)
def test_bad_tensor_entries(entry, expected):
    message = reason(header_file({"weird": entry}, bytes(16)))
    assert expected in message
    assert "'weird'" in message


def test_overlapping_tensors():
    data = header_file({"a": tensor(offsets=(0, 8)), "b": tensor(offsets=(4, 12))}, bytes(16))
    message = reason(data)
    assert "overlap" in message and "'a'" in message and "'b'" in message


def test_identical_offsets_overlap():
    data = header_file({"a": tensor(offsets=(0, 8)), "b": tensor(offsets=(0, 8))}, bytes(8))
    assert "overlap" in reason(data)


def test_offsets_past_end_of_file(tmp_path):
    data = header_file({"a": tensor(offsets=(0, 8))}, bytes(7))
    path = write(tmp_path / "short.safetensors", data)
    with pytest.raises(SafetensorsError, match="past the data section"):
        read_header(path)


def test_long_names_are_shortened_in_messages():
    message = reason(header_file({"n" * 10_000: tensor(dtype="XX")}))
    assert len(message) < 200


def test_errors_are_user_errors_with_exit_code_2():
    with pytest.raises(MalformedFile) as info:
        parse_bytes(b"")
    assert isinstance(info.value, MirrorwatchError)
    assert info.value.exit_code == 2


def test_missing_file_is_an_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_header(tmp_path / "nope.safetensors")


def test_never_reads_past_the_header():
    data = header_file({"a": tensor(offsets=(0, 8))}, bytes(8))

    class Counting(io.BytesIO):
        biggest = 0

        def read(self, n=-1):
            assert n is not None and n >= 0, "unbounded read"
            Counting.biggest = max(Counting.biggest, n)
            return super().read(n)

    read_header(Counting(data))
    assert Counting.biggest <= len(data) - 8


# --------------------------------------------------------------------------- fuzzing


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200), st.booleans())
def test_random_bytes_never_crash(payload, with_length):
    """Only SafetensorsError comes out, whether or not the bytes carry a plausible length."""
    data = struct.pack("<Q", len(payload)) + payload if with_length else payload
    with contextlib.suppress(SafetensorsError):
        parse_bytes(data)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["__metadata__", "a", "b"]),
        json_values
        | st.fixed_dictionaries(
            {
                "dtype": st.sampled_from(["F32", "U8", "F4", "nope"]),
                "shape": st.lists(st.integers(-2, 2**33), max_size=3),
                "data_offsets": st.lists(st.integers(-2, 64), min_size=0, max_size=3),
            }
        ),
        max_size=3,
    ),
    st.integers(0, 64),
)
def test_random_headers_either_parse_consistently_or_fail_cleanly(header, data_len):
    data = header_file(header, bytes(data_len))
    try:
        parsed = parse_bytes(data)
    except SafetensorsError:
        return
    spans = sorted((t.begin, t.end) for t in parsed.tensors.values() if t.nbytes)
    for (_, end), (begin, _) in zip(spans, spans[1:], strict=False):
        assert begin >= end
    for t in parsed.tensors.values():
        assert 0 <= t.begin <= t.end <= data_len
        assert t.nbytes * 8 == t.numel * DTYPE_BITS[t.dtype]
    assert all(isinstance(v, str) for v in parsed.metadata.values())
