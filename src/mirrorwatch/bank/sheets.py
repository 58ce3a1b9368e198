"""Reading researchers' sheets (CSV, TSV, XLSX, JSON) into numbered rows of named fields.

Columns are detected from their headers (and from their contents when the sheet has no header
row); `--map field=Column` overrides. Fields: name, url, model_id, version_id, notes, kind and
one per hash form that has sheet aliases (sha256, autov1, autov2, autov3, crc32, blake3: see
`mirrorwatch.hashing.forms`) plus `hash` (any form)."""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import re
import zipfile
import zlib
from array import array
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain, islice
from operator import itemgetter
from pathlib import Path
from typing import Any, BinaryIO

from mirrorwatch.errors import SheetError
from mirrorwatch.formats.jsonsafe import JsonRefused, loads_bounded
from mirrorwatch.hashing.forms import FORMS, sheet_aliases, sheet_forms

MAX_SHEET_BYTES = 2 * 1024**3
_PLAIN_ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("model name", "name", "model", "title", "model title", "lora name", "lora", "model_name"),
    "url": ("civitai url", "url", "link", "civitai link", "model url", "civitai", "page", "source url", "old url"),
    "model_id": ("model id", "modelid", "civitai model id", "model_id"),
    "version_id": ("version id", "model version id", "modelversionid", "versionid", "version_id",
                   "civitai version id", "civitai model version id"),
    "notes": ("notes", "note", "comment", "comments", "description"),
    "kind": ("type", "kind", "model type"),
    # file sizes (bank/sizes.py): cells may carry their unit ("1.2 MB"); a column named in KB or MB
    # gives unit-less cells that unit
    "size": ("size", "file size", "filesize", "bytes", "size bytes", "size in bytes", "file size bytes",
             "file size (bytes)", "size (bytes)", "model size"),
    "size_kb": ("sizekb", "size kb", "size (kb)", "file size kb", "file size (kb)", "size kib", "size (kib)",
                "kb", "size in kb"),
    "size_mb": ("sizemb", "size mb", "size (mb)", "file size mb", "file size (mb)", "size mib", "size (mib)",
                "mb", "size in mb"),
}
_ANY_HASH_ALIASES = ("hash", "hashes", "file hash", "model hash")


def header_aliases() -> dict[str, tuple[str, ...]]:
    """Field -> column headers naming it: the plain fields, one per hash form (from the registry), `hash`."""
    return {**_PLAIN_ALIASES, **sheet_aliases(), "hash": _ANY_HASH_ALIASES}


def fields() -> tuple[str, ...]:
    return tuple(header_aliases())


_HEX = re.compile(r"^(sha256:)?[0-9a-fA-F]{8,64}$")
# A header naming a digest: never dropped silently (issue 8: no row added with a hash left out).
_UNREAD_HASH = re.compile(r"\b(sha\d*|sha\d+ \d+|md5|hashes|hash|autov\d+|blake\d*|crc\d*|digest|checksum)\b")


@dataclass(frozen=True)
class SheetLimits:
    """Every bound on reading one sheet, in one place. A sheet over any of them is refused with a
    SheetError naming the limit; nothing is parsed fully in memory first. The defaults keep each
    parser under ~300 MB RSS and linear in time for any file the 50 MB upload cap allows (see
    benchmarks/bench_sheet_bombs.py); the CLI reads files of up to `max_file_bytes` by streaming."""

    #: A sheet file on disk (the CLI); uploads are capped lower by services.uploads.MAX_UPLOAD_BYTES.
    max_file_bytes: int = MAX_SHEET_BYTES
    #: Data rows kept (non-blank rows of the mapped columns).
    max_rows: int = 2_000_000
    #: Columns in one row, or distinct keys over a JSON sheet's objects.
    max_columns: int = 1_000
    #: Cells read in total, blank ones included (bounds the time a sheet can take).
    max_cells: int = 10_000_000
    #: Characters in one cell (Excel's own limit).
    max_cell_chars: int = 32_767
    #: Characters in one line of a CSV/TSV (a quoted cell may span lines; each cell is bounded above).
    max_line_chars: int = 1_048_576
    #: Uncompressed bytes of all XLSX members together, as declared in the zip directory.
    max_xlsx_bytes: int = 512 * 1024**2
    #: Uncompressed bytes of one XLSX member other than worksheets and shared strings (styles, workbook,
    #: relationships: openpyxl reads these whole).
    max_xlsx_part_bytes: int = 16 * 1024**2
    #: Uncompressed/compressed ratio of one XLSX member over 1 MiB (real sheets compress ~5-30x).
    max_xlsx_ratio: int = 200
    #: Entries in an XLSX shared-strings table (openpyxl holds them all in memory).
    max_shared_strings: int = 2_000_000
    #: Bytes of XML text between two tags (one cell's text, escaped, or one tag).
    max_xml_run_bytes: int = 1024**2
    #: A JSON sheet is parsed whole (Python objects cost ~20x their JSON text): its size, its number
    #: of values (commas + brackets) and its nesting depth are bounded.
    max_json_bytes: int = 16 * 1024**2
    max_json_values: int = 1_000_000
    max_json_depth: int = 64


#: The CLI (`mirrorwatch bank import`) reads big sheets by streaming.
DEFAULT_LIMITS = SheetLimits()
#: `mirrorwatch bank import FILE` of a CSV/TSV/XLSX/JSONL sheet (:func:`open_sheet`): rows are streamed
#: through the importer in bounded batches, so rows and cells bound only the time an import takes, not its
#: memory (XLSX keeps its archive, part and shared-string bounds: openpyxl holds those in memory).
STREAM_LIMITS = dataclasses.replace(DEFAULT_LIMITS, max_file_bytes=256 * 1024**3, max_rows=1_000_000_000,
                                    max_cells=20_000_000_000)
#: Browser and API uploads: the preview holds every row's record in memory (~2 KB a row) and runs on
#: a web worker, so an upload gets fewer rows, cells and XML; bigger sheets go through the CLI.
UPLOAD_LIMITS = dataclasses.replace(DEFAULT_LIMITS, max_rows=100_000, max_cells=2_000_000,
                                    max_xlsx_bytes=128 * 1024**2)


def _key(header: str) -> str:
    return " ".join(re.sub(r"[_\-.:/]+", " ", header.strip().lower()).split())


@dataclass
class Sheet:
    """Rows of a sheet with the detected column for each field.

    Only the mapped columns of non-blank rows are kept, column-wise (a row number array and one list
    of strings per field), so a sheet costs about one pointer and one string per kept cell.

    A streamed sheet (:func:`open_sheet`) keeps no rows: its header is read and its columns mapped
    when it is opened, and `rows` reads the rest of the file once, a row at a time."""

    fmt: str
    columns: list[str]
    mapping: dict[str, str]  # field -> column
    raw_json: Any = None  # set for JSON inputs that are Civitai objects
    _numbers: array = field(default_factory=lambda: array("q"), repr=False)
    _values: list[list[str]] = field(default_factory=list, repr=False)
    _stream: Iterator[tuple[int, tuple[str, ...]]] | None = field(default=None, repr=False)

    @property
    def streamed(self) -> bool:
        return self._stream is not None

    @property
    def row_count(self) -> int:
        if self._stream is not None:
            raise TypeError("a streamed sheet does not know its row count before it is read")
        return len(self._numbers)

    @property
    def rows(self) -> Iterator[tuple[int, dict[str, str]]]:
        """(row number, field -> raw value) for every kept row (a streamed sheet: once)."""
        fields = list(self.mapping)
        if self._stream is not None:
            stream, self._stream = self._stream, iter(())
            for number, values in stream:
                yield number, dict(zip(fields, values, strict=True))
            return
        for i, number in enumerate(self._numbers):
            yield number, {f: self._values[j][i] for j, f in enumerate(fields)}


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
    """The format from the extension, else from the first bytes (`data` may be just the start)."""
    ext = path.suffix.lower()
    if ext in (".xlsx", ".xlsm"):
        return "xlsx"
    if ext in (".jsonl", ".ndjson"):
        return "jsonl"
    if ext == ".json":
        return "json"
    if ext in (".sha256", ".sha256sum") or path.name.lower() in ("sha256sums", "sha256sums.txt"):
        return "sha256sum"
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


def _text_encoding(head: bytes, encoding: str | None) -> str:
    """The encoding to read a text sheet with, from --encoding or its first bytes."""
    if encoding:
        try:
            return codecs.lookup(encoding).name
        except LookupError:
            raise SheetError(f"unknown encoding {encoding!r}") from None
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if b"\x00" in head:
        raise SheetError("the file holds binary data (NUL bytes), not a text sheet")
    return "utf-8-sig"


def _decode_problem(exc: UnicodeDecodeError, encoding: str, line: int) -> SheetError:
    if encoding == "utf-8-sig":
        bad = exc.object[exc.start] if exc.start < len(exc.object) else 0
        return SheetError(
            f"the sheet is not UTF-8 (byte 0x{bad:02x} on line {line}); "
            "re-save it as UTF-8 or pass --encoding (e.g. --encoding cp1252)"
        )
    return SheetError(f"cannot decode the sheet as {encoding} (line {line}: {exc.reason})")


def decode_text(data: bytes, encoding: str | None = None) -> str:
    enc = _text_encoding(data[:65536], encoding)
    try:
        return data.decode(enc)
    except UnicodeDecodeError as exc:
        raise _decode_problem(exc, enc, data[: exc.start].count(b"\n") + 1) from None


def read_sheet(path: Path, *, mapping: dict[str, str] | None = None, encoding: str | None = None,
               fmt: str | None = None, limits: SheetLimits = DEFAULT_LIMITS) -> Sheet:
    """Read a sheet file; raise SheetError with a clear reason when it cannot be read at all.
    The file is streamed (CSV, TSV, XLSX), never read whole."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, io.SEEK_END)
            f.seek(0)
            if size > limits.max_file_bytes:
                raise SheetError(f"{path.name} is {size / 1e9:.1f} GB; sheets over "
                                 f"{limits.max_file_bytes / 1e9:.0f} GB are refused")
            return _parse(f, size, name=path.name, mapping=mapping, encoding=encoding, fmt=fmt, limits=limits)
    except OSError as exc:
        raise _open_error(path, exc) from None


def _open_error(path: Path, exc: OSError) -> OSError | SheetError:
    """A sheet that cannot be opened, said in a line; other OS errors go on as they are."""
    if isinstance(exc, FileNotFoundError):
        return SheetError(f"no such file: {path}")
    if isinstance(exc, IsADirectoryError):
        return SheetError(f"{path} is a folder, not a sheet")
    if isinstance(exc, PermissionError):
        return SheetError(f"cannot read {path}: permission denied")
    return exc


@contextmanager
def open_sheet(path: Path, *, mapping: dict[str, str] | None = None, encoding: str | None = None,
               fmt: str | None = None, limits: SheetLimits = STREAM_LIMITS) -> Iterator[Sheet]:
    """A sheet file opened for one streamed pass: the header is read and the columns mapped now (a
    SheetError for a sheet that cannot be read at all), the rows as `Sheet.rows` is iterated (a
    SheetError there for a bad row further on: a cell over the limits, a decoding error). CSV, TSV,
    JSONL and XLSX (openpyxl's read-only mode) stream; JSON documents (Civitai answers, lists) are
    parsed whole under their own size limit, as `read_sheet` does."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below, after the caller's pass over the rows
    except OSError as exc:
        raise _open_error(path, exc) from None
    sheet = None
    try:
        size = f.seek(0, io.SEEK_END)
        f.seek(0)
        if size > limits.max_file_bytes:
            raise SheetError(f"{path.name} is {size / 1e9:.1f} GB; sheets over "
                             f"{limits.max_file_bytes / 1e9:.0f} GB are refused")
        sheet = _parse(f, size, name=path.name, mapping=mapping, encoding=encoding, fmt=fmt, limits=limits,
                       stream=True)
        yield sheet
    finally:
        if sheet is not None and sheet._stream is not None:
            close = getattr(sheet._stream, "close", None)
            if close is not None:
                close()
        f.close()


def parse_sheet(data: bytes, *, name: str = "sheet", mapping: dict[str, str] | None = None,
                encoding: str | None = None, fmt: str | None = None,
                limits: SheetLimits = DEFAULT_LIMITS) -> Sheet:
    return _parse(io.BytesIO(data), len(data), name=name, mapping=mapping, encoding=encoding, fmt=fmt,
                  limits=limits)


def _parse(f: BinaryIO, size: int, *, name: str, mapping: dict[str, str] | None, encoding: str | None,
           fmt: str | None, limits: SheetLimits, stream: bool = False) -> Sheet:
    head = f.read(65536)
    f.seek(0)
    if not head.strip() and size <= len(head):
        raise SheetError(f"{name} is empty")
    if fmt is None:
        fmt = detect_format(Path(name), head)
        if fmt in ("csv", "tsv"):
            fmt = _checksum_format(head, encoding, name) or fmt
    if fmt == "jsonl":
        if not _is_jsonl(head, encoding):
            fmt = "json"  # a JSON document in a .jsonl file: read as JSON
        else:
            sheet = _jsonl_sheet(f, head, encoding, mapping or {}, limits)
            return sheet if stream else _materialise(sheet, limits)
    if fmt == "sha256sum":
        return _sha256sum_sheet(f, head, encoding, name, limits, stream)
    if fmt == "xlsx":
        table: Iterable[list[str]] = _xlsx_rows(f, limits)
    elif fmt == "json":
        if size > limits.max_json_bytes:
            raise SheetError(f"{name}: JSON sheets are limited to {limits.max_json_bytes // 1024**2} MB "
                             f"(this one is {size / 1024**2:.1f} MB); split it or use CSV")
        return _json_sheet(f.read(), encoding, mapping or {}, limits)
    else:
        table = _delimited_rows(f, head, encoding, "\t" if fmt == "tsv" else None, limits)
    sheet = _sheet_from_table(fmt, table, mapping or {}, limits, stream=True)
    return sheet if stream else _materialise(sheet, limits)


def _checksum_format(head: bytes, encoding: str | None, name: str) -> str | None:
    """"sha256sum" when a text file's first line is a sha256sum/shasum/BSD checksum line; a SheetError
    naming the tool when it is a checksum list of another digest; else None."""
    from mirrorwatch.bank.lists import checksum_kind

    try:
        text = head[:4096].decode(_text_encoding(head, encoding), errors="replace")
    except SheetError:
        return None
    first = next((ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")), "")
    kind = checksum_kind(first)
    if kind is None or kind == "sha256sum":
        return kind
    raise SheetError(f"{name} looks like a list of {kind} checksums; only SHA-256 lists "
                     "(sha256sum, shasum -a 256, SHA256 (name) = HEX) can be imported")


def _sha256sum_sheet(f: BinaryIO, head: bytes, encoding: str | None, name: str, limits: SheetLimits,
                     stream: bool = False) -> Sheet:
    """A checksum list: its lines in memory, or (stream) read as the importer goes (raw_json is then an
    iterator of the same (line, hex, name) rows)."""
    from mirrorwatch.bank.lists import iter_sha256sum_rows

    enc = _text_encoding(head, encoding)
    text = io.TextIOWrapper(f, encoding=enc, errors="strict", newline="")
    rows = iter_sha256sum_rows(_lines(text, enc, limits), name, limits.max_rows)
    first = next(rows, None)
    if first is None:
        raise SheetError(f"{name} holds no checksum lines")
    lazy = chain([first], rows)
    return Sheet(fmt="sha256sum", columns=[], mapping={}, raw_json=lazy if stream else list(lazy))


_CHUNK_CHARS = 1 << 20


def _lines(text: io.TextIOWrapper, encoding: str, limits: SheetLimits) -> Iterator[str]:
    """Lines of a text sheet (line ends kept, as csv wants them), read a chunk at a time: no line
    over max_line_chars is ever built, decoding errors become SheetError, NULs are dropped."""
    carry = ""
    line = 1
    size = min(_CHUNK_CHARS, limits.max_line_chars)
    while True:
        try:
            chunk = text.read(size)
        except UnicodeDecodeError as exc:
            raise _decode_problem(exc, encoding, line + carry.count("\n")) from None
        if "\x00" in chunk:
            chunk = chunk.replace("\x00", "")
        if not chunk:
            if carry:
                yield carry
            return
        block = carry + chunk
        cut = max(block.rfind("\n"), block.rfind("\r", 0, len(block) - 1)) + 1  # never split a \r\n
        # lines inside one chunk are at most `size` long; only the one continuing `carry` can be longer
        ends = [i for i in (block.find("\n", len(carry)), block.find("\r", len(carry))) if i >= 0]
        if (min(ends) if ends else len(block)) > limits.max_line_chars:
            raise SheetError(f"line {line} is longer than {limits.max_line_chars:,} characters; "
                             "this is not a sheet of models")
        if cut == 0:
            carry = block
            continue
        carry = block[cut:]
        whole = block[:cut]
        line += whole.count("\n")
        yield from io.StringIO(whole, newline="")


def _delimited_rows(f: BinaryIO, head: bytes, encoding: str | None, delimiter: str | None,
                    limits: SheetLimits) -> Iterator[list[str]]:
    enc = _text_encoding(head, encoding)
    text = io.TextIOWrapper(f, encoding=enc, errors="strict", newline="")
    if delimiter is None:
        try:  # csv.Sniffer's quote regex is quadratic on hostile text: 4 KiB bounds it (~0.3 s worst)
            sample = text.read(4096)
        except UnicodeDecodeError as exc:
            raise _decode_problem(exc, enc, 1) from None
        text.seek(0)
        try:
            delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    csv.field_size_limit(limits.max_cell_chars)
    reader = csv.reader(_lines(text, enc, limits), delimiter=delimiter)
    try:
        yield from reader
    except csv.Error as exc:
        if "field limit" in str(exc):
            raise SheetError(f"row {reader.line_num}: a cell is longer than {limits.max_cell_chars:,} "
                             "characters") from None
        raise SheetError(f"malformed CSV: {exc}") from None


# --- XLSX ------------------------------------------------------------------------------------------

_XLSX_STREAMED = re.compile(r"^xl/(worksheets/[^/]+\.xml|sharedStrings\.xml)$", re.IGNORECASE)
_XML_MEMBER = re.compile(r"\.(xml|rels|vml)$", re.IGNORECASE)
# What openpyxl may raise on a damaged or hostile workbook (ElementTree's ParseError is a SyntaxError).
_XLSX_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, KeyError, IndexError, OSError,
                ValueError, TypeError, AttributeError, SyntaxError, EOFError, NotImplementedError,
                RuntimeError)  # RuntimeError: zipfile's 'encrypted, password required' (checked first)


def _check_xlsx_archive(zf: zipfile.ZipFile, limits: SheetLimits) -> None:
    """Refuse decompression bombs and DTDs before openpyxl reads anything: declared sizes and ratios,
    then a streaming pass over every XML member (bounded memory: one chunk at a time)."""
    infos = zf.infolist()
    if len(infos) > 10_000:
        raise SheetError(f"not a sheet: the XLSX archive has {len(infos):,} members")
    total = sum(i.file_size for i in infos)
    if total > limits.max_xlsx_bytes:
        raise SheetError(f"the XLSX workbook expands to {total / 1024**2:,.0f} MB; workbooks over "
                         f"{limits.max_xlsx_bytes // 1024**2} MB uncompressed are refused")
    for info in infos:
        if info.flag_bits & 0x1:  # zipfile would raise RuntimeError("... is encrypted") on reading it
            raise SheetError(f"the XLSX member {info.filename[:80]!r} is encrypted: password-protected "
                             "workbooks are not read (save the sheet without a password)")
        if info.file_size > 1024**2 and info.file_size > limits.max_xlsx_ratio * max(info.compress_size, 1):
            raise SheetError(f"the XLSX member {info.filename[:80]!r} expands {info.file_size / max(info.compress_size, 1):,.0f}"
                             f" times (over {limits.max_xlsx_ratio}x): refused as a decompression bomb")
        if not _XLSX_STREAMED.match(info.filename) and _XML_MEMBER.search(info.filename) \
                and info.file_size > limits.max_xlsx_part_bytes:
            raise SheetError(f"the XLSX member {info.filename[:80]!r} is {info.file_size / 1024**2:,.0f} MB "
                             f"uncompressed (parts other than sheets are limited to "
                             f"{limits.max_xlsx_part_bytes // 1024**2} MB)")
    for info in infos:
        if _XML_MEMBER.search(info.filename):
            _scan_xml_member(zf, info, limits)


def _scan_xml_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limits: SheetLimits) -> None:
    shared = info.filename.lower() == "xl/sharedstrings.xml"
    strings = 0
    run = 0  # bytes since the last '<'
    tail = b""
    with zf.open(info) as member:
        while chunk := member.read(1024**2):
            window = tail + chunk
            if b"<!DOCTYPE" in window or b"<!ENTITY" in window:
                raise SheetError(f"the XLSX member {info.filename[:80]!r} declares a DTD; refused "
                                 "(entity expansion)")
            pieces = chunk.split(b"<")
            if len(pieces) == 1:
                run += len(chunk)
            else:
                run = max(run + len(pieces[0]), max(map(len, pieces[1:-1]), default=0))
                if run > limits.max_xml_run_bytes:
                    break
                run = len(pieces[-1])
            if run > limits.max_xml_run_bytes:
                break
            if shared:
                strings += window.count(b"<si>") + window.count(b"<si ") - tail.count(b"<si>") - tail.count(b"<si ")
                if strings > limits.max_shared_strings:
                    raise SheetError(f"the XLSX workbook has over {limits.max_shared_strings:,} shared strings; "
                                     "refused")
            tail = chunk[-16:]
    if run > limits.max_xml_run_bytes:
        raise SheetError(f"the XLSX member {info.filename[:80]!r} holds a text or tag over "
                         f"{limits.max_xml_run_bytes // 1024:,} KB; refused")


def _xlsx_rows(f: BinaryIO, limits: SheetLimits) -> Iterator[list[str]]:
    from openpyxl import load_workbook

    try:
        with zipfile.ZipFile(f) as zf:
            _check_xlsx_archive(zf, limits)
        f.seek(0)
        wb = load_workbook(f, read_only=True, data_only=True)
    except _XLSX_ERRORS as exc:
        raise SheetError(f"not a readable XLSX workbook: {str(exc)[:200]}") from None
    try:
        if not wb.worksheets:
            raise SheetError("the XLSX workbook has no worksheet")
        ws = wb.worksheets[0]
        if hasattr(ws, "reset_dimensions"):
            ws.reset_dimensions()  # the <dimension> tag is the file's claim: do not pad rows to it
        longest = limits.max_cell_chars
        for row in ws.iter_rows(values_only=True):
            cells = ["" if v is None else str(v) for v in row]
            if cells and max(map(len, cells)) > longest:
                raise SheetError(f"a cell is longer than {longest:,} characters")
            yield cells
    except _XLSX_ERRORS as exc:
        raise SheetError(f"not a readable XLSX workbook: {str(exc)[:200]}") from None
    finally:
        wb.close()


# --- columns ---------------------------------------------------------------------------------------

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


def _bounded(table: Iterable[list[str]], limits: SheetLimits) -> Iterator[list[str]]:
    """Rows with the column and cell-count limits enforced (each format bounds its own cells'
    length while reading them)."""
    cells = 0
    max_columns, max_cells = limits.max_columns, limits.max_cells
    for number, row in enumerate(table, start=1):
        n = len(row)
        if n > max_columns:
            raise SheetError(f"row {number} has {n:,} columns; sheets are limited to {max_columns:,}")
        cells += n or 1
        if cells > max_cells:
            raise SheetError(f"the sheet has over {max_cells:,} cells; split it into smaller sheets")
        yield row


def _sheet_from_table(fmt: str, table: Iterable[list[str]], override: dict[str, str],
                      limits: SheetLimits = DEFAULT_LIMITS, *, numbered_from: int | None = None,
                      stream: bool = False) -> Sheet:
    """The header read and the columns mapped now; the rows kept (stream=False) or left to be read
    as the sheet's `rows` are iterated (stream=True)."""
    rows = _bounded(table, limits)
    for first in rows:
        if any(c.strip() for c in first):
            break
    else:
        raise SheetError("the sheet has no rows")
    header = [c.strip() for c in first]
    auto = _auto_map(header)
    has_header = bool(auto) or not any(_looks_like_data(c) for c in header)
    if has_header:
        columns = header
        body: Iterable[list[str]] = rows
        first_row = 2 if numbered_from is None else numbered_from
        mapping = auto
        for f, col in override.items():
            if col not in columns:
                raise SheetError(f"--map {f}={col}: no column named {col!r} "
                                 f"(columns: {', '.join(columns)[:2000]})")
            mapping[f] = col
    else:
        sample = [first, *islice(rows, 199)]
        width = max(len(r) for r in sample)
        columns = [str(i) for i in range(width)]
        body = chain(sample, rows)
        first_row = 1
        mapping = _content_map(sample, width)
        for f, col in override.items():
            if col not in columns:
                raise SheetError(f"--map {f}={col}: this sheet has no header row; name columns by number 0..{width - 1}")
            mapping[f] = col
    if has_header and fmt != "json":  # JSON sheets are checked whole by lists.unread_json_fields
        unread = [c for c in columns if c and c not in mapping.values() and _UNREAD_HASH.search(_key(c))]
        if unread:
            raise SheetError(f"column {unread[0][:60]!r} looks like a hash this importer does not read "
                             f"(hash columns read: {', '.join(sheet_forms())}, hash); nothing was imported. "
                             "Remove the column or name what it holds with --map")
    index = {c: i for i, c in enumerate(columns)}
    # a hash column that can match on its own (not an 8-hex AutoV1 or CRC32 alone) identifies a model
    strong = [f for f in sheet_forms() if FORMS[f].exact_score is not None]
    if not any(f in mapping for f in ("name", "url", *strong, "hash", "version_id")):
        raise SheetError(
            "no usable column found (expected a model name, a Civitai URL or a hash column; "
            f"columns: {', '.join(c for c in columns if c)[:2000] or 'none'}); use --map field=Column"
        )
    sheet = Sheet(fmt=fmt, columns=columns, mapping=mapping)
    positions = [index[col] for col in mapping.values()]
    sheet._stream = _picked_rows(body, positions, first_row, limits.max_rows)
    return sheet if stream else _materialise(sheet, limits)


def _picked_rows(body: Iterable[list[str]], positions: list[int], first_row: int,
                 max_rows: int) -> Iterator[tuple[int, tuple[str, ...]]]:
    """(row number, the mapped cells) of every row with a non-blank mapped cell."""
    width = max(positions) + 1
    pick = itemgetter(*positions)
    single = len(positions) == 1
    kept = 0
    for offset, raw in enumerate(body):
        if len(raw) >= width:
            values = (pick(raw),) if single else pick(raw)
        else:
            values = tuple(raw[i] if i < len(raw) else "" for i in positions)
        if not "".join(values).strip():
            continue
        if kept >= max_rows:
            raise SheetError(f"the sheet has over {max_rows:,} rows; split it into smaller sheets")
        kept += 1
        yield first_row + offset, values


def _materialise(sheet: Sheet, limits: SheetLimits) -> Sheet:
    """Read a streamed sheet's rows into it (column-wise)."""
    stream, sheet._stream = sheet._stream, None
    numbers = sheet._numbers
    store = sheet._values = [[] for _ in sheet.mapping]
    for number, values in stream or ():
        numbers.append(number)
        for column, value in zip(store, values, strict=True):
            column.append(value)
    return sheet


# --- JSON ------------------------------------------------------------------------------------------

def load_json_bounded(data: bytes | str, limits: SheetLimits = DEFAULT_LIMITS) -> Any:
    """json.loads with the sheet limits on size, number of values and depth; SheetError otherwise."""
    if len(data) > limits.max_json_bytes:
        raise SheetError(f"the JSON is over {limits.max_json_bytes // 1024**2} MB")
    marks = (b",", b"[", b"{") if isinstance(data, bytes) else (",", "[", "{")
    values = sum(data.count(m) for m in marks)  # type: ignore[arg-type]
    if values > limits.max_json_values:
        raise SheetError(f"the JSON holds over {limits.max_json_values:,} values; split it")
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(items)
        if len(obj) != len(items) and not duplicates:
            seen: set[str] = set()
            for key, _ in items:
                if key in seen:
                    duplicates.append(key)
                    break
                seen.add(key)
        return obj

    try:
        doc = loads_bounded(data, max_depth=limits.max_json_depth, object_pairs_hook=pairs)
    except JsonRefused as exc:
        raise SheetError(str(exc)) from None
    if duplicates:  # json.loads would keep the last silently: which one the writer meant is unknown
        raise SheetError(f"the JSON names {duplicates[0][:120]!r} twice in one object; nothing was imported")
    return doc


def _json_sheet(data: bytes, encoding: str | None, override: dict[str, str], limits: SheetLimits) -> Sheet:
    if encoding or data.startswith((b"\xff\xfe", b"\xfe\xff")):
        doc = load_json_bounded(decode_text(data, encoding), limits)
    else:
        doc = load_json_bounded(data, limits)
    from mirrorwatch.bank.lists import json_shape, unread_json_fields

    shape = json_shape(doc)
    if shape is not None:  # AUTOMATIC1111 cache.json, a ComfyUI-Manager model list, a CivArchive answer
        return Sheet(fmt=shape, columns=[], mapping={}, raw_json=doc)
    items = doc if isinstance(doc, list) else [doc]
    if isinstance(doc, dict) and isinstance(doc.get("items"), list):
        items = doc["items"]  # Civitai list responses
    from mirrorwatch.bank.civitai import is_civitai_object

    if items and all(isinstance(i, dict) for i in items) and any(is_civitai_object(i) for i in items):
        return Sheet(fmt="civitai-json", columns=[], mapping={}, raw_json=items)
    if not all(isinstance(i, dict) for i in items):
        raise SheetError("JSON sheets must be an object or a list of objects")
    keys: dict[str, None] = {}  # insertion-ordered set: linear column discovery
    for item in items:
        keys.update(dict.fromkeys(item))
        if len(keys) > limits.max_columns:
            raise SheetError(f"the JSON objects have over {limits.max_columns:,} distinct keys; "
                             f"sheets are limited to {limits.max_columns:,} columns")
    header = list(keys)
    table = chain([header], ([_json_cell(item.get(h), limits) for h in header] for item in items))
    try:
        sheet = _sheet_from_table("json", table, override, limits, numbered_from=1)
    except SheetError:
        reason = unread_json_fields(items, override.values())
        if reason:
            raise SheetError(reason) from None
        raise
    reason = unread_json_fields(items, sheet.mapping.values())
    if reason:  # never import a row while dropping a hash or an id it carried
        raise SheetError(reason)
    return sheet


# --- JSONL: one flat JSON object per line, streamed ------------------------------------------------

#: Objects read before a JSONL sheet's columns are mapped (their keys, in order, are its header).
JSONL_SAMPLE = 1000


def _first_line(head: bytes, encoding: str | None) -> str:
    text = head.decode(_text_encoding(head, encoding), errors="replace")
    return next((ln for ln in text.splitlines() if ln.strip()), "")


def _is_jsonl(head: bytes, encoding: str | None) -> bool:
    """Whether a .jsonl file is a sheet of flat objects, one a line (not one JSON document, and not a
    Civitai answer or a known hash list saved on one line)."""
    from mirrorwatch.bank.civitai import is_civitai_object
    from mirrorwatch.bank.lists import json_shape

    try:
        doc = loads_bounded(_first_line(head, encoding), max_depth=DEFAULT_LIMITS.max_json_depth)
    except (JsonRefused, SheetError):
        return False
    return isinstance(doc, dict) and json_shape(doc) is None and not is_civitai_object(doc)


def _jsonl_objects(lines: Iterable[str], limits: SheetLimits) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = loads_bounded(line.rstrip("\r\n"), max_depth=limits.max_json_depth)
        except JsonRefused as exc:
            raise SheetError(f"line {number} of the JSONL sheet: {exc}") from None
        if not isinstance(obj, dict):
            raise SheetError(f"line {number} of the JSONL sheet is not a JSON object")
        yield number, obj


def _jsonl_sheet(f: BinaryIO, head: bytes, encoding: str | None, override: dict[str, str],
                 limits: SheetLimits) -> Sheet:
    """A JSONL sheet, streamed: the keys of its first JSONL_SAMPLE objects are its columns; a key first
    seen further on that names a field or a hash is refused (never dropped), other new keys are not
    read. Row numbers count objects, as in a JSON sheet."""
    from mirrorwatch.bank.lists import unread_json_fields

    enc = _text_encoding(head, encoding)
    text = io.TextIOWrapper(f, encoding=enc, errors="strict", newline="")
    objects = _jsonl_objects(_lines(text, enc, limits), limits)
    sample = list(islice(objects, JSONL_SAMPLE))
    if not sample:
        raise SheetError("the JSONL sheet holds no objects")
    keys: dict[str, None] = {}
    for _, item in sample:
        keys.update(dict.fromkeys(item))
        if len(keys) > limits.max_columns:
            raise SheetError(f"the JSONL objects have over {limits.max_columns:,} distinct keys; "
                             f"sheets are limited to {limits.max_columns:,} columns")
    header = list(keys)

    def table() -> Iterator[list[str]]:
        yield header
        for number, item in chain(sample, objects):
            if len(item) > len(keys) or not keys.keys() >= item.keys():
                for k in item.keys() - keys.keys():
                    if _auto_map([k]) or _UNREAD_HASH.search(_key(k)):
                        raise SheetError(f"line {number} of the JSONL sheet has the key {k[:60]!r}, which "
                                         f"the first {len(sample):,} objects do not have; nothing was imported. "
                                         "Give every object that key (null when unknown)")
            yield [_json_cell(item.get(h), limits) for h in header]

    sheet = _sheet_from_table("jsonl", table(), override, limits, numbered_from=1, stream=True)
    reason = unread_json_fields([item for _, item in sample], sheet.mapping.values())
    if reason:  # never import a row while dropping a hash or an id it carried
        raise SheetError(reason)
    return sheet


def _json_cell(value: Any, limits: SheetLimits) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if len(text) > limits.max_cell_chars:
        raise SheetError(f"a JSON value is longer than {limits.max_cell_chars:,} characters")
    return text.replace("\x00", "") if "\x00" in text else text


def iter_nonblank(sheet: Sheet) -> Iterator[tuple[int, dict[str, str]]]:
    for number, values in sheet.rows:
        if any(v.strip() for v in values.values()):
            yield number, values
