"""Archives on a hub or in a folder, read by range: what members they hold, and one member's bytes.

A ``.zip`` of fifty LoRAs has one SHA256 that matches nothing, but its central directory (at its
end) lists every member's name, sizes and CRC-32 (one of Civitai's hash forms), and a member can be
read alone. Everything here goes through one callable, ``read_range(offset, length) -> bytes``, so
the same code reads a local file (:func:`local_reader`) and a hub's HTTP range requests alike.

Reading a zip's members costs one range read of its tail (end-of-central-directory record, ZIP64
locator and record, and, for a small archive, the central directory too) and at most two more (a
ZIP64 record outside the tail, a central directory larger than the tail). :func:`confirm_member`
then reads one member alone (stored: its bytes; deflated: a streamed inflate with a size cap) and
computes every hash form of it (:func:`mirrorwatch.hashing.engine.hash_stream`).

Archives are untrusted: every count, length and size is bounded (:class:`ArchiveLimits`); an archive
that cannot be read safely is refused with an :class:`ArchiveError` naming the reason (no
end-of-central-directory record, a central directory outside the file, too many members, members
that overlap); a member that cannot be read safely (unsafe name, encrypted, unknown method, a
declared ratio no deflate stream reaches) is left out with the reason in ``skipped``. Nothing is
ever extracted or written: names are only reported.

Uncompressed ``.tar`` archives have no index: their members are found by walking the 512-byte
headers with one small range read each, only while the member count stays small. Compressed
tarballs, 7z and rar are recognised and reported as not inspected, with the reason.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from mirrorwatch.errors import MalformedFile
from mirrorwatch.hashing.engine import FileHashes, hash_stream
from mirrorwatch.hashing.forms import civitai_crc32

__all__ = [
    "ARCHIVE_EXTENSIONS",
    "ArchiveError",
    "ArchiveLimits",
    "ArchiveListing",
    "ArchiveMember",
    "ReadRange",
    "StreamRange",
    "archive_kind",
    "confirm_member",
    "local_reader",
    "local_stream",
    "open_member",
    "read_archive",
    "read_tar",
    "read_zip",
]

#: ``read_range(offset, length) -> bytes``: exactly ``length`` bytes from ``offset`` (fewer only at the end).
ReadRange = Callable[[int, int], bytes]
#: ``stream_range(offset, length) -> chunks``: the same bytes as one streamed request (an HTTP range
#: response read chunk by chunk), so a big member costs one request and little memory.
StreamRange = Callable[[int, int], Iterable[bytes]]

STORED, DEFLATED = "stored", "deflated"
_METHODS = {0: STORED, 8: DEFLATED}
# Largest ratio a deflate stream can reach (258 bytes per 2-bit code, ~1032:1); a bigger declared
# ratio is a lie whatever the limit.
DEFLATE_MAX_RATIO = 1032.0

_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"
_EOCD64 = b"PK\x06\x06"
_CENTRAL = b"PK\x01\x02"
_LOCAL = b"PK\x03\x04"
_EOCD_SIZE, _LOCATOR_SIZE, _EOCD64_SIZE, _CENTRAL_SIZE, _LOCAL_SIZE = 22, 20, 56, 46, 30
_MAX_COMMENT = 0xFFFF
_ZIP64_EXTRA = 0x0001

_NOT_INSPECTED = {
    "tar.gz": "compressed tarball (gzip): members cannot be reached without inflating the whole archive",
    "tar.bz2": "compressed tarball (bzip2): members cannot be reached without decompressing the whole archive",
    "tar.xz": "compressed tarball (xz): members cannot be reached without decompressing the whole archive",
    "tar.zst": "compressed tarball (zstd): members cannot be reached without decompressing the whole archive",
    "7z": "7z archive: its index is usually compressed and its members solid-compressed; not read",
    "rar": "rar archive: proprietary format, not read",
}
_SUFFIXES = (
    (".tar.gz", "tar.gz"), (".tgz", "tar.gz"), (".tar.bz2", "tar.bz2"), (".tbz2", "tar.bz2"),
    (".tar.xz", "tar.xz"), (".txz", "tar.xz"), (".tar.zst", "tar.zst"), (".zip", "zip"), (".tar", "tar"),
    (".7z", "7z"), (".rar", "rar"),
)
#: File name endings of the archives this module recognises (a sweep's extensions, to include them).
ARCHIVE_EXTENSIONS = tuple(suffix for suffix, _kind in _SUFFIXES)


class ArchiveError(MalformedFile):
    """An archive (or one of its members) that cannot be read safely; the message says why."""


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds on what an untrusted archive may make the reader do."""

    max_members: int = 10_000
    max_name_bytes: int = 1024
    #: Central directory bytes read at most (10,000 members with 1 KiB names would need ~10 MiB).
    max_central_directory: int = 8 * 1024 * 1024
    #: Bytes of the first (tail) read: the end record with the longest comment, ZIP64 locator and record.
    tail_bytes: int = _EOCD_SIZE + _MAX_COMMENT + _LOCATOR_SIZE + _EOCD64_SIZE
    #: Declared uncompressed:compressed ratio a deflated member may have (safetensors weights
    #: compress a little; a member claiming more is refused as a bomb).
    max_ratio: float = 200.0
    #: Size a member may inflate to (a member declaring more is left out; inflating past it stops).
    max_member_size: int = 64 * 1024**3
    #: Tar headers walked at most (each costs a range read).
    max_tar_members: int = 64
    #: Bytes per range read when a member is read (memory held at once while inflating or hashing).
    chunk_size: int = 4 * 1024 * 1024


@dataclass(frozen=True)
class ArchiveMember:
    """One member of an archive as its index lists it."""

    name: str
    size: int  # uncompressed bytes
    compressed_size: int
    crc32: str | None  # as Civitai writes it (hashing.forms.civitai_crc32); None for tar members
    method: str  # stored / deflated
    header_offset: int  # zip: local header; tar: the member's 512-byte header
    data_offset: int | None = None  # known for tar members; zip members learn it from their local header

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ArchiveListing:
    """What an archive holds, or why it was not inspected; and what reading the index cost."""

    kind: str  # zip / tar / tar.gz / 7z / rar ...
    size: int
    members: list[ArchiveMember] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name as shown, reason)
    not_inspected: str | None = None
    requests: int = 0
    bytes_read: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "size": self.size, "members": [m.to_dict() for m in self.members],
                "skipped": [list(s) for s in self.skipped], "not_inspected": self.not_inspected,
                "requests": self.requests, "bytes_read": self.bytes_read}


class _Reader:
    """A bounded, counting wrapper over ``read_range``: only inside the archive, exact lengths."""

    def __init__(self, read_range: ReadRange, size: int) -> None:
        if size < 0:
            raise ArchiveError("archive size is negative")
        self.read_range = read_range
        self.size = size
        self.requests = 0
        self.bytes_read = 0

    def read(self, offset: int, length: int, what: str) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise ArchiveError(f"{what} lies outside the archive (bytes {offset}..{offset + length} of {self.size})")
        if length == 0:
            return b""
        self.requests += 1
        data = self.read_range(offset, length)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise ArchiveError(f"reading {what} gave no bytes")
        data = bytes(data[:length])
        self.bytes_read += len(data)
        if len(data) != length:
            raise ArchiveError(f"archive ended early while reading {what} ({len(data)} of {length} bytes)")
        return data


def archive_kind(name: str) -> str | None:
    """The archive kind a file name says (``zip``, ``tar``, ``tar.gz``, ``7z``, ``rar``...), or None."""
    lower = name.lower()
    return next((kind for suffix, kind in _SUFFIXES if lower.endswith(suffix)), None)


def local_reader(path: str | os.PathLike[str]) -> tuple[ReadRange, int]:
    """(read_range, size) for a local file: each call opens, seeks and reads (no handle kept)."""
    p = Path(path)
    size = p.stat().st_size

    def read_range(offset: int, length: int) -> bytes:
        with open(p, "rb", buffering=0) as f:
            return os.pread(f.fileno(), length, offset)

    return read_range, size


def local_stream(path: str | os.PathLike[str], chunk_size: int = 1024 * 1024) -> StreamRange:
    """A :data:`StreamRange` over a local file: one open, sequential chunks."""

    def stream_range(offset: int, length: int) -> Iterator[bytes]:
        with open(path, "rb") as f:
            f.seek(offset)
            while length > 0:
                chunk = f.read(min(chunk_size, length))
                if not chunk:
                    return
                length -= len(chunk)
                yield chunk

    return stream_range


def read_archive(name: str, size: int, read_range: ReadRange, limits: ArchiveLimits | None = None) -> ArchiveListing:
    """The members of an archive called ``name`` (its kind from the name), or why it was not inspected.

    Raises :class:`ArchiveError` for an archive that cannot be read safely; ``None`` kinds too."""
    kind = archive_kind(name)
    if kind == "zip":
        return read_zip(read_range, size, limits)
    if kind == "tar":
        return read_tar(read_range, size, limits)
    if kind is None:
        raise ArchiveError(f"{name!r} is not an archive this reader knows")
    return ArchiveListing(kind=kind, size=size, not_inspected=_NOT_INSPECTED[kind])


# --- zip -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _End:
    entries: int
    cd_size: int
    cd_offset: int
    end_offset: int  # where the (first) end record starts: the central directory ends before it


def _find_end(tail: bytes, tail_start: int, reader: _Reader, limits: ArchiveLimits) -> _End:
    pos = tail.rfind(_EOCD)
    while pos >= 0:
        if pos + _EOCD_SIZE <= len(tail):
            comment_len = struct.unpack_from("<H", tail, pos + 20)[0]
            if pos + _EOCD_SIZE + comment_len <= len(tail):
                break
        pos = tail.rfind(_EOCD, 0, pos)
    if pos < 0:
        raise ArchiveError("not a zip archive: no end-of-central-directory record")
    disk, cd_disk, on_disk, entries, cd_size, cd_offset = struct.unpack_from("<HHHHII", tail, pos + 4)
    end_offset = tail_start + pos
    loc = pos - _LOCATOR_SIZE
    if loc >= 0 and tail[loc : loc + 4] == _EOCD64_LOCATOR:
        z_disk, z_offset, z_disks = struct.unpack_from("<IQI", tail, loc + 4)
        if z_disk != 0 or z_disks > 1:
            raise ArchiveError("multi-volume zip archives are not read")
        if z_offset + _EOCD64_SIZE > tail_start + loc:
            raise ArchiveError("ZIP64 end record points outside the archive")
        rel = z_offset - tail_start
        record = tail[rel : rel + _EOCD64_SIZE] if rel >= 0 else reader.read(z_offset, _EOCD64_SIZE, "ZIP64 end record")
        if record[:4] != _EOCD64:
            raise ArchiveError("ZIP64 end record missing where its locator points")
        disk, cd_disk, on_disk, entries, cd_size, cd_offset = struct.unpack_from("<IIQQQQ", record, 16)
        end_offset = z_offset
    if disk != 0 or cd_disk != 0 or on_disk != entries:
        raise ArchiveError("multi-volume zip archives are not read")
    if entries > limits.max_members:
        raise ArchiveError(f"{entries} members (at most {limits.max_members} are read)")
    if cd_size > limits.max_central_directory:
        raise ArchiveError(f"central directory of {cd_size} bytes (at most {limits.max_central_directory} are read)")
    if cd_offset + cd_size > end_offset:
        raise ArchiveError("central directory points outside the archive")
    if entries and cd_size < entries * _CENTRAL_SIZE:
        raise ArchiveError(f"central directory of {cd_size} bytes cannot hold {entries} members")
    return _End(entries=entries, cd_size=cd_size, cd_offset=cd_offset, end_offset=end_offset)


def _zip64_values(extra: bytes, want: list[str]) -> dict[str, int]:
    """The ZIP64 extra field's values for the fields whose 32-bit value was 0xFFFFFFFF, in order."""
    i = 0
    while i + 4 <= len(extra):
        tag, n = struct.unpack_from("<HH", extra, i)
        body = extra[i + 4 : i + 4 + n]
        if tag == _ZIP64_EXTRA:
            if len(body) < 8 * len(want):
                raise ValueError("ZIP64 extra field too short")
            return {name: struct.unpack_from("<Q", body, 8 * k)[0] for k, name in enumerate(want)}
        i += 4 + n
    if want:
        raise ValueError("ZIP64 sizes missing")
    return {}


def _unsafe_name(name: str) -> str | None:
    if "\x00" in name:
        return "name holds a NUL"
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return "path climbs out of the archive (..)"
    return None


def _shown(name: str) -> str:
    return name.encode("unicode_escape", "backslashreplace").decode("ascii")[:200]


def _parse_central(cd: bytes, end: _End, limits: ArchiveLimits) -> tuple[list[ArchiveMember], list[tuple[str, str]]]:
    members: list[ArchiveMember] = []
    skipped: list[tuple[str, str]] = []
    spans: list[tuple[int, int, str]] = []  # (start, end) of each member's local header + data
    i = 0
    for _ in range(end.entries):
        if i + _CENTRAL_SIZE > len(cd) or cd[i : i + 4] != _CENTRAL:
            raise ArchiveError("central directory is truncated or corrupt")
        (flags, method, crc, csize, usize, nlen, xlen, clen, disk, offset) = struct.unpack_from(
            "<4xHH4xIIIHHHH6xI", cd, i + 4)
        start = i + _CENTRAL_SIZE
        i = start + nlen + xlen + clen
        if i > len(cd):
            raise ArchiveError("central directory is truncated or corrupt")
        raw = cd[start : start + nlen]
        name = raw.decode("utf-8" if flags & 0x800 else "cp437", "replace")
        if nlen > limits.max_name_bytes:
            skipped.append((_shown(name[:100]) + "…", f"name of {nlen} bytes (at most {limits.max_name_bytes})"))
            continue
        want = [k for k, v in (("size", usize), ("compressed", csize), ("offset", offset)) if v == 0xFFFFFFFF]
        try:
            z = _zip64_values(cd[start + nlen : start + nlen + xlen], want)
        except ValueError as exc:
            skipped.append((_shown(name), str(exc)))
            continue
        usize, csize, offset = z.get("size", usize), z.get("compressed", csize), z.get("offset", offset)
        if disk not in (0, 0xFFFF):
            raise ArchiveError("multi-volume zip archives are not read")
        span_end = offset + _LOCAL_SIZE + nlen + csize
        if span_end > end.cd_offset:
            raise ArchiveError(f"member {_shown(name)!r} lies outside the archive's data")
        spans.append((offset, span_end, name))
        if name.endswith("/") and usize == 0:
            continue  # a folder
        reason = _unsafe_name(name)
        if reason is None and flags & 0x1:
            reason = "encrypted"
        if reason is None and method not in _METHODS:
            reason = f"compression method {method} is not read"
        if reason is None and method == 0 and csize != usize:
            reason = f"stored member's sizes disagree ({csize} stored, {usize} declared)"
        if reason is None and method == 8 and usize > max(csize, 1) * min(limits.max_ratio, DEFLATE_MAX_RATIO):
            reason = (f"declared ratio {usize / max(csize, 1):.0f}:1 is over the limit of "
                      f"{min(limits.max_ratio, DEFLATE_MAX_RATIO):.0f}:1 (a zip bomb?)")
        if reason is None and usize > limits.max_member_size:
            reason = f"declares {usize} bytes (at most {limits.max_member_size} are read)"
        if reason is not None:
            skipped.append((_shown(name), reason))
            continue
        members.append(ArchiveMember(name=name, size=usize, compressed_size=csize, crc32=civitai_crc32(crc),
                                     method=_METHODS[method], header_offset=offset))
    spans.sort()
    for (_s1, e1, n1), (s2, _e2, n2) in zip(spans, spans[1:], strict=False):
        if s2 < e1:
            raise ArchiveError(f"members {_shown(n1)!r} and {_shown(n2)!r} overlap (a zip-bomb layout)")
    return members, skipped


def read_zip(read_range: ReadRange, size: int, limits: ArchiveLimits | None = None) -> ArchiveListing:
    """A zip archive's members from its end records and central directory (at most 3 range reads)."""
    limits = limits or ArchiveLimits()
    reader = _Reader(read_range, size)
    if size < _EOCD_SIZE:
        raise ArchiveError("not a zip archive: too short")
    tail_start = max(0, size - limits.tail_bytes)
    tail = reader.read(tail_start, size - tail_start, "end of the archive")
    end = _find_end(tail, tail_start, reader, limits)
    if end.cd_offset >= tail_start:
        cd = tail[end.cd_offset - tail_start : end.cd_offset - tail_start + end.cd_size]
    else:
        # only the part before the tail is missing; the rest is in hand
        head = reader.read(end.cd_offset, min(end.cd_size, tail_start - end.cd_offset), "central directory")
        cd = head + tail[: end.cd_size - len(head)]
    members, skipped = _parse_central(cd, end, limits)
    return ArchiveListing(kind="zip", size=size, members=members, skipped=skipped,
                          requests=reader.requests, bytes_read=reader.bytes_read)


# --- tar -------------------------------------------------------------------------------------------

def _octal(field_: bytes) -> int:
    if field_ and field_[0] & 0x80:  # GNU base-256 for big sizes
        return int.from_bytes(bytes([field_[0] & 0x7F]) + field_[1:], "big")
    text = field_.split(b"\x00", 1)[0].strip()
    return int(text, 8) if text else 0


def _pax_path(data: bytes) -> str | None:
    for line in data.split(b"\n"):
        _, _, rec = line.partition(b" ")
        key, _, value = rec.partition(b"=")
        if key == b"path":
            return value.decode("utf-8", "replace")
    return None


def read_tar(read_range: ReadRange, size: int, limits: ArchiveLimits | None = None) -> ArchiveListing:
    """An uncompressed tar archive's members by walking its 512-byte headers (one range read each),
    as long as there are at most ``limits.max_tar_members`` of them."""
    limits = limits or ArchiveLimits()
    reader = _Reader(read_range, size)
    listing = ArchiveListing(kind="tar", size=size)
    offset, headers, long_name = 0, 0, None
    while offset + 512 <= size:
        block = reader.read(offset, 512, "tar header")
        if block == bytes(512):
            break
        headers += 1
        if headers > limits.max_tar_members * 2:  # long-name and pax headers count too
            listing.not_inspected = f"more than {limits.max_tar_members} members: a tar has no index to read"
            break
        stored = sum(block[:148]) + 8 * 32 + sum(block[156:])
        try:
            checksum, msize = _octal(block[148:156]), _octal(block[124:136])
        except ValueError:
            raise ArchiveError(f"not a tar archive: unreadable header at byte {offset}") from None
        if checksum != stored:
            raise ArchiveError(f"not a tar archive: header checksum wrong at byte {offset}")
        data = offset + 512
        if msize < 0 or data + msize > size:
            raise ArchiveError(f"tar member at byte {offset} runs past the end of the archive")
        kind = block[156:157]
        if kind in (b"L", b"x"):
            if msize > limits.max_name_bytes * 4:
                raise ArchiveError(f"tar {'long name' if kind == b'L' else 'pax'} header of {msize} bytes")
            extra = reader.read(data, msize, "tar extended header")
            long_name = (extra.split(b"\x00", 1)[0].decode("utf-8", "replace") if kind == b"L"
                         else _pax_path(extra) or long_name)
        elif kind in (b"0", b"\x00", b"7"):
            name = long_name
            if name is None:
                name = block[:100].split(b"\x00", 1)[0].decode("utf-8", "replace")
                prefix = block[345:500].split(b"\x00", 1)[0].decode("utf-8", "replace")
                if block[257:262] == b"ustar" and prefix:
                    name = f"{prefix}/{name}"
            long_name = None
            reason = _unsafe_name(name) if len(name.encode()) <= limits.max_name_bytes else "name too long"
            if reason is None and msize > limits.max_member_size:
                reason = f"declares {msize} bytes (at most {limits.max_member_size} are read)"
            if reason is not None:
                listing.skipped.append((_shown(name), reason))
            elif len(listing.members) >= limits.max_tar_members:
                listing.not_inspected = f"more than {limits.max_tar_members} members: a tar has no index to read"
                break
            else:
                listing.members.append(ArchiveMember(name=name, size=msize, compressed_size=msize, crc32=None,
                                                     method=STORED, header_offset=offset, data_offset=data))
        else:
            long_name = None
        offset = data + (msize + 511) // 512 * 512
    listing.requests, listing.bytes_read = reader.requests, reader.bytes_read
    return listing


# --- reading one member ----------------------------------------------------------------------------

class _MemberStream(io.RawIOBase):
    """A member's uncompressed bytes, read by range in chunks and inflated with a size cap."""

    def __init__(self, reader: _Reader, member: ArchiveMember, data_offset: int, limits: ArchiveLimits,
                 first: bytes = b"", stream_range: StreamRange | None = None) -> None:
        self.reader = reader  # its requests and bytes_read say what reading the member cost
        self.stream_range = stream_range
        self.chunks: Iterator[bytes] | None = None
        self.member = member
        self.first = first[: member.compressed_size]  # compressed bytes already in hand
        self.next = data_offset + len(self.first)
        self.left = member.compressed_size - len(self.first)
        self.limits = limits
        self.inflate = zlib.decompressobj(-15) if member.method == DEFLATED else None
        self.pending = memoryview(b"")
        self.produced = 0
        self.cap = min(member.size, limits.max_member_size)

    def readable(self) -> bool:
        return True

    def _raw(self) -> bytes | None:
        if self.inflate is not None and self.inflate.unconsumed_tail:
            return self.inflate.unconsumed_tail
        if self.first:
            raw, self.first = self.first, b""
            return raw
        if self.left > 0 and self.stream_range is not None:
            if self.chunks is None:  # one request for all the rest
                self.reader.requests += 1
                self.chunks = iter(self.stream_range(self.next, self.left))
            chunk = next(self.chunks, None)
            if not chunk:
                raise ArchiveError(f"archive ended early while reading member {self.member.name!r}")
            raw = bytes(chunk[: self.left])
            self.reader.bytes_read += len(raw)
            self.next += len(raw)
            self.left -= len(raw)
            return raw
        if self.left > 0:
            n = min(self.limits.chunk_size, self.left)
            raw = self.reader.read(self.next, n, f"member {self.member.name!r}")
            self.next += n
            self.left -= n
            return raw
        return None

    def _fill(self) -> None:
        while not self.pending:
            raw = self._raw()
            if raw is None:
                if self.inflate is not None and not self.inflate.eof:
                    raise ArchiveError(f"member {self.member.name!r}: deflate stream ends early")
                return
            if self.inflate is None:
                out = raw
            else:
                try:
                    # at most one byte past the cap: enough to know the member lies about its size
                    out = self.inflate.decompress(raw, min(self.limits.chunk_size, self.cap - self.produced + 1))
                except zlib.error as exc:
                    raise ArchiveError(f"member {self.member.name!r}: corrupt deflate data ({exc})") from None
                if self.inflate.eof:
                    self.left, self.first = 0, b""  # bytes after the end of the stream are not the member's
            if self.produced + len(out) > self.cap:
                raise ArchiveError(f"member {self.member.name!r} inflates past its declared {self.member.size} bytes")
            self.pending = memoryview(out)

    def readinto(self, buffer: Any) -> int:
        self._fill()
        n = min(len(buffer), len(self.pending))
        buffer[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        self.produced += n
        return n


def open_member(read_range: ReadRange, size: int, member: ArchiveMember,
                limits: ArchiveLimits | None = None, *, stream_range: StreamRange | None = None) -> _MemberStream:
    """A binary stream of one member's uncompressed bytes, read by range (never past its declared size).

    A zip member's local header and its first chunk of data come in one range read; the rest comes
    in ``limits.chunk_size`` range reads, or as one streamed request when ``stream_range`` is given."""
    limits = limits or ArchiveLimits()
    reader = _Reader(read_range, size)
    first = b""
    if member.data_offset is not None:
        data_offset = member.data_offset
    else:
        guess = _LOCAL_SIZE + len(member.name.encode("utf-8")) + 64 + min(member.compressed_size, limits.chunk_size)
        head = reader.read(member.header_offset, min(guess, size - member.header_offset),
                           f"local header of {member.name!r}")
        if len(head) < _LOCAL_SIZE or head[:4] != _LOCAL:
            raise ArchiveError(f"member {member.name!r}: no local header where the central directory points")
        method, (nlen, xlen) = struct.unpack_from("<H", head, 8)[0], struct.unpack_from("<HH", head, 26)
        if _METHODS.get(method) != member.method:
            raise ArchiveError(f"member {member.name!r}: local header and central directory disagree on the method")
        data_offset = member.header_offset + _LOCAL_SIZE + nlen + xlen
        first = head[_LOCAL_SIZE + nlen + xlen :]
    if data_offset + member.compressed_size > size:
        raise ArchiveError(f"member {member.name!r} runs past the end of the archive")
    return _MemberStream(reader, member, data_offset, limits, first, stream_range)


class _Tee(io.RawIOBase):
    """A stream that also writes what is read from it to ``sink`` (a member copied while it is hashed)."""

    def __init__(self, source: io.RawIOBase, sink: BinaryIO) -> None:
        self.source, self.sink = source, sink

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self.source.readinto(buffer)
        if n:
            self.sink.write(memoryview(buffer)[:n])
        return n


def confirm_member(read_range: ReadRange, size: int, member: ArchiveMember, *, archive_name: str = "",
                   limits: ArchiveLimits | None = None, stream_range: StreamRange | None = None,
                   sink: BinaryIO | None = None) -> FileHashes:
    """Every hash form of one member, read alone; :class:`ArchiveError` when the bytes do not agree
    with the index (size or CRC-32) or cannot be read safely. ``path`` is ``archive!member``.

    With ``sink`` (a private temporary file the caller deletes), the member's bytes are written there
    as they are hashed, so its header and fingerprint can be read without a second request."""
    limits = limits or ArchiveLimits()
    stream: io.RawIOBase = open_member(read_range, size, member, limits, stream_range=stream_range)
    if sink is not None:
        stream = _Tee(stream, sink)
    hashes = hash_stream(stream, size_hint=member.size, path=f"{archive_name}!{member.name}")
    if hashes.size != member.size:
        raise ArchiveError(f"member {member.name!r} has {hashes.size} bytes, its index says {member.size}")
    if member.crc32 is not None and hashes.crc32 != member.crc32:
        raise ArchiveError(f"member {member.name!r}: CRC-32 {hashes.crc32} is not the {member.crc32} its index says")
    return hashes
