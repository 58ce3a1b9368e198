"""Build test zip archives, sparsely: members of zeros are holes in the file (no disk used), so a
2 GiB archive of 40 LoRA-sized members costs a few MB of disk. ZIP64 end records and extra fields
can be forced on a small archive, to test the ZIP64 path without writing 4 GiB."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

_ZEROS = bytes(8 * 1024 * 1024)


@dataclass(frozen=True)
class ZipSpec:
    """One member: real bytes, or ``zeros`` bytes of zeros (a hole); stored or deflated (real bytes only)."""

    name: str
    data: bytes | None = None
    zeros: int = 0
    deflate: bool = False


def _zeros_crc(n: int) -> int:
    crc = 0
    while n > 0:
        k = min(n, len(_ZEROS))
        crc = zlib.crc32(_ZEROS[:k] if k < len(_ZEROS) else _ZEROS, crc)
        n -= k
    return crc


def write_zip(path: Path, members: list[ZipSpec], *, zip64: bool = False, comment: bytes = b"") -> Path:
    """Write a zip archive of ``members`` to ``path`` (holes for zero members); returns ``path``."""
    central = bytearray()
    with open(path, "wb") as f:
        for m in members:
            name = m.name.encode("utf-8")
            if m.data is not None:
                crc, size = zlib.crc32(m.data), len(m.data)
                if m.deflate:
                    c = zlib.compressobj(6, zlib.DEFLATED, -15)
                    payload = c.compress(m.data) + c.flush()
                else:
                    payload = m.data
            else:
                crc, size, payload = _zeros_crc(m.zeros), m.zeros, None
            csize = len(payload) if payload is not None else size
            method = 8 if m.deflate and m.data is not None else 0
            offset = f.tell()
            big = zip64 or size >= 0xFFFFFFFF or offset >= 0xFFFFFFFF
            local_extra = struct.pack("<HHQQ", 1, 16, size, csize) if big else b""
            f.write(struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 45 if big else 20, 0x800, method, 0, 0x21, crc,
                                0xFFFFFFFF if big else csize, 0xFFFFFFFF if big else size, len(name),
                                len(local_extra)) + name + local_extra)
            if payload is not None:
                f.write(payload)
            else:
                f.seek(size, 1)
            cd_extra = struct.pack("<HHQQQ", 1, 24, size, csize, offset) if big else b""
            central += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 45, 45 if big else 20, 0x800, method, 0,
                                   0x21, crc, 0xFFFFFFFF if big else csize, 0xFFFFFFFF if big else size, len(name),
                                   len(cd_extra), 0, 0, 0, 0, 0xFFFFFFFF if big else offset) + name + cd_extra
        cd_offset = f.tell()
        f.write(central)
        n = len(members)
        if zip64 or cd_offset >= 0xFFFFFFFF or n >= 0xFFFF:
            z_offset = f.tell()
            f.write(struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, n, n, len(central), cd_offset))
            f.write(struct.pack("<4sIQI", b"PK\x06\x07", 0, z_offset, 1))
            f.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF,
                                len(comment)) + comment)
        else:
            f.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, n, n, len(central), cd_offset, len(comment))
                    + comment)
    return path
