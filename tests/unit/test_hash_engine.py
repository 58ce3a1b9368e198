"""The hash engine against an independent naive reimplementation, on generated files of every
awkward size and layout."""

from __future__ import annotations

import hashlib
import threading
import tracemalloc

import numpy as np
import pytest
from safetensors.numpy import save_file

from _hash_helpers import TWO_MIB, naive_hashes, random_bytes, safetensors_bytes, write
from mirrorwatch.hashing import engine
from mirrorwatch.hashing.engine import FileHashes, hash_bytes, hash_file, safetensors_data_start

KEYS = ["path", "size", "sha256", "autov1", "autov2", "autov3", "autov3_full", "crc32", "blake3"]
SMALL_CHUNK = 64 * 1024


def check(path, data, **kwargs):
    """hash_file and hash_bytes both equal the naive definition."""
    expected = naive_hashes(data)
    got = hash_file(path, **kwargs).to_dict()
    assert got.pop("path") == str(path)
    assert got == expected
    from_bytes = hash_bytes(data).to_dict()
    from_bytes.pop("path")
    assert from_bytes == expected
    return expected


def test_civitai_test_vector(tmp_path):
    result = hash_file(write(tmp_path / "hello.txt", b"hello world"))
    assert result.sha256 == "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
    assert result.autov2 == "b94d27b993"
    assert result.autov1 is None
    assert result.crc32 == "85114a0d"
    assert result.blake3 == "d74981efa70a0c880b8d8c1985d075dbcbf679b99a5f9914e5aaf96b831a9e24"
    assert result.autov3 is None and result.autov3_full is None
    assert result.size == 11
    assert hash_bytes(b"hello world").to_dict() | {"path": str(tmp_path / "hello.txt")} == result.to_dict()


def test_to_dict_keys_and_order(tmp_path):
    result = hash_file(write(tmp_path / "a", b"x"))
    assert list(result.to_dict()) == KEYS
    assert isinstance(result, FileHashes)
    with pytest.raises(AttributeError):
        result.sha256 = "0"  # type: ignore[misc]
    assert set(result.forms()) == {"sha256", "autov2", "crc32", "blake3"}


def test_empty_file(tmp_path):
    expected = check(write(tmp_path / "empty", b""), b"")
    assert expected["sha256"] == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert expected["crc32"] == "00000000"


@pytest.mark.parametrize(
    "size",
    [
        1,
        8,
        9,
        SMALL_CHUNK - 1,
        SMALL_CHUNK,
        SMALL_CHUNK + 1,
        0x100000 + 10,  # ends inside the AutoV1 window
        0x110000,
        TWO_MIB - 1,
        TWO_MIB,
        TWO_MIB + 1,
        3 * TWO_MIB + 12345,
    ],
)
# a chunk size that is not a whole number of pages gets plain bytearrays instead of the huge-page ring
@pytest.mark.parametrize("chunk_size", [SMALL_CHUNK, 3 * SMALL_CHUNK + 4096, SMALL_CHUNK + 1, engine.DEFAULT_CHUNK_SIZE])
def test_plain_files_of_awkward_sizes(tmp_path, size, chunk_size):
    data = random_bytes(size, seed=size)
    expected = check(write(tmp_path / "blob.bin", data), data, chunk_size=chunk_size, buffers=2)
    assert (expected["autov1"] is None) == (size < TWO_MIB)


def test_autov1_window_straddles_chunks(tmp_path):
    # a chunk boundary at 0x100000 + 1000 splits the AutoV1 window in two
    data = random_bytes(TWO_MIB + 5, seed=7)
    check(write(tmp_path / "w.bin", data), data, chunk_size=0x100000 + 1000)


@pytest.mark.parametrize("total", [1000, TWO_MIB - 100, TWO_MIB, TWO_MIB + 70_000])
def test_safetensors_written_by_library(tmp_path, total):
    n = max(1, (total - 200) // 4)
    rng = np.random.default_rng(total)
    path = tmp_path / "model.safetensors"
    save_file(
        {"w": rng.standard_normal(n).astype(np.float32)},
        str(path),
        metadata={"ss_output_name": "synthetic", "modelspec.title": "Test model"},
    )
    data = path.read_bytes()
    expected = check(path, data, chunk_size=SMALL_CHUNK)
    assert expected["autov3_full"] is not None
    data_start = 8 + int.from_bytes(data[:8], "little")
    assert hash_bytes(data[data_start:]).sha256 == expected["autov3_full"]


def test_autov3_survives_metadata_change(tmp_path):
    tensors = {"a": np.arange(1000, dtype=np.float16), "b": np.ones((30, 30), dtype=np.float32)}
    save_file(tensors, str(tmp_path / "one.safetensors"), metadata={"ss_output_name": "first"})
    save_file(tensors, str(tmp_path / "two.safetensors"), metadata={"ss_output_name": "renamed", "x": "y"})
    one = hash_file(tmp_path / "one.safetensors")
    two = hash_file(tmp_path / "two.safetensors")
    assert one.sha256 != two.sha256
    assert one.autov3_full == two.autov3_full and one.autov3 == two.autov3
    assert one.autov3 == one.autov3_full[:12]


@pytest.mark.parametrize(
    "header_size",
    [
        100,
        SMALL_CHUNK - 8,  # data starts exactly at a chunk boundary
        SMALL_CHUNK - 9,
        SMALL_CHUNK + 5,  # header spills into the second chunk
        3 * SMALL_CHUNK + 77,
    ],
)
def test_handmade_safetensors_with_header_across_chunks(tmp_path, header_size):
    blob = random_bytes(300_000, seed=header_size)
    data = safetensors_bytes({"t": ("U8", [len(blob)], blob)}, {"k": "v"}, pad_header_to=header_size)
    assert int.from_bytes(data[:8], "little") == header_size
    expected = check(write(tmp_path / "h.safetensors", data), data, chunk_size=SMALL_CHUNK, buffers=3)
    assert expected["autov3_full"] == hashlib.sha256(blob).hexdigest()


def test_safetensors_with_no_tensor_data(tmp_path):
    data = safetensors_bytes({}, {"only": "metadata"})
    expected = check(write(tmp_path / "empty.safetensors", data), data)
    assert expected["autov3_full"] == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize(
    "data",
    [
        (10**6).to_bytes(8, "little") + b"{}",  # header claims more than the file holds
        (2).to_bytes(8, "little") + b"[]",  # does not start with '{'
        (0).to_bytes(8, "little") + b"{}",  # zero-length header
        b"\x02\x00\x00\x00\x00\x00\x00",  # shorter than the length field
        b"PK\x03\x04" + bytes(200),  # a zip (PyTorch) file
        b"\x80\x04\x95" + bytes(200),  # a pickle
    ],
)
def test_not_safetensors_has_no_autov3(tmp_path, data):
    expected = check(write(tmp_path / "x.bin", data), data)
    assert expected["autov3"] is None and expected["autov3_full"] is None


def test_data_start_helper():
    assert safetensors_data_start(b"\x02" + bytes(7) + b"{}", 10) == 10
    assert safetensors_data_start(b"\x02" + bytes(7) + b"{}", 9) is None
    assert safetensors_data_start(b"\x02" + bytes(7) + b"[]", 10) is None
    assert safetensors_data_start(b"", 0) is None


def test_progress_reports_every_byte(tmp_path):
    data = random_bytes(5 * SMALL_CHUNK + 3)
    seen: list[int] = []
    hash_file(write(tmp_path / "p", data), progress=seen.append, chunk_size=SMALL_CHUNK)
    assert sum(seen) == len(data)
    assert len(seen) == 6


def test_memory_is_bounded_by_the_buffers(tmp_path):
    data = random_bytes(24 * 1024 * 1024, seed=3)
    path = write(tmp_path / "big.bin", data)
    del data
    tracemalloc.start()
    try:
        hash_file(path, chunk_size=SMALL_CHUNK * 4, buffers=4)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * SMALL_CHUNK * 4 + 512 * 1024


def test_threads_are_cleaned_up(tmp_path):
    before = threading.active_count()
    for i in range(3):
        hash_file(write(tmp_path / f"f{i}", random_bytes(200_000, seed=i)), chunk_size=SMALL_CHUNK)
    assert threading.active_count() == before


def test_hasher_failure_is_raised_not_hung(tmp_path, monkeypatch):
    def broken_crc(data, value=0):
        raise RuntimeError("crc exploded")

    monkeypatch.setattr(engine, "_crc32", broken_crc)
    before = threading.active_count()
    with pytest.raises(RuntimeError, match="crc exploded"):
        hash_file(write(tmp_path / "f", random_bytes(10 * SMALL_CHUNK)), chunk_size=SMALL_CHUNK, buffers=2)
    assert threading.active_count() == before


def test_read_failure_stops_the_hashers(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = engine._read_full

    def failing_read(f, view):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(5, "Input/output error")
        return real(f, view)

    monkeypatch.setattr(engine, "_read_full", failing_read)
    before = threading.active_count()
    with pytest.raises(OSError, match="Input/output"):
        hash_file(write(tmp_path / "f", random_bytes(10 * SMALL_CHUNK)), chunk_size=SMALL_CHUNK)
    assert threading.active_count() == before


def test_missing_file_raises_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        hash_file(tmp_path / "nope")


def test_chunk_size_floor(tmp_path):
    with pytest.raises(ValueError):
        hash_file(write(tmp_path / "f", b"x"), chunk_size=1024)


def test_engine_crc_matches_zlib_on_random_data():
    import zlib

    for n in (0, 1, 15, 4096, 100_001):
        data = random_bytes(n, seed=n)
        assert engine._crc32(data) == zlib.crc32(data)
        assert engine._crc32(data[n // 2 :], engine._crc32(data[: n // 2])) == zlib.crc32(data)


def test_ring_buffers_are_separate_and_huge_page_aligned():
    """The ring (engine._ring): n writable buffers of the chunk size that do not overlap; on Linux in one
    anonymous mapping advised for transparent huge pages, each starting n chunks from a 2 MiB boundary."""
    import ctypes
    import mmap

    views = engine._ring(8, engine.DEFAULT_CHUNK_SIZE)
    assert [len(v) for v in views] == [engine.DEFAULT_CHUNK_SIZE] * 8
    for i, v in enumerate(views):
        v[0] = v[-1] = i + 1
    assert [(v[0], v[-1]) for v in views] == [(i + 1, i + 1) for i in range(8)]
    if hasattr(mmap, "MADV_HUGEPAGE"):
        assert isinstance(views[0].obj, mmap.mmap) and len(views[0].obj) == 8 * engine.DEFAULT_CHUNK_SIZE + engine._HUGE
        first = ctypes.addressof(ctypes.c_char.from_buffer(views[0]))
        assert first % engine._HUGE == 0
    odd = engine._ring(2, SMALL_CHUNK + 1)  # not whole pages: bytearrays
    assert [type(v.obj) for v in odd] == [bytearray, bytearray]
