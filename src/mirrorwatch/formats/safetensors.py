"""A bounded, validating reader for the header of an untrusted safetensors file.

A safetensors file is ``[u64 little-endian N][N bytes of JSON header][tensor data]``. The header
maps tensor names to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (offsets relative to the
start of the data) and may hold ``"__metadata__"``: a flat str->str object where kohya's trainer
writes ``ss_*`` training fields and ``sshs_model_hash``, and ModelSpec writers ``modelspec.*``.

Files come from anywhere (hub re-uploads, local folders), so the reader trusts nothing: the header
length is capped before anything is allocated, the JSON must be a UTF-8 object, every tensor entry
is checked (dtype known, shape sane, byte size matching dtype x shape, offsets inside the data and
not overlapping). Any problem raises :class:`SafetensorsError` with a one-line reason. Nothing is
ever unpickled and tensor data is never read.

Parsing is kept apart from I/O so the same functions serve a local file and a later HTTP range
reader: read the first 8 bytes, :func:`header_length`, read that many more, :func:`parse_header`.
Unlike the reference loader we accept gaps between tensors and trailing bytes after the last one:
they do not stop us from fingerprinting a file, and a file with holes is still evidence.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from mirrorwatch.errors import MalformedFile
from mirrorwatch.formats.jsonsafe import JsonRefused, depth_within, loads_bounded

__all__ = [
    "DTYPE_BITS",
    "MAX_HEADER_BYTES",
    "SafetensorsError",
    "SafetensorsHeader",
    "TensorInfo",
    "header_length",
    "metadata_json",
    "parse_header",
    "read_header",
]

#: Default cap on the JSON header. The largest real headers (big checkpoints with long kohya
#: tag-frequency metadata) are a few MB; the reference implementation caps at 100 MB.
MAX_HEADER_BYTES = 25_000_000
#: A header is {name: {dtype, shape: [...], data_offsets: [...]}, "__metadata__": {...}}: 3 levels.
MAX_HEADER_DEPTH = 8
#: JSON-valued metadata (ss_tag_frequency, ss_network_args, ss_datasets...) nests 1-4 levels.
MAX_METADATA_JSON_DEPTH = 16
#: More dimensions than any real tensor has; guards against absurd shapes.
MAX_DIMS = 32
#: A tensor cannot hold more elements than a u64 byte count can address.
MAX_NUMEL = 2**63 - 1

#: Bits per element for every dtype in the safetensors specification.
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E4M3": 8,
    "F8_E5M2": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "F8_E8M0": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "F64": 64,
    "I64": 64,
    "U64": 64,
    "C64": 64,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
}


class SafetensorsError(MalformedFile):
    """A file is not a well-formed safetensors file; the message says why in one line."""


@dataclass(frozen=True)
class TensorInfo:
    """One tensor's entry; ``begin``/``end`` are byte offsets relative to the data section."""

    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def numel(self) -> int:
        n = 1
        for dim in self.shape:
            n *= dim
        return n

    @property
    def nbytes(self) -> int:
        return self.end - self.begin


@dataclass(frozen=True)
class SafetensorsHeader:
    """The parsed header of a safetensors file."""

    header_len: int
    data_start: int
    data_size: int | None
    metadata: dict[str, str] = field(default_factory=dict)
    tensors: dict[str, TensorInfo] = field(default_factory=dict)

    def _prefixed(self, prefix: str) -> dict[str, str]:
        return {k: v for k, v in self.metadata.items() if k.startswith(prefix)}

    @property
    def kohya_fields(self) -> dict[str, str]:
        """kohya sd-scripts training fields (``ss_*``): output name, dataset dirs, tag frequency..."""
        return self._prefixed("ss_")

    @property
    def sshs_fields(self) -> dict[str, str]:
        """kohya's embedded hashes (``sshs_model_hash``, ``sshs_legacy_hash``)."""
        return self._prefixed("sshs_")

    @property
    def modelspec_fields(self) -> dict[str, str]:
        """ModelSpec fields (``modelspec.*``): title, author, architecture, trigger phrase..."""
        return self._prefixed("modelspec.")

    @property
    def sshs_model_hash(self) -> str | None:
        """The AutoV3 (full SHA-256 of the tensor data) kohya wrote when the file was trained,
        normalised to lowercase; ``None`` if absent or not 64 hex characters."""
        value = self.metadata.get("sshs_model_hash")
        if value is None:
            return None
        value = value.strip().lower()
        if len(value) == 64 and all(c in "0123456789abcdef" for c in value):
            return value
        return None

    @property
    def dtype_counts(self) -> dict[str, int]:
        """How many tensors have each dtype, most common first."""
        counts: dict[str, int] = {}
        for info in self.tensors.values():
            counts[info.dtype] = counts.get(info.dtype, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    @property
    def tensor_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors.values())


def header_length(
    first8: bytes,
    *,
    max_header_bytes: int = MAX_HEADER_BYTES,
    file_size: int | None = None,
) -> int:
    """The header length ``N`` from a file's first 8 bytes, checked against the cap and file size."""
    if len(first8) < 8:
        raise SafetensorsError(
            f"not a safetensors file: only {len(first8)} bytes (a safetensors file starts with an "
            "8-byte header length)"
        )
    n = int.from_bytes(first8[:8], "little")
    if n == 0:
        raise SafetensorsError("not a safetensors file: header length is 0")
    if n > max_header_bytes:
        raise SafetensorsError(
            f"not a safetensors file: header claims {n:,} bytes, over the {max_header_bytes:,}-byte cap"
        )
    if file_size is not None and 8 + n > file_size:
        raise SafetensorsError(
            f"not a safetensors file: header claims {n:,} bytes but the file has only "
            f"{max(0, file_size - 8):,} after the length"
        )
    return n


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise SafetensorsError(f"header JSON has the key {key!r} twice")
        obj[key] = value
    return obj


def _short(name: str, limit: int = 80) -> str:
    return repr(name if len(name) <= limit else name[: limit - 1] + "\u2026")


def _parse_tensor(name: str, entry: Any, data_size: int | None) -> TensorInfo:
    where = f"tensor {_short(name)}"
    if not isinstance(entry, dict):
        raise SafetensorsError(f"{where}: entry is a {type(entry).__name__}, not an object")
    dtype = entry.get("dtype")
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise SafetensorsError(f"{where}: unknown dtype {_short(str(dtype), 20)}")
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise SafetensorsError(f"{where}: shape is not a list of non-negative integers")
    if len(shape) > MAX_DIMS:
        raise SafetensorsError(f"{where}: shape has {len(shape)} dimensions (at most {MAX_DIMS})")
    numel = 1
    for dim in shape:
        numel *= dim
        if numel > MAX_NUMEL:
            raise SafetensorsError(f"{where}: shape {shape} has too many elements")
    offsets = entry.get("data_offsets")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets)
    ):
        raise SafetensorsError(f"{where}: data_offsets is not [begin, end] with non-negative integers")
    begin, end = offsets
    if begin > end:
        raise SafetensorsError(f"{where}: data_offsets begin {begin} is after end {end}")
    bits = numel * DTYPE_BITS[dtype]
    if bits % 8:
        raise SafetensorsError(f"{where}: {numel} {dtype} elements do not fill whole bytes")
    if end - begin != bits // 8:
        raise SafetensorsError(
            f"{where}: data_offsets span {end - begin} bytes but {dtype} {shape} needs {bits // 8}"
        )
    if data_size is not None and end > data_size:
        raise SafetensorsError(
            f"{where}: data_offsets end {end} is past the data section ({data_size} bytes)"
        )
    return TensorInfo(dtype=dtype, shape=tuple(shape), begin=begin, end=end)


def _parse_metadata(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise SafetensorsError(f"__metadata__ is a {type(value).__name__}, not an object of strings")
    for key, item in value.items():
        if not isinstance(item, str):
            raise SafetensorsError(
                f"__metadata__ value for {_short(key, 60)} is a {type(item).__name__}, not a string"
            )
    return dict(value)


def parse_header(header_json: bytes, *, header_len: int, file_size: int | None) -> SafetensorsHeader:
    """Validate and parse the header JSON (the ``header_len`` bytes after the length prefix).

    ``file_size`` (when known) bounds the tensors' offsets; with ``None`` (say, only the first
    bytes of a remote file are at hand) offsets are checked against each other only.
    """
    if len(header_json) != header_len:
        raise SafetensorsError(
            f"header truncated: got {len(header_json):,} of the {header_len:,} bytes it claims"
        )
    data_start = 8 + header_len
    data_size: int | None = None
    if file_size is not None:
        if data_start > file_size:
            raise SafetensorsError(
                f"header claims {header_len:,} bytes but the file has only {max(0, file_size - 8):,} "
                "after the length"
            )
        data_size = file_size - data_start
    if not header_json[:1] == b"{":
        raise SafetensorsError("header is not a JSON object (it does not start with '{')")
    try:
        text = bytes(header_json).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SafetensorsError(f"header is not UTF-8 (bad byte at offset {exc.start})") from None
    try:
        raw = json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise SafetensorsError(f"header is not valid JSON: {exc.msg} at byte {exc.pos}") from None
    except RecursionError:
        raise SafetensorsError("header is not valid JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer with thousands of digits
        raise SafetensorsError(f"header is not valid JSON: {str(exc)[:200]}") from None
    if not depth_within(raw, MAX_HEADER_DEPTH):
        raise SafetensorsError(f"header JSON is nested more than {MAX_HEADER_DEPTH} levels deep")
    if not isinstance(raw, dict):
        raise SafetensorsError(f"header is a JSON {type(raw).__name__}, not an object")

    metadata: dict[str, str] = {}
    tensors: dict[str, TensorInfo] = {}
    for name, entry in raw.items():
        if name == "__metadata__":
            metadata = _parse_metadata(entry)
        else:
            tensors[name] = _parse_tensor(name, entry, data_size)

    spans = sorted(((t.begin, t.end, n) for n, t in tensors.items() if t.end > t.begin))
    for (_, prev_end, prev_name), (begin, _, name) in zip(spans, spans[1:], strict=False):
        if begin < prev_end:
            raise SafetensorsError(f"tensors {_short(prev_name, 60)} and {_short(name, 60)} overlap")
    return SafetensorsHeader(
        header_len=header_len,
        data_start=data_start,
        data_size=data_size,
        metadata=metadata,
        tensors=tensors,
    )


def metadata_json(value: str | None) -> Any:
    """A JSON-valued metadata field (``ss_tag_frequency``, ``ss_network_args``...) parsed
    defensively: ``None`` when absent, not JSON, nested deeper than MAX_METADATA_JSON_DEPTH or
    holding an unreadable number. The rest of the header stays usable either way."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return loads_bounded(value, max_depth=MAX_METADATA_JSON_DEPTH)
    except JsonRefused:
        return None


def _read_exactly(f: BinaryIO, n: int) -> bytes:
    chunks: list[bytes] = []
    remaining = n
    while remaining > 0:
        chunk = f.read(min(remaining, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _read_from(f: BinaryIO, file_size: int | None, max_header_bytes: int) -> SafetensorsHeader:
    first8 = _read_exactly(f, 8)
    n = header_length(first8, max_header_bytes=max_header_bytes, file_size=file_size)
    return parse_header(_read_exactly(f, n), header_len=n, file_size=file_size)


def read_header(
    path_or_binary_file: str | os.PathLike[str] | BinaryIO,
    *,
    max_header_bytes: int = MAX_HEADER_BYTES,
) -> SafetensorsHeader:
    """Read and validate the header of a safetensors file (a path, or a binary file object).

    A file object is read from its start if it can seek, else from where it is (and then its size
    is unknown, so offsets are only checked against each other). At most ``8 + max_header_bytes``
    bytes are read. ``OSError`` from opening or reading propagates; a malformed file raises
    :class:`SafetensorsError`.
    """
    if isinstance(path_or_binary_file, str | os.PathLike):
        with open(path_or_binary_file, "rb") as f:
            return _read_from(f, os.fstat(f.fileno()).st_size, max_header_bytes)
    f = path_or_binary_file
    file_size: int | None = None
    if f.seekable():
        file_size = f.seek(0, os.SEEK_END)
        f.seek(0)
    return _read_from(f, file_size, max_header_bytes)
