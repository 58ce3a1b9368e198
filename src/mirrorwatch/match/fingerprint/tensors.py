"""Reading LoRA tensors from an untrusted safetensors file, with bounds, never unpickling.

The header is parsed and validated by :func:`mirrorwatch.formats.safetensors.read_header` (offsets
inside the file, sizes matching dtype x shape, no overlaps). Here we add what fingerprinting needs on
top: a cap on the file size, sane shapes for LoRA factors, decoding of F64/F32/F16/BF16 into float32
(BF16 by shifting the 16 stored bits into the high half of a float32), and rejection of NaN/Inf.
Scalars (a module's ``alpha``) may also be integers of any width, signed or not, as a 0-dim tensor or
a 1-element vector: diffusers' ``convert_state_dict_to_kohya`` writes every alpha as an int64 scalar
(``torch.tensor(rank)``). Factors stay float-only: no writer stores integer LoRA factors.
Every problem raises :class:`~mirrorwatch.errors.MalformedFile` with a one-line reason.

Tensors are read one at a time on access (:class:`SafetensorsTensors` is a lazy ``Mapping``), so
fingerprinting a file holds at most one module's factors in memory besides the small sketches.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

import numpy as np

from mirrorwatch.errors import MalformedFile
from mirrorwatch.formats.safetensors import SafetensorsHeader, TensorInfo, read_header

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_DIM",
    "MAX_TENSOR_ELEMENTS",
    "SafetensorsTensors",
    "bf16_bits_to_float32",
    "check_finite",
    "float32_to_bf16_bits",
    "open_tensors",
    "read_tensors",
    "scalar_value",
    "to_float32",
]

#: Default cap on the size of a file we fingerprint. The largest LoRA-family files (Flux rank 128,
#: full-precision LoCon) are around 1.5 GB; anything beyond 2 GiB is not a LoRA.
DEFAULT_MAX_BYTES = 2 * 1024**3
#: No dimension of a LoRA factor is this large (the widest real layer has about 21,504 features).
MAX_DIM = 1 << 20
#: Elements of one tensor (a full ΔW "diff" of the largest Flux layer has 66 M).
MAX_TENSOR_ELEMENTS = 1 << 28

_FLOAT_DTYPES = {"F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2")}
#: Integer dtypes accepted for scalars (alphas) only.
_INT_DTYPES = {"I8": np.dtype("i1"), "I16": np.dtype("<i2"), "I32": np.dtype("<i4"), "I64": np.dtype("<i8"),
               "U8": np.dtype("u1"), "U16": np.dtype("<u2"), "U32": np.dtype("<u4"), "U64": np.dtype("<u8")}


def bf16_bits_to_float32(bits: np.ndarray) -> np.ndarray:
    """Decode bfloat16 values given as their uint16 bit patterns into float32 (exact).

    bfloat16 is the upper half of an IEEE float32, so the decode is a 16-bit left shift.
    """
    bits = np.asarray(bits)
    if bits.dtype != np.uint16:
        raise MalformedFile(f"bfloat16 bit patterns must be uint16, got {bits.dtype}")
    return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)


def float32_to_bf16_bits(values: np.ndarray) -> np.ndarray:
    """Encode float values as bfloat16 bit patterns (uint16), rounding to nearest even.

    NaN stays NaN (quiet); values beyond the bfloat16 range round to infinity as in PyTorch.
    """
    f = np.ascontiguousarray(values, dtype=np.float32)
    u = f.view(np.uint32).astype(np.uint64)
    rounding = ((u >> np.uint64(16)) & np.uint64(1)) + np.uint64(0x7FFF)
    out = ((u + rounding) >> np.uint64(16)).astype(np.uint16)
    nan = np.isnan(f)
    if nan.any():
        out[nan] = np.uint16(0x7FC0)
    return out


def to_float32(array: np.ndarray, *, name: str = "tensor") -> np.ndarray:
    """A float16/bfloat16-decoded/float32/float64 array as float32 (no copy if already float32).

    Integer arrays are refused: a bfloat16 tensor held as uint16 bits must be decoded explicitly with
    :func:`bf16_bits_to_float32`, because uint16 alone does not say it is bfloat16.
    """
    array = np.asarray(array)
    if array.dtype == np.float32:
        return array
    if array.dtype in (np.float16, np.float64):
        return array.astype(np.float32)
    if array.dtype.kind == "f":  # e.g. longdouble
        return array.astype(np.float32)
    hint = " (decode bfloat16 bits with bf16_bits_to_float32)" if array.dtype == np.uint16 else ""
    raise MalformedFile(f"{name}: dtype {array.dtype} is not a float type{hint}")


def scalar_value(array: np.ndarray, *, name: str = "tensor") -> float:
    """The one number a scalar tensor holds (an ``alpha``): a float of any width or an integer of any
    width (signed or unsigned), 0-dim or with a single element. Bool, complex, several values and
    NaN/Inf are refused with MalformedFile."""
    array = np.asarray(array)
    if array.size != 1:
        raise MalformedFile(f"{name} has {array.size} values, expected 1")
    if array.dtype.kind in "iu":
        return float(array.reshape(-1)[0])
    if array.dtype.kind != "f":
        raise MalformedFile(f"{name}: dtype {array.dtype} is not a number type for a scalar")
    value = float(array.reshape(-1)[0])
    if not np.isfinite(value):
        raise MalformedFile(f"{name}: holds NaN or infinite values")
    return value


def check_finite(array: np.ndarray, *, name: str = "tensor") -> None:
    """Raise MalformedFile if the array holds NaN or infinity."""
    if array.size and not np.isfinite(array).all():
        raise MalformedFile(f"{name}: holds NaN or infinite values")


def _check_shape(name: str, info: TensorInfo) -> None:
    if len(info.shape) > 4:
        raise MalformedFile(f"tensor {name!r}: {len(info.shape)} dimensions (a LoRA factor has at most 4)")
    for dim in info.shape:
        if dim > MAX_DIM:
            raise MalformedFile(f"tensor {name!r}: dimension {dim:,} is absurd for a LoRA factor")
    if info.numel > MAX_TENSOR_ELEMENTS:
        raise MalformedFile(f"tensor {name!r}: {info.numel:,} elements is absurd for a LoRA factor")


class SafetensorsTensors(Mapping[str, np.ndarray]):
    """A read-only, lazy mapping of tensor name -> float32 array over an open safetensors file.

    Each access reads exactly the tensor's bytes (offsets validated against the file size) and
    decodes them; nothing is cached. Use as a context manager or call :meth:`close`.
    Accessing a non-float tensor, or one with NaN/Inf, raises MalformedFile.
    """

    def __init__(self, f: BinaryIO, header: SafetensorsHeader, *, file_size: int, check: bool = True):
        self._f = f
        self.header = header
        self.file_size = file_size
        self._check = check

    @property
    def metadata(self) -> dict[str, str]:
        return self.header.metadata

    @property
    def rejects_nonfinite(self) -> bool:
        """Whether every tensor read is checked for NaN/Inf (so callers need not check again)."""
        return self._check

    def info(self, name: str) -> TensorInfo:
        return self.header.tensors[name]

    def _read(self, name: str, info: TensorInfo, dtype: np.dtype) -> np.ndarray:
        _check_shape(name, info)
        start = self.header.data_start + info.begin
        if start + info.nbytes > self.file_size:
            raise MalformedFile(f"tensor {name!r}: its bytes lie past the end of the file")
        buf = bytearray(info.nbytes)
        self._f.seek(start)
        got = self._f.readinto(buf)
        if got != info.nbytes:
            raise MalformedFile(f"tensor {name!r}: file truncated ({got} of {info.nbytes} bytes)")
        return np.frombuffer(buf, dtype=dtype).reshape(info.shape)

    def scalar(self, name: str, *, label: str | None = None) -> float:
        """The value of a one-element tensor (an alpha): float or integer of any width (see
        :func:`scalar_value`). Its element count is checked before anything is read. ``label`` names
        it in error messages (default: the tensor's key)."""
        info = self.header.tensors[name]
        label = label or f"tensor {name!r}"
        if info.numel != 1:
            raise MalformedFile(f"{label} has {info.numel} values, expected 1")
        if info.dtype in _INT_DTYPES:
            return scalar_value(self._read(name, info, _INT_DTYPES[info.dtype]), name=label)
        if info.dtype not in _FLOAT_DTYPES:
            raise MalformedFile(f"{label}: dtype {info.dtype} is not a number type for a scalar")
        raw = self._read(name, info, _FLOAT_DTYPES[info.dtype])
        arr = bf16_bits_to_float32(raw) if info.dtype == "BF16" else raw
        return scalar_value(arr, name=label)

    def __getitem__(self, name: str) -> np.ndarray:
        info = self.header.tensors[name]
        dtype = _FLOAT_DTYPES.get(info.dtype)
        if dtype is None:
            raise MalformedFile(f"tensor {name!r}: dtype {info.dtype} is not F64/F32/F16/BF16")
        raw = self._read(name, info, dtype)
        arr = bf16_bits_to_float32(raw) if info.dtype == "BF16" else to_float32(raw, name=name)
        if self._check:
            check_finite(arr, name=f"tensor {name!r}")
        return arr

    def __iter__(self) -> Iterator[str]:
        return iter(self.header.tensors)

    def __len__(self) -> int:
        return len(self.header.tensors)

    def __contains__(self, name: object) -> bool:
        return name in self.header.tensors

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> SafetensorsTensors:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_tensors(path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES,
                 reject_nonfinite: bool = True) -> SafetensorsTensors:
    """Open a safetensors file for lazy, bounded tensor reads.

    Raises MalformedFile for a file over ``max_bytes``, a malformed header (reason from
    ``read_header``), and later, on access, for bad tensors. OSError (missing file...) propagates.
    """
    path = Path(path)
    f = open(path, "rb")  # noqa: SIM115 - closed by SafetensorsTensors
    try:
        size = os.fstat(f.fileno()).st_size
        if size > max_bytes:
            raise MalformedFile(f"{path.name}: {size:,} bytes is over the {max_bytes:,}-byte cap for fingerprinting")
        header = read_header(f)
        return SafetensorsTensors(f, header, file_size=size, check=reject_nonfinite)
    except BaseException:
        f.close()
        raise


def read_tensors(path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES,
                 names: list[str] | None = None) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read (all or the named) tensors of a safetensors file eagerly as float32 arrays.

    Returns ``(tensors, metadata)``. Meant for tests and tools; fingerprinting uses the lazy reader.
    """
    with open_tensors(path, max_bytes=max_bytes) as st:
        wanted = list(st) if names is None else names
        return {n: st[n] for n in wanted}, dict(st.metadata)
