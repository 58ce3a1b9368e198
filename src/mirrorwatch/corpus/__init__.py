"""A generated evaluation corpus for the weight fingerprint: real LoRA module lists and shapes
(``architectures``), trained-like synthetic LoRA/LoCon/LoHa/LoKr files (``generate``) and the
changes re-uploaders make to them (``transforms``). Used by tests and benchmarks; nothing here
touches real model files or real people's names."""

from __future__ import annotations

from .architectures import ARCHITECTURES, FLUX, SD15, SDXL, Architecture, ModuleSpec
from .generate import LoraFile, generate_lora, generate_lycoris, kohya_metadata
from .transforms import (
    TRANSFORMS,
    convert_dtype,
    edit_metadata,
    kohya_int_alpha,
    kohya_to_peft,
    merge,
    peft_to_kohya,
    refactor,
    rename_file,
    resize_half,
    strip_metadata,
    write_safetensors,
)

__all__ = [
    "ARCHITECTURES",
    "FLUX",
    "SD15",
    "SDXL",
    "TRANSFORMS",
    "Architecture",
    "LoraFile",
    "ModuleSpec",
    "convert_dtype",
    "edit_metadata",
    "generate_lora",
    "generate_lycoris",
    "kohya_metadata",
    "kohya_int_alpha",
    "kohya_to_peft",
    "merge",
    "peft_to_kohya",
    "refactor",
    "rename_file",
    "resize_half",
    "strip_metadata",
    "write_safetensors",
]
