"""Compute every hash form of a file from one sequential read, in constant memory.

Model files are large (LoRAs are tens to hundreds of MB, checkpoints several GB) and sweeps hash
many of them, so the engine reads each file exactly once and feeds every hash from the same
buffers:

    reader (calling thread)            hasher threads (one per stream)
    ---------------------------        ---------------------------------------------
    readinto(free buffer) ------+----> SHA-256 of the whole file      -> sha256, autov2
    AutoV1 window (64 KiB)      +----> SHA-256 of the tensor data     -> autov3(_full)
                                +----> CRC-32                         -> crc32
                                +----> BLAKE3                         -> blake3
    buffer comes back when all four hashers have returned it

hashlib, zlib and blake3 release the GIL while they hash a large buffer, so the hashers really
run side by side on all cores. A small fixed ring of reusable buffers bounds memory (no
allocation per chunk) and lets fast hashers run ahead of slow ones by a few chunks, so the
operating system can keep every core busy.

The tensor-data stream (AutoV3) starts at byte ``8 + N`` where ``N`` is the little-endian u64 at
the start of the file; it only runs when the file is a plausible safetensors file
(``8 + N <= size`` and the header starts with ``{``). The engine does not parse the header: that
is :mod:`mirrorwatch.formats.safetensors`' job, and a hash must not depend on whether a
header's JSON happens to be valid.
"""

from __future__ import annotations

import errno
import hashlib
import mmap
import os
import queue
import stat
import threading
import zlib
from collections.abc import Callable, Mapping

import blake3

from .forms import civitai_crc32, complete

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up)
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "AUTOV1_LENGTH",
    "AUTOV1_MIN_SIZE",
    "AUTOV1_OFFSET",
    "DEFAULT_CHUNK_SIZE",
    "FileHashes",
    "hash_bytes",
    "hash_file",
    "hash_stream",
    "safetensors_data_start",
]

AUTOV1_OFFSET = 0x100000
AUTOV1_LENGTH = 0x10000
AUTOV1_MIN_SIZE = 2 * 1024 * 1024
#: Bytes per read. Large enough that per-chunk Python overhead (a few queue operations) is
#: negligible, small enough that the buffers the four hashers share stay mostly in CPU caches:
#: measured on the 2-core EPYC, 1 MiB x 8 used the least CPU; 4-8 MiB chunks used ~10% more.
DEFAULT_CHUNK_SIZE = 1024 * 1024
#: Buffers in the ring: one being read into, the rest queued for or held by the hashers. Eight
#: lets a fast hasher (CRC-32) run up to seven chunks ahead of the slowest (SHA-256).
DEFAULT_BUFFERS = 8

try:  # ISA-L's CRC-32 (same polynomial as zlib) is several times faster than zlib 1.2's.
    from isal.isal_zlib import crc32 as _crc32
except ImportError:  # pragma: no cover - isal is a declared dependency, zlib is the fallback
    _crc32 = zlib.crc32


class FileHashes:
    """Every hash form of one file; hex is lowercase, ``None`` where a form does not apply.

    Each registered form (:data:`~mirrorwatch.hashing.forms.FORMS`) is an attribute (``.sha256``,
    ``.autov3``...), in registry order; derived forms are filled in from their sources by
    :func:`~mirrorwatch.hashing.forms.complete`, so the engine only computes the independent ones.
    Immutable. (A plain class, not a dataclass: importing ``dataclasses`` was a tenth of the start-up
    of ``mirrorwatch hash``, which storage scans run once per object.)
    """

    __slots__ = ("path", "size", "values")
    path: str | None
    size: int
    values: Mapping[str, str | None]

    def __init__(self, path: str | None, size: int, values: Mapping[str, str | None]) -> None:
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "values", values)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __reduce__(self) -> tuple[Any, ...]:  # pickling (Ray returns these from its tasks)
        return (FileHashes, (self.path, self.size, dict(self.values)))

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not FileHashes:
            return NotImplemented
        return (self.path, self.size, dict(self.values)) == (other.path, other.size, dict(other.values))  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((self.path, self.size, tuple(self.values.items())))

    def __repr__(self) -> str:
        return f"FileHashes(path={self.path!r}, size={self.size!r}, values={self.values!r})"

    def __getattr__(self, name: str) -> str | None:
        try:
            values = object.__getattribute__(self, "values")
        except AttributeError:
            values = None
        if values is not None and name in values:
            return values[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict with the keys path, size and then every form in registry order (sha256, autov1,
        autov2, autov3, autov3_full, crc32, blake3), ready for JSON."""
        return {"path": self.path, "size": self.size, **self.values}

    def forms(self) -> dict[str, str]:
        """The hash forms that apply, by form name (no path or size)."""
        return {k: v for k, v in self.values.items() if v is not None}


def safetensors_data_start(first_bytes: bytes | bytearray | memoryview, size: int) -> int | None:
    """Where a plausible safetensors file's tensor data starts (``8 + N``), else ``None``.

    ``first_bytes`` must hold at least the first 9 bytes of the file if it has them. Plausible
    means: the claimed header fits in the file and starts with ``{``.
    """
    if size < 9 or len(first_bytes) < 9:
        return None
    header_len = int.from_bytes(first_bytes[:8], "little")
    data_start = 8 + header_len
    if header_len == 0 or data_start > size or first_bytes[8] != ord("{"):
        return None
    return data_start


def _finish(
    path: str | None,
    size: int,
    sha: Any,
    data_sha: Any | None,
    crc: int,
    b3: Any,
    autov1: str | None,
) -> FileHashes:
    computed = {
        "sha256": sha.hexdigest(),
        "autov1": autov1,
        "autov3_full": data_sha.hexdigest() if data_sha is not None else None,
        "crc32": civitai_crc32(crc),
        "blake3": b3.hexdigest(),
    }
    return FileHashes(path=path, size=size, values=complete(computed))


def hash_bytes(data: bytes | bytearray | memoryview, *, path: str | None = None) -> FileHashes:
    """All hash forms of an in-memory file (small files, tests, downloaded headers+data)."""
    view = memoryview(data).cast("B")
    size = len(view)
    data_start = safetensors_data_start(view[:9], size)
    autov1 = None
    if size >= AUTOV1_MIN_SIZE:
        autov1 = hashlib.sha256(view[AUTOV1_OFFSET : AUTOV1_OFFSET + AUTOV1_LENGTH]).hexdigest()[:8]
    data_sha = hashlib.sha256(view[data_start:]) if data_start is not None else None
    return _finish(path, size, hashlib.sha256(view), data_sha, _crc32(view), blake3.blake3(view), autov1)


class _Hasher(threading.Thread):
    """One hash stream: takes (buffer index, start, end) jobs, hands each buffer index back."""

    def __init__(
        self,
        name: str,
        update: Callable[[memoryview], Any],
        views: list[memoryview],
        returned: queue.SimpleQueue[int],
    ) -> None:
        super().__init__(name=f"mirrorwatch-hash-{name}", daemon=True)
        self.update = update
        self.views = views
        self.returned = returned
        self.jobs: queue.SimpleQueue[tuple[int, int, int] | None] = queue.SimpleQueue()
        self.error: BaseException | None = None

    def run(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            index, start, end = job
            if end > start and self.error is None:
                try:
                    self.update(self.views[index][start:end])
                except BaseException as exc:  # surfaced by hash_file after the read
                    self.error = exc
            self.returned.put(index)


class _Crc:
    """Running CRC-32 with an ``update`` like the hashlib objects'."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def update(self, data: memoryview) -> None:
        self.value = _crc32(data, self.value)


_HUGE = 2 * 1024 * 1024  # a transparent huge page on x86-64 and arm64


def _ring(n: int, size: int) -> list[memoryview]:
    """The ring's buffers, in memory backed by transparent huge pages where Linux gives them (an
    anonymous mapping, madvise(MADV_HUGEPAGE), the buffers from a 2 MiB boundary on): every byte of a
    file is copied into a buffer by read() and read from it by four hashers, and with 4 KiB pages those
    copies missed the TLB. Measured on the 2-core EPYC, hashlib over 1 GiB of reads as a fresh process:
    0.73 s against 0.78 s; `mirrorwatch hash` of 1 GiB 0.86 s against 0.89 s. The kernel zeroes a page of
    the mapping only when a read first fills it, so a small file no longer pays for zeroing eight 1 MiB
    bytearrays: 0.7 ms for a 100 KB file against 5.1-5.7 ms. Elsewhere (no madvise, no ctypes, a
    mapping refused, a chunk size that is not whole pages) plain bytearrays."""
    if size % mmap.PAGESIZE == 0 and hasattr(mmap, "MADV_HUGEPAGE"):
        try:
            import ctypes

            area = mmap.mmap(-1, n * size + _HUGE)
            area.madvise(mmap.MADV_HUGEPAGE)
            start = -ctypes.addressof(ctypes.c_char.from_buffer(area)) % _HUGE
            whole = memoryview(area)  # the views keep the mapping alive; it goes with the last of them
            return [whole[start + i * size : start + (i + 1) * size] for i in range(n)]
        except (OSError, ValueError, ImportError):
            pass
    return [memoryview(bytearray(size)) for _ in range(n)]


def _read_full(f: Any, view: memoryview) -> int:
    """Fill ``view`` from ``f`` unless the file ends first; return the bytes read."""
    total = 0
    size = len(view)
    while total < size:
        n = f.readinto(view[total:])
        if not n:
            break
        total += n
    return total


def open_regular(path: str | os.PathLike[str]) -> Any:
    """Open a regular file for reading (unbuffered), never blocking: the open is non-blocking (a
    fifo swapped in after a walk checked the path cannot hang it) and anything but a regular file
    (fifo, socket, device) is refused with OSError "not a regular file"."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    fd = os.open(os.fspath(path), flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", os.fspath(path))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise


def hash_file(
    path: str | os.PathLike[str],
    *,
    progress: Callable[[int], None] | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    buffers: int = DEFAULT_BUFFERS,
) -> FileHashes:
    """All hash forms of the file at ``path`` from one sequential read.

    ``progress`` is called from the calling thread with the number of bytes just read, once per
    chunk. Memory use is ``chunk_size * buffers`` whatever the file's size. The file is treated as
    bytes only (pickles are never unpickled). ``OSError`` from opening or reading propagates (a
    fifo, socket or device gives OSError "not a regular file" at once, see :func:`open_regular`).
    """
    if chunk_size < AUTOV1_LENGTH:
        raise ValueError(f"chunk_size must be at least {AUTOV1_LENGTH} bytes")
    buffers = max(2, buffers)
    path_str = os.fspath(path)
    with open_regular(path_str) as f:
        try:
            stat_size = os.fstat(f.fileno()).st_size
            if hasattr(os, "posix_fadvise"):
                os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
        except OSError:  # pragma: no cover - special files; fall back to reading
            stat_size = 0
        return _hash_stream(f, path_str, stat_size, progress, chunk_size, buffers)


def hash_stream(
    f: Any,
    *,
    size_hint: int = 0,
    path: str | None = None,
    progress: Callable[[int], None] | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    buffers: int = DEFAULT_BUFFERS,
) -> FileHashes:
    """All hash forms of what a binary stream yields (an object with ``readinto``, e.g. an archive
    member being inflated), read once to its end, in the same constant memory as :func:`hash_file`.

    ``size_hint`` is the size the stream is expected to have (decides whether a short first read
    may still be a safetensors file's header); the size hashed is what the stream gave."""
    if chunk_size < AUTOV1_LENGTH:
        raise ValueError(f"chunk_size must be at least {AUTOV1_LENGTH} bytes")
    return _hash_stream(f, path, size_hint, progress, chunk_size, max(2, buffers))


def _hash_stream(
    f: Any,
    path: str,
    stat_size: int,
    progress: Callable[[int], None] | None,
    chunk_size: int,
    n_buffers: int,
) -> FileHashes:
    views = _ring(n_buffers, chunk_size)
    returned: queue.SimpleQueue[int] = queue.SimpleQueue()

    sha = hashlib.sha256()
    data_sha = hashlib.sha256()
    crc = _Crc()
    b3 = blake3.blake3()
    autov1_sha = hashlib.sha256()

    whole = _Hasher("sha256", sha.update, views, returned)
    tensor_data = _Hasher("autov3", data_sha.update, views, returned)
    hashers = [
        whole,
        tensor_data,
        _Hasher("crc32", crc.update, views, returned),
        _Hasher("blake3", b3.update, views, returned),
    ]
    for hasher in hashers:
        hasher.start()

    free = list(range(n_buffers))
    outstanding = [0] * n_buffers
    offset = 0
    data_start: int | None = None
    try:
        while True:
            while not free:  # wait for the hashers to hand a buffer back
                index = returned.get()
                outstanding[index] -= 1
                if outstanding[index] == 0:
                    free.append(index)
            index = free.pop()
            view = views[index]
            n = _read_full(f, view)
            if n == 0:
                break
            if offset == 0:
                data_start = safetensors_data_start(view[: min(9, n)], max(stat_size, n))
            end = offset + n
            lo, hi = max(AUTOV1_OFFSET, offset), min(AUTOV1_OFFSET + AUTOV1_LENGTH, end)
            if hi > lo:
                autov1_sha.update(view[lo - offset : hi - offset])
            data_lo = n if data_start is None else min(n, max(0, data_start - offset))
            outstanding[index] = len(hashers)
            whole.jobs.put((index, 0, n))
            tensor_data.jobs.put((index, data_lo, n))
            for hasher in hashers[2:]:
                hasher.jobs.put((index, 0, n))
            offset = end
            if progress is not None:
                progress(n)
            if n < chunk_size:  # end of file (a short read only happens there)
                break
    finally:
        for hasher in hashers:
            hasher.jobs.put(None)
        for hasher in hashers:
            hasher.join()
    for hasher in hashers:
        if hasher.error is not None:
            raise hasher.error

    size = offset
    if data_start is not None and data_start > size:  # the file shrank while we read it
        data_start = None
    autov1 = autov1_sha.hexdigest()[:8] if size >= AUTOV1_MIN_SIZE else None
    return _finish(path, size, sha, data_sha if data_start is not None else None, crc.value, b3, autov1)
