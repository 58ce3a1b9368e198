"""The archive reader (formats/archives.py): zip central directories (ZIP64 too) and tar headers read
by bounded range requests, one member confirmed alone with every hash form, hostile archives refused
or their bad members skipped with a reason."""

from __future__ import annotations

import io
import struct
import tarfile
import zipfile
import zlib

import pytest

from mirrorwatch.formats.archives import (
    ArchiveError,
    ArchiveLimits,
    confirm_member,
    local_reader,
    local_stream,
    read_archive,
    read_tar,
    read_zip,
)
from mirrorwatch.hashing.engine import hash_bytes
from mirrorwatch.hashing.forms import civitai_crc32
from mirrorwatch.testhub.zipbuild import ZipSpec, write_zip


def fake_safetensors(seed: int, n: int = 50_000) -> bytes:
    header = b'{"w":{"dtype":"U8","shape":[%d],"data_offsets":[0,%d]}}' % (n, n)
    body = bytes((seed * 31 + i * 7) % 251 for i in range(n))
    return struct.pack("<Q", len(header)) + header + body


class Counting:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.calls: list[tuple[int, int]] = []

    def __call__(self, offset: int, length: int) -> bytes:
        self.calls.append((offset, length))
        return self.data[offset : offset + length]


def zip_bytes(members: dict[str, bytes], *, deflate=(), comment: bytes = b"", dirs=()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for d in dirs:
            z.writestr(zipfile.ZipInfo(d), b"")
        for name, data in members.items():
            z.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED if name in deflate else zipfile.ZIP_STORED)
        z.comment = comment
    return buf.getvalue()


def test_stdlib_zip_members_and_confirmation():
    files = {f"loras/model_{i}.safetensors": fake_safetensors(i) for i in range(4)}
    files["Ünïcode name.safetensors"] = fake_safetensors(9)
    data = zip_bytes(files, deflate={"loras/model_1.safetensors", "loras/model_3.safetensors"}, dirs=["loras/"])
    read = Counting(data)
    listing = read_zip(read, len(data))
    assert listing.requests == 1 and len(read.calls) == 1 and listing.skipped == []
    assert [m.name for m in listing.members] == list(files)
    for m in listing.members:
        assert m.size == len(files[m.name]) and m.crc32 == civitai_crc32(zlib.crc32(files[m.name]))
        assert m.method == ("deflated" if m.name.endswith(("_1.safetensors", "_3.safetensors")) else "stored")
        read.calls.clear()
        got = confirm_member(read, len(data), m, archive_name="a.zip")
        assert got.values == hash_bytes(files[m.name]).values and got.autov3  # a safetensors member: AutoV3 too
        assert got.path == f"a.zip!{m.name}"
        assert len(read.calls) == 1  # local header and data in one read (members are under a chunk)


def test_long_comment_and_a_central_directory_beyond_the_tail(tmp_path):
    data = zip_bytes({"a.safetensors": b"x" * 100}, comment=b"c" * 65_000)
    assert [m.name for m in read_zip(Counting(data), len(data)).members] == ["a.safetensors"]
    many = {f"{'n' * 150}_{i}.bin": bytes([i % 256]) * 10 for i in range(600)}  # central directory ~120 KB
    data = zip_bytes(many)
    listing = read_zip(Counting(data), len(data))
    assert len(listing.members) == 600 and listing.requests == 2
    assert listing.bytes_read < len(data)


def test_zip64_records_and_extra_fields(tmp_path):
    real = fake_safetensors(3)
    p = write_zip(tmp_path / "z64.zip", [ZipSpec("zeros.bin", zeros=3_000_000), ZipSpec("real.safetensors", real),
                                         ZipSpec("deflated.safetensors", real, deflate=True)], zip64=True)
    with zipfile.ZipFile(p) as z:  # the builder writes what the standard library reads
        assert z.testzip() is None
    read, size = local_reader(p)
    listing = read_zip(read, size)
    assert [(m.name, m.size, m.method) for m in listing.members] == [
        ("zeros.bin", 3_000_000, "stored"), ("real.safetensors", len(real), "stored"),
        ("deflated.safetensors", len(real), "deflated")]
    assert confirm_member(read, size, listing.members[0]).values == hash_bytes(bytes(3_000_000)).values
    # with a streamed range (one request for the rest of a big member) and small chunks: the same hashes
    streamed = confirm_member(read, size, listing.members[0], stream_range=local_stream(p, 100_000),
                              limits=ArchiveLimits(chunk_size=65_536))
    assert streamed.values == hash_bytes(bytes(3_000_000)).values
    for m in listing.members[1:]:
        assert confirm_member(read, size, m).values == hash_bytes(real).values


def _patch(data: bytes, offset: int, fmt: str, *values) -> bytes:
    b = bytearray(data)
    struct.pack_into(fmt, b, offset, *values)
    return bytes(b)


def _eocd(data: bytes) -> int:
    return data.rfind(b"PK\x05\x06")


@pytest.mark.parametrize("case, message", [
    ("garbage", "no end-of-central-directory"),
    ("outside", "outside the archive"),
    ("members", "1000000 members"),
    ("multidisk", "multi-volume"),
    ("overlap", "overlap"),
    ("truncated_cd", "truncated or corrupt"),
])
def test_hostile_zips_are_refused_with_a_reason(case, message):
    data = zip_bytes({"a.bin": b"a" * 1000, "b.bin": b"b" * 1000})
    e = _eocd(data)
    cd_offset = struct.unpack_from("<I", data, e + 16)[0]
    if case == "garbage":
        data = bytes(range(256)) * 40
    elif case == "outside":
        data = _patch(data, e + 16, "<I", len(data) + 10)
    elif case == "members":
        data = _patch(data, e + 8, "<HH", 0xFFFF, 0xFFFF)
        data = data[:e] + _zip64_tail(data, e, 1_000_000)
    elif case == "multidisk":
        data = _patch(data, e + 4, "<H", 1)
    elif case == "overlap":  # the second member's local header offset points into the first one
        second = data.find(b"PK\x01\x02", cd_offset + 1)
        data = _patch(data, second + 42, "<I", 10)
    elif case == "truncated_cd":  # the second entry's signature is broken
        second = data.find(b"PK\x01\x02", cd_offset + 1)
        data = data[:second] + b"PK\x01\x09" + data[second + 4 :]
    with pytest.raises(ArchiveError, match=message):
        read_zip(Counting(data), len(data))


def _zip64_tail(data: bytes, e: int, entries: int) -> bytes:
    cd_size, cd_offset = struct.unpack_from("<II", data, e + 12)
    rec = struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries, cd_size, cd_offset)
    loc = struct.pack("<4sIQI", b"PK\x06\x07", 0, e, 1)
    return rec + loc + data[e:]


def test_bad_members_are_skipped_with_a_reason():
    bomb = bytes(40_000_000)  # deflates ~1000:1
    data = zip_bytes({"../../etc/evil.bin": b"x", "/abs/path.bin": b"y", "C:/win.bin": b"w", "nulX.bin": b"z",
                      "bomb.safetensors": bomb, "fine.safetensors": b"ok" * 100}, deflate={"bomb.safetensors"})
    data = data.replace(b"nulX.bin", b"nul\x00.bin")  # the standard library cuts names at a NUL
    listing = read_zip(Counting(data), len(data))
    assert [m.name for m in listing.members] == ["fine.safetensors"]
    reasons = dict(listing.skipped)
    assert "climbs out" in reasons["../../etc/evil.bin"] and reasons["/abs/path.bin"] == "absolute path"
    assert reasons["C:/win.bin"] == "absolute path"
    assert "zip bomb" in reasons["bomb.safetensors"] and "NUL" in reasons["nul\\x00.bin"]
    long_names = zip_bytes({"n" * 2000: b"x"})
    assert "name of 2000 bytes" in read_zip(Counting(long_names), len(long_names)).skipped[0][1]


def test_a_member_that_lies_about_its_size_stops_inflating():
    data = zip_bytes({"m.safetensors": bytes(1_000_000)}, deflate={"m.safetensors"})
    listing = read_zip(Counting(data), len(data), ArchiveLimits(max_ratio=1032))
    m = listing.members[0]
    liar = type(m)(**{**m.to_dict(), "size": 5000})  # a central directory claiming 5000 bytes
    with pytest.raises(ArchiveError, match="inflates past its declared 5000 bytes"):
        confirm_member(Counting(data), len(data), liar)
    wrong_crc = type(m)(**{**m.to_dict(), "crc32": "00000000"})
    with pytest.raises(ArchiveError, match="CRC-32"):
        confirm_member(Counting(data), len(data), wrong_crc)
    with pytest.raises(ArchiveError, match="ended early"):
        confirm_member(lambda o, n: data[o : o + n // 2], len(data), m)


def tar_bytes(members: dict[str, bytes], fmt=tarfile.GNU_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
def test_tar_members_by_their_headers(fmt):
    long = "d" * 60 + "/" + "x" * 80 + ".safetensors"  # over 100: a prefix, a long name or pax
    files = {"a.safetensors": fake_safetensors(1), long: fake_safetensors(2), "../up.bin": b"no"}
    data = tar_bytes(files, fmt)
    read = Counting(data)
    listing = read_archive("pack.tar", len(data), read)
    assert [m.name for m in listing.members] == ["a.safetensors", long]
    assert listing.skipped and "climbs out" in listing.skipped[0][1]
    assert all(n <= 512 * 2 for _o, n in read.calls)  # headers only, never a member's data
    for m in listing.members:
        assert m.crc32 is None and confirm_member(read, len(data), m).values == hash_bytes(files[m.name]).values
    many = tar_bytes({f"f{i}.bin": b"x" for i in range(20)})
    capped = read_tar(Counting(many), len(many), ArchiveLimits(max_tar_members=5))
    assert len(capped.members) == 5 and "more than 5 members" in capped.not_inspected
    with pytest.raises(ArchiveError, match="not a tar"):
        read_tar(Counting(b"\x01" * 2048), 2048)


@pytest.mark.parametrize("name, reason", [("x.tar.gz", "compressed tarball"), ("x.tgz", "gzip"),
                                          ("x.7z", "7z"), ("x.RAR", "rar"), ("x.tar.zst", "zstd")])
def test_archives_not_inspected_say_why(name, reason):
    listing = read_archive(name, 123, lambda o, n: pytest.fail("nothing is read"))
    assert listing.members == [] and reason in listing.not_inspected and listing.requests == 0
