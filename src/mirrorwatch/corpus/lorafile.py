"""The in-memory LoRA-family file the corpus generates and transforms, and the pieces both need:
seeded generators, the alpha/rank fold, and writing safetensors. `generate` and `transforms` both
build on this module; neither imports the other."""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mirrorwatch.match.fingerprint.tensors import float32_to_bf16_bits

# On-disk dtypes write_safetensors accepts: name -> (safetensors dtype, numpy dtype; None = bf16 bits).
DTYPES = {"fp32": ("F32", np.dtype("<f4")), "fp16": ("F16", np.dtype("<f2")), "bf16": ("BF16", None)}
# Integer tensors (alphas as diffusers' convert_state_dict_to_kohya writes them: int64) keep their type.
_INT_ST_DTYPES = {"i1": "I8", "i2": "I16", "i4": "I32", "i8": "I64", "u1": "U8", "u2": "U16", "u4": "U32", "u8": "U64"}


@dataclass
class LoraFile:
    """An in-memory LoRA-family file: tensors (float32/float16 arrays), metadata and on-disk dtype.

    ``layout`` is ``"kohya"`` (``lora_unet_….lora_down.weight`` + ``.alpha``), ``"peft"``
    (diffusers ``unet.….lora_A.weight``, no alpha) or ``"lycoris"`` (LoHa/LoKr keys).
    ``info`` records how it was generated (seed, init seed, rank, preset...), for reports.
    """

    tensors: dict[str, np.ndarray]
    metadata: dict[str, str]
    dtype: str = "fp16"
    arch: str = "sd15"
    layout: str = "kohya"
    info: dict = field(default_factory=dict)

    def write(self, path: str | Path) -> Path:
        return write_safetensors(path, self.tensors, self.metadata, self.dtype)

    @property
    def nbytes(self) -> int:
        per = {"fp32": 4, "fp16": 2, "bf16": 2}[self.dtype]
        return sum(int(np.prod(t.shape)) * per for t in self.tensors.values())


def rng_for(*parts: object) -> np.random.Generator:
    """A generator seeded by any mix of ints and strings (stable within a numpy version)."""
    words = []
    for p in parts:
        if isinstance(p, int | np.integer):
            words.append(int(p) & 0xFFFFFFFF)
            words.append((int(p) >> 32) & 0xFFFFFFFF)
        else:
            words.append(zlib.crc32(str(p).encode("utf-8")))
    return np.random.default_rng(np.random.SeedSequence(words))



def fold_scale(up: np.ndarray, down: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Fold alpha/rank into the factors the way diffusers' converters do (power-of-two split)."""
    scale_down, scale_up = scale, 1.0
    while scale_down * 2 < scale_up:
        scale_down *= 2
        scale_up /= 2
    return (up * np.float32(scale_up)).astype(np.float32), (down * np.float32(scale_down)).astype(np.float32)


def write_safetensors(path: str | Path, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None,
                      dtype: str = "fp16") -> Path:
    """Write a safetensors file; every float tensor is stored as ``dtype`` ("fp32", "fp16" or "bf16"),
    integer tensors (int alphas) as their own integer type."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, not {dtype!r}")
    st_dtype, np_dtype = DTYPES[dtype]
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs: list[bytes] = []
    offset = 0
    for name in sorted(tensors):
        arr = np.asarray(tensors[name])
        if arr.dtype.kind in "iu":
            int_dtype = arr.dtype.newbyteorder("<")
            data = np.ascontiguousarray(arr, dtype=int_dtype).tobytes()
            header[name] = {"dtype": _INT_ST_DTYPES[int_dtype.str[1:]], "shape": list(arr.shape),
                            "data_offsets": [offset, offset + len(data)]}
            blobs.append(data)
            offset += len(data)
            continue
        if np_dtype is None:
            data = float32_to_bf16_bits(arr).astype("<u2").tobytes()
        else:
            data = np.ascontiguousarray(arr, dtype=np_dtype).tobytes()
        header[name] = {"dtype": st_dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    path = Path(path)
    with open(path, "wb") as f:
        f.write(len(raw).to_bytes(8, "little"))
        f.write(raw)
        for blob in blobs:
            f.write(blob)
    return path
