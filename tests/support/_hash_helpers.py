"""Helpers shared by the hashing and safetensors tests: an independent, naive reimplementation of
every hash form, and writers for hand-made safetensors files."""

from __future__ import annotations

import hashlib
import json
import random
import struct
import zlib
from pathlib import Path
from typing import Any

import blake3

TWO_MIB = 2 * 1024 * 1024


def naive_hashes(data: bytes) -> dict[str, Any]:
    """Every form straight from the definitions in DESIGN.md, reading the whole file at once and
    using plain hashlib/zlib/blake3 (not the engine's CRC-32 implementation)."""
    sha = hashlib.sha256(data).hexdigest()
    autov1 = hashlib.sha256(data[0x100000:0x110000]).hexdigest()[:8] if len(data) >= TWO_MIB else None
    full = None
    if len(data) >= 9:
        (n,) = struct.unpack("<Q", data[:8])
        if n > 0 and 8 + n <= len(data) and data[8:9] == b"{":
            full = hashlib.sha256(data[8 + n :]).hexdigest()
    return {
        "size": len(data),
        "sha256": sha,
        "autov1": autov1,
        "autov2": sha[:10],
        "autov3": full[:12] if full else None,
        "autov3_full": full,
        "crc32": struct.pack("<I", zlib.crc32(data)).hex(),
        "blake3": blake3.blake3(data).hexdigest(),
    }


def random_bytes(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def safetensors_bytes(
    tensors: dict[str, tuple[str, list[int], bytes]] | None = None,
    metadata: dict[str, str] | None = None,
    *,
    pad_header_to: int | None = None,
    raw_header: dict[str, Any] | None = None,
) -> bytes:
    """A safetensors file written by hand: tensors map name -> (dtype, shape, data bytes)."""
    header: dict[str, Any] = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    blobs = []
    offset = 0
    for name, (dtype, shape, blob) in (tensors or {}).items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    if raw_header is not None:
        header = raw_header
    text = json.dumps(header).encode()
    if pad_header_to is not None and len(text) < pad_header_to:
        text += b" " * (pad_header_to - len(text))
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def hashlib_forms(data: bytes) -> dict[str, str]:
    """`naive_hashes` of a file that has every form (a safetensors file of 2 MiB or more), without its size."""
    forms = naive_hashes(data)
    forms.pop("size")
    assert all(forms.values()), forms
    return forms


def big_safetensors(folder: Path, seed: int, mib: int = 3) -> bytes:
    """A safetensors file of about `mib` MiB (one float32 tensor, a little metadata), written to
    `folder`; larger than a content-tier cap of 1 MiB. Its bytes."""
    import numpy as np
    from safetensors.numpy import save_file

    p = folder / f"big{seed}.safetensors"
    save_file({"w": np.random.default_rng(seed).standard_normal((mib * 256, 1024), dtype=np.float32)}, str(p),
              metadata={"ss_output_name": f"invented_big_{seed}"})
    return p.read_bytes()
