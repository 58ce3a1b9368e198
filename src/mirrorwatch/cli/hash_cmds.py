"""`mirrorwatch hash` and `mirrorwatch inspect`: hash forms of local files, and what a safetensors
header says.

Both work on files a user points at and trust nothing in them: file names and header metadata are
shown as plain text (never as Rich markup, control characters escaped), pickle formats are hashed
as bytes and never opened, a malformed safetensors header gets the reader's one-line reason.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from mirrorwatch.display import safe_text
from mirrorwatch.errors import InvalidInput, MirrorwatchError, NotFound
from mirrorwatch.formats.kinds import guess_kind
from mirrorwatch.formats.safetensors import SafetensorsError, SafetensorsHeader, read_header
from mirrorwatch.hashing.engine import FileHashes, hash_file
from mirrorwatch.hashing.forms import FORMS, derive, display_order

from . import hash_core
from .app import app, console, err_console
from .hash_core import Collected, display

#: Files at least this large get a progress bar (when stdout is a terminal).
PROGRESS_MIN_BYTES = 100 * 1000 * 1000
#: Formats that are Python pickles (or zip files of pickles): hashed as bytes, never opened.
PICKLE_SUFFIXES = frozenset({".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle"})
#: How many tensors `inspect` lists without --json, and how long a metadata value may be on screen.
SHOWN_TENSORS = 12
SHOWN_VALUE_CHARS = 300


def _say_error(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {escape(safe_text(message))}", highlight=False, soft_wrap=True)


def _say_note(message: str) -> None:
    err_console.print(f"[yellow]note:[/] {escape(safe_text(message))}", highlight=False, soft_wrap=True)


# --------------------------------------------------------------------------- hash


def collect_files(paths: list[str]) -> Collected:
    """Files named on the command line plus regular files under named folders, deduplicated."""
    return hash_core.collect_files(paths, _say_error, _say_note)


def _hash_one(path: str, show_progress: bool) -> FileHashes:
    size = os.stat(path).st_size
    if not show_progress or size < PROGRESS_MIN_BYTES:
        return hash_file(path)
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task(escape(display(os.path.basename(path), 40)), total=size)
        return hash_file(path, progress=lambda n: bar.advance(task, n))


def _hash_table(results: list[FileHashes]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("File", overflow="fold")
    table.add_column("Size", justify="right", no_wrap=True)
    table.add_column("Form", no_wrap=True)
    table.add_column("Value", no_wrap=True, min_width=max(f.hex_length for f in FORMS.values()))
    order = display_order()
    for i, result in enumerate(results):
        values = result.to_dict()
        for j, form in enumerate(order):
            value = values[form]
            table.add_row(
                Text(display(result.path or "")) if j == 0 else "",
                f"{result.size:,}" if j == 0 else "",
                FORMS[form].label,
                Text(value) if value else Text("—", style="dim"),
                end_section=(j == len(order) - 1 and i != len(results) - 1),
            )
    return table


@app.command("hash")
def hash_command(
    paths: list[str] = typer.Argument(..., help="Files or folders (folders are searched recursively)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON array, one object per file."),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV with a header row."),
) -> None:
    """Every hash form of local files: SHA256, AutoV1, AutoV2, AutoV3, CRC32 and BLAKE3.

    Each file is read once. Pickle formats (.ckpt, .pt, .bin...) are hashed as bytes, never opened.
    Example: mirrorwatch hash ./models --json
    """
    if as_json and as_csv:
        raise InvalidInput("choose one of --json and --csv")
    found = collect_files(paths)
    show_progress = console.is_terminal and err_console.is_terminal
    results = hash_core.hash_all(found, lambda path: _hash_one(path, show_progress), _say_error)
    if as_json:
        hash_core.write_json(results)
    elif as_csv:
        hash_core.write_csv(results)
    elif results:
        table = _hash_table(results)
        out = console
        if not console.is_terminal:  # never fold a hash when the table goes to a file or pipe
            longest = max(len(display(r.path or "")) for r in results)
            out = Console(file=console.file, width=max(console.width, longest + 100), highlight=False)
        out.print(table)
    elif not found.problems:
        err_console.print("no files found")
    if found.problems:
        raise typer.Exit(1)


# --------------------------------------------------------------------------- inspect


def _looks_like_pickle(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return head.startswith(b"PK\x03\x04") or (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5)


def _open_header(path: str) -> SafetensorsHeader:
    if Path(path).suffix.lower() in PICKLE_SUFFIXES:
        raise InvalidInput(
            f"{display(path)}: a {Path(path).suffix.lower()} file is a Python pickle, which can run code "
            "when opened, so mirrorwatch never opens it; `mirrorwatch hash` gives its hashes"
        )
    try:
        if not stat.S_ISREG(os.stat(path).st_mode) and not os.path.isdir(path):
            raise InvalidInput(f"{display(path)}: not a regular file")
        return read_header(path)
    except FileNotFoundError:
        raise NotFound(f"{display(path)}: no such file") from None
    except IsADirectoryError:
        raise InvalidInput(f"{display(path)}: is a folder; inspect takes one safetensors file") from None
    except OSError as exc:
        raise MirrorwatchError(f"{display(path)}: cannot read: {exc.strerror or exc}") from None
    except SafetensorsError as exc:
        if _looks_like_pickle(path):
            raise SafetensorsError(
                f"{display(path)}: looks like a PyTorch pickle/zip file, not safetensors; "
                "mirrorwatch never opens pickles"
            ) from None
        raise SafetensorsError(f"{display(path)}: {exc}") from None


def inspect_dict(path: str, size: int, header: SafetensorsHeader) -> dict[str, Any]:
    """Everything `inspect --json` prints."""
    return {
        "path": path,
        "size": size,
        "header_len": header.header_len,
        "data_start": header.data_start,
        "data_size": header.data_size,
        "tensor_count": len(header.tensors),
        "tensor_bytes": header.tensor_bytes,
        "dtypes": header.dtype_counts,
        "tensors": {
            name: {"dtype": t.dtype, "shape": list(t.shape), "data_offsets": [t.begin, t.end]}
            for name, t in header.tensors.items()
        },
        "metadata": header.metadata,
        "kohya": header.kohya_fields,
        "sshs": header.sshs_fields,
        "modelspec": header.modelspec_fields,
        "sshs_model_hash": header.sshs_model_hash,
        "kind": guess_kind(header).to_dict(),
    }


def _fields_table(title: str, fields: dict[str, str]) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, show_header=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for key in sorted(fields):
        table.add_row(
            Text(display(key, 80)), Text(display(fields[key], SHOWN_VALUE_CHARS, keep_newlines=True))
        )
    return table


def _print_inspect(info: dict[str, Any], header: SafetensorsHeader) -> None:
    kind = info["kind"]
    summary = Table(box=None, show_header=False, pad_edge=False)
    summary.add_column(style="bold", no_wrap=True)
    summary.add_column(overflow="fold")
    summary.add_row("File", Text(display(info["path"])))
    summary.add_row(
        "Size", f"{info['size']:,} bytes (header {info['header_len']:,}, data from {info['data_start']:,})"
    )
    kind_text = (
        kind["family"] + (f" ({kind['variant']})" if kind["variant"] else "") + f", base {kind['base']}"
    )
    summary.add_row("Kind", Text(kind_text))
    for reason in kind["reasons"]:
        summary.add_row("", Text(f"· {display(reason, 200)}", style="dim"))
    summary.add_row("Tensors", f"{info['tensor_count']:,} ({info['tensor_bytes']:,} bytes)")
    dtypes = ", ".join(f"{d} \u00d7{n:,}" for d, n in info["dtypes"].items()) or "none"
    summary.add_row("Dtypes", Text(dtypes))
    sshs = header.sshs_model_hash
    if sshs:
        summary.add_row("sshs_model_hash", Text(f"{sshs} (AutoV3 {derive('autov3', sshs)} of the file as trained)"))
    elif "sshs_model_hash" in header.metadata:
        raw = display(header.metadata["sshs_model_hash"], 80)
        summary.add_row("sshs_model_hash", Text(f"{raw} (not a 64-hex SHA-256)"))
    console.print(summary)

    tensors = Table(title="Tensors", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False)
    tensors.add_column("name", overflow="fold")
    tensors.add_column("dtype", no_wrap=True)
    tensors.add_column("shape", no_wrap=True)
    for name, t in list(header.tensors.items())[:SHOWN_TENSORS]:
        tensors.add_row(Text(display(name, 160)), t.dtype, "\u00d7".join(map(str, t.shape)) or "scalar")
    if header.tensors:
        console.print(tensors)
        if len(header.tensors) > SHOWN_TENSORS:
            console.print(f"  \u2026 and {len(header.tensors) - SHOWN_TENSORS:,} more (--json lists all)")

    sections = [
        ("kohya training fields (ss_*)", header.kohya_fields),
        ("kohya hashes (sshs_*)", header.sshs_fields),
        ("ModelSpec (modelspec.*)", header.modelspec_fields),
    ]
    known = {k for _, fields in sections for k in fields}
    other = {k: v for k, v in header.metadata.items() if k not in known}
    sections.append(("Other metadata", other))
    if not header.metadata:
        console.print("No __metadata__.")
    for title, fields in sections:
        if fields:
            console.print(_fields_table(title, fields))


@app.command("inspect")
def inspect_command(
    file: str = typer.Argument(..., help="A safetensors file."),
    as_json: bool = typer.Option(
        False, "--json", help="Print everything as JSON (all tensors, all metadata)."
    ),
) -> None:
    """What a safetensors header says: tensors, dtypes, kohya/ModelSpec metadata, embedded hash, kind.

    Only the header is read (at most 25 MB); pickle formats are refused, never opened.
    Example: mirrorwatch inspect lora.safetensors --json
    """
    header = _open_header(file)
    size = os.stat(file).st_size
    info = inspect_dict(file, size, header)
    if as_json:
        sys.stdout.write(json.dumps(info, indent=2) + "\n")
    else:
        _print_inspect(info, header)
