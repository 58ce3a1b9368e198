"""Reading researchers' sheets (CSV, TSV, XLSX, JSON) into numbered rows of named fields.

Columns are detected from their headers (and from their contents when the sheet has no header
row); `--map field=Column` overrides. Fields: name, url, model_id, version_id, notes, kind and
one per hash form that has sheet aliases (sha256, autov1, autov2, autov3, crc32, blake3: see
`mirrorwatch.hashing.forms`) plus `hash` (any form)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mirrorwatch.errors import SheetError
from mirrorwatch.hashing.forms import FORMS, sheet_aliases, sheet_forms

MAX_SHEET_BYTES = 2 * 1024**3
_PLAIN_ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("model name", "name", "model", "title", "model title", "lora name", "lora", "model_name"),
    "url": ("civitai url", "url", "link", "civitai link", "model url", "civitai", "page", "source url", "old url"),
    "model_id": ("model id", "modelid", "civitai model id", "model_id"),
    "version_id": ("version id", "model version id", "modelversionid", "versionid", "version_id"),
    "notes": ("notes", "note", "comment", "comments", "description"),
    "kind": ("type", "kind", "model type"),
}
_ANY_HASH_ALIASES = ("hash", "hashes", "file hash", "model hash")


def header_aliases() -> dict[str, tuple[str, ...]]:
    """Field -> column headers naming it: the plain fields, one per hash form (from the registry), `hash`."""
    return {**_PLAIN_ALIASES, **sheet_aliases(), "hash": _ANY_HASH_ALIASES}


def fields() -> tuple[str, ...]:
    return tuple(header_aliases())


_HEX = re.compile(r"^(sha256:)?[0-9a-fA-F]{8,64}$")


def _key(header: str) -> str:
    return " ".join(re.sub(r"[_\-.:/]+", " ", header.strip().lower()).split())


@dataclass
class Sheet:
    """Rows of a sheet with the detected column for each field."""

    fmt: str
    columns: list[str]
    mapping: dict[str, str]  # field -> column
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # (row number, field -> raw value)
    raw_json: Any = None  # set for JSON inputs that are Civitai objects


def parse_map(text: str | None) -> dict[str, str]:
    """Parse `--map name=Model Name,url=Link,sha256=Hash`."""
    if not text:
        return {}
    out: dict[str, str] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise SheetError(f"--map entries look like field=Column, got {part!r}")
        f, col = (p.strip() for p in part.split("=", 1))
        if f not in fields():
            raise SheetError(f"--map: unknown field {f!r} (fields: {', '.join(fields())})")
        out[f] = col
    return out


def detect_format(path: Path, data: bytes) -> str:
    ext = path.suffix.lower()
    if ext in (".xlsx", ".xlsm"):
        return "xlsx"
    if ext == ".json" or ext == ".jsonl":
        return "json"
    if ext == ".tsv":
        return "tsv"
    if ext == ".csv":
        return "csv"
    if data[:4] == b"PK\x03\x04":
        return "xlsx"
    head = data.lstrip()[:1]
    if head in (b"[", b"{"):
        return "json"
    return "tsv" if data[:4096].count(b"\t") > data[:4096].count(b",") else "csv"


def decode_text(data: bytes, encoding: str | None = None) -> str:
    if encoding:
        try:
            return data.decode(encoding)
        except (LookupError, UnicodeDecodeError) as exc:
            raise SheetError(f"cannot decode the sheet as {encoding}: {exc}") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if b"\x00" in data[:65536]:
        raise SheetError("the file holds binary data (NUL bytes), not a text sheet")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SheetError(
            f"the sheet is not UTF-8 (byte 0x{data[exc.start]:02x} on line {line}); "
            "re-save it as UTF-8 or pass --encoding (e.g. --encoding cp1252)"
        ) from None


def read_sheet(path: Path, *, mapping: dict[str, str] | None = None, encoding: str | None = None,
               fmt: str | None = None) -> Sheet:
    """Read a sheet file; raise SheetError with a clear reason when it cannot be read at all."""
    try:
        size = path.stat().st_size
        if size > MAX_SHEET_BYTES:
            raise SheetError(f"{path.name} is {size / 1e9:.1f} GB; sheets over {MAX_SHEET_BYTES / 1e9:.0f} GB are refused")
        data = path.read_bytes()
    except FileNotFoundError:
        raise SheetError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise SheetError(f"{path} is a folder, not a sheet") from None
    except PermissionError:
        raise SheetError(f"cannot read {path}: permission denied") from None
    return parse_sheet(data, name=path.name, mapping=mapping, encoding=encoding, fmt=fmt)


def parse_sheet(data: bytes, *, name: str = "sheet", mapping: dict[str, str] | None = None,
                encoding: str | None = None, fmt: str | None = None) -> Sheet:
    if not data.strip():
        raise SheetError(f"{name} is empty")
    fmt = fmt or detect_format(Path(name), data)
    if fmt == "xlsx":
        table = _xlsx_rows(data)
    elif fmt == "json":
        return _json_sheet(decode_text(data, encoding), mapping or {})
    else:
        table = _delimited_rows(decode_text(data, encoding), "\t" if fmt == "tsv" else None)
    return _sheet_from_table(fmt, table, mapping or {})


def _delimited_rows(text: str, delimiter: str | None) -> list[list[str]]:
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    csv.field_size_limit(10 * 1024 * 1024)
    try:
        return [row for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)]
    except csv.Error as exc:
        raise SheetError(f"malformed CSV: {exc}") from None


def _xlsx_rows(data: bytes) -> list[list[str]]:
    import zipfile

    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise SheetError(f"not a readable XLSX workbook: {exc}") from None
    ws = wb.worksheets[0]
    rows = [["" if v is None else str(v) for v in row] for row in ws.iter_rows(values_only=True)]
    wb.close()
    return rows


def _looks_like_data(cell: str) -> bool:
    c = cell.strip()
    return bool(_HEX.match(c)) or "civitai" in c.lower() or c.lower().startswith("http")


def _auto_map(header: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    keyed = {_key(h): h for h in header if h.strip()}
    for f, aliases in header_aliases().items():
        for alias in aliases:
            if alias in keyed and keyed[alias] not in mapping.values():
                mapping[f] = keyed[alias]
                break
    return mapping


def _content_map(table: list[list[str]], width: int) -> dict[str, str]:
    """For header-less sheets: pick columns by what their cells look like."""
    sample = [r for r in table[:200] if any(c.strip() for c in r)]
    mapping: dict[str, str] = {}
    for col in range(width):
        cells = [r[col].strip() for r in sample if col < len(r) and r[col].strip()]
        if not cells:
            continue
        urls = sum(1 for c in cells if "civitai" in c.lower() or c.lower().startswith("http"))
        hexes = sum(1 for c in cells if _HEX.match(c))
        if urls >= len(cells) / 2 and "url" not in mapping:
            mapping["url"] = str(col)
        elif hexes >= len(cells) / 2 and "hash" not in mapping:
            mapping["hash"] = str(col)
        elif "name" not in mapping:
            mapping["name"] = str(col)
    return mapping


def _sheet_from_table(fmt: str, table: list[list[str]], override: dict[str, str], *,
                      numbered_from: int | None = None) -> Sheet:
    while table and not any(c.strip() for c in table[0]):
        table = table[1:]
    if not table:
        raise SheetError("the sheet has no rows")
    width = max(len(r) for r in table)
    header = [c.strip() for c in table[0]]
    auto = _auto_map(header)
    has_header = bool(auto) or not any(_looks_like_data(c) for c in header)
    if has_header:
        columns = header
        body = table[1:]
        first_row = 2 if numbered_from is None else numbered_from
        mapping = auto
        for f, col in override.items():
            if col not in columns:
                raise SheetError(f"--map {f}={col}: no column named {col!r} (columns: {', '.join(columns)})")
            mapping[f] = col
        index = {c: i for i, c in enumerate(columns)}
    else:
        columns = [str(i) for i in range(width)]
        body = table
        first_row = 1
        mapping = _content_map(table, width)
        for f, col in override.items():
            if col not in columns:
                raise SheetError(f"--map {f}={col}: this sheet has no header row; name columns by number 0..{width - 1}")
            mapping[f] = col
        index = {c: i for i, c in enumerate(columns)}
    # a hash column that can match on its own (not an 8-hex AutoV1 or CRC32 alone) identifies a model
    strong = [f for f in sheet_forms() if FORMS[f].exact_score is not None]
    if not any(f in mapping for f in ("name", "url", *strong, "hash", "version_id")):
        raise SheetError(
            "no usable column found (expected a model name, a Civitai URL or a hash column; "
            f"columns: {', '.join(c for c in columns if c) or 'none'}); use --map field=Column"
        )
    sheet = Sheet(fmt=fmt, columns=columns, mapping=mapping)
    for offset, raw in enumerate(body):
        values = {f: (raw[index[col]] if index[col] < len(raw) else "") for f, col in mapping.items()}
        sheet.rows.append((first_row + offset, values))
    return sheet


def _json_sheet(text: str, override: dict[str, str]) -> Sheet:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SheetError(f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    items = doc if isinstance(doc, list) else [doc]
    if isinstance(doc, dict) and isinstance(doc.get("items"), list):
        items = doc["items"]  # Civitai list responses
    from mirrorwatch.bank.civitai import is_civitai_object

    if items and all(isinstance(i, dict) for i in items) and any(is_civitai_object(i) for i in items):
        return Sheet(fmt="civitai-json", columns=[], mapping={}, raw_json=items)
    if not all(isinstance(i, dict) for i in items):
        raise SheetError("JSON sheets must be an object or a list of objects")
    header: list[str] = []
    for item in items:
        for k in item:
            if k not in header:
                header.append(str(k))
    table = [header] + [["" if item.get(h) is None else str(item.get(h)) for h in header] for item in items]
    return _sheet_from_table("json", table, override, numbered_from=1)


def iter_nonblank(sheet: Sheet) -> Iterator[tuple[int, dict[str, str]]]:
    for number, values in sheet.rows:
        if any(v.strip() for v in values.values()):
            yield number, values
