"""A big sheet's rows read and checked in a second process, while the importer writes.

Reading a sheet (CSV parsing, URL and hash validation, name normalisation) costs about as much CPU
as writing its entries to the database, and an import runs both in one Python process, so on a
machine with a free core a large import can take half the time when the reading runs beside the
writing. :func:`child_records` starts ``python -m mirrorwatch.bank.reader`` on the same file and
yields what :func:`~mirrorwatch.bank.importer.iter_records` would have yielded in process, in the
same order: each Record, each ``(row, reason)`` of a row that cannot be used, and then the number of
rows read. A SheetError further on in the file comes out where it would have (after the rows before
it), with its own message.

The child re-opens the file by path and checks that it is the file the importer opened (device,
inode, size and modification time) and that it maps the same columns. Its frames go over its
standard output: a 4-byte length, then JSON (plain data, so the importer never loads anything but
strings and numbers from the child). The pipe bounds memory: the child blocks once a frame is waiting,
and exits when the importer closes its end (an import that fails, or is killed, stops its reader). A
child that dies gives a ReaderFailed, and the import's transaction rolls back: nothing half-written.
"""

from __future__ import annotations

import json
import os
import queue
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mirrorwatch.bank.records import Record
from mirrorwatch.errors import MirrorwatchError, SheetError

__all__ = ["CHILD_MIN_BYTES", "ReaderFailed", "child_records", "file_identity", "wants_child"]

#: Sheets from this size on are read in a second process (smaller ones import in a few seconds, less
#: than the second process's start-up is worth); MIRRORWATCH_IMPORT_READER_MIN_BYTES overrides it
#: ("0" reads every streamed sheet in a child, "off" none).
CHILD_MIN_BYTES = 32 * 1024 * 1024
#: Formats the child can stream (a JSON document is parsed whole when it is opened: nothing to gain).
STREAMED_FORMATS = frozenset({"csv", "tsv", "jsonl", "sha256sum", "xlsx"})
#: Items per frame: large enough that the per-frame cost vanishes, small enough to keep the two
#: processes in step.
FRAME_ITEMS = 2000
#: Decoded frames held between the pipe and the importer: a batch's worth (a frame of 2,000 records is
#: ~400 KB of JSON, a few MB decoded).
QUEUED_FRAMES = 12
_LEN = struct.Struct("<I")


class ReaderFailed(MirrorwatchError):
    """The process reading the sheet stopped without finishing it (killed, out of memory)."""


def wants_child(path: Path, fmt: str, streamed: bool) -> bool:
    """Whether an import of this opened sheet should read it in a second process."""
    setting = os.environ.get("MIRRORWATCH_IMPORT_READER_MIN_BYTES", "").strip().lower()
    if setting in ("off", "no", "false", "none"):
        return False
    try:
        minimum = int(setting) if setting else CHILD_MIN_BYTES
    except ValueError:
        minimum = CHILD_MIN_BYTES
    if not streamed or fmt not in STREAMED_FORMATS:
        return False
    try:
        return path.stat().st_size >= minimum
    except OSError:
        return False


def file_identity(path: Path | str) -> list[int]:
    st = os.stat(path)
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]


# --- the frames: Records as plain lists ---------------------------------------------------------

def _record_out(rec: Record) -> list[Any]:
    return ["r", rec.row, rec.name, rec.url, rec.model_id, rec.version_id, rec.kind, rec.notes,
            [[f, v, o] for (f, v), o in rec.signals.items()], [list(x) for x in rec.extra], rec.sha256,
            rec.name_norm]


def _record_in(item: list[Any]) -> Record:
    (_, row, name, url, model_id, version_id, kind, notes, signals, extra, sha256, norm) = item
    rec = object.__new__(Record)  # the dataclass's __init__ and default factories cost more than the rest
    rec.__dict__.update(row=row, name=name, url=url, model_id=model_id, version_id=version_id, kind=kind,
                        notes=notes, signals={(f, v): o for f, v, o in signals},
                        extra=[(f, v, o) for f, v, o in extra], sha256=sha256, _norm=(name, norm))
    return rec


def _item_out(item: Record | tuple[int, str] | int) -> list[Any]:
    if isinstance(item, Record):
        return _record_out(item)
    if isinstance(item, int):
        return ["n", item]
    return ["p", item[0], item[1]]


def _item_in(item: list[Any]) -> Record | tuple[int, str] | int:
    tag = item[0]
    if tag == "r":
        return _record_in(item)
    if tag == "n":
        return int(item[1])
    return int(item[1]), str(item[2])


def _write_frame(out: Any, frame: dict[str, Any]) -> None:
    data = json.dumps(frame, ensure_ascii=False, separators=(",", ":")).encode()
    out.write(_LEN.pack(len(data)))
    out.write(data)
    out.flush()


def _read_exact(f: Any, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        chunk = f.read(n - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


# --- the importer's side -------------------------------------------------------------------------

def child_records(path: Path, *, mapping: dict[str, str] | None, encoding: str | None, fmt: str,
                  columns: dict[str, str], origin: str) -> Iterator[Record | tuple[int, str] | int]:
    """What iter_records(open_sheet(path, ...), origin) yields, read by a second process.

    ``fmt`` and ``columns`` are what the importer's own open of the sheet found; the child refuses a
    file that reads otherwise (replaced since). Closing the generator stops the child."""
    request = {"path": str(path), "mapping": mapping, "encoding": encoding, "fmt": fmt, "columns": columns,
               "origin": origin, "identity": file_identity(path)}
    # the child's stderr goes to a file, not a pipe nobody reads while rows flow (warnings from a
    # sheet library could fill a pipe and stall the child); its last line explains a child that died
    errors = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen([sys.executable, "-m", "mirrorwatch.bank.reader"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=errors, bufsize=0)
    # A thread drains the pipe into a bounded queue of decoded frames, so the child reads on while this
    # process writes a batch (the pipe alone holds a fraction of one frame: the two would take turns),
    # and the decoding runs while this process waits for the database (which releases the GIL).
    frames: queue.Queue[tuple[list[Record | tuple[int, str] | int], dict[str, Any]] | None] = \
        queue.Queue(maxsize=QUEUED_FRAMES)
    stop = threading.Event()

    def put(item: Any) -> None:
        while not stop.is_set():
            try:
                frames.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def drain() -> None:
        try:
            assert proc.stdout is not None
            while not stop.is_set():
                head = _read_exact(proc.stdout, _LEN.size)
                if len(head) < _LEN.size:
                    break
                (size,) = _LEN.unpack(head)
                body = _read_exact(proc.stdout, size)
                if len(body) < size:
                    break
                frame = json.loads(body)
                put(([_item_in(item) for item in frame.pop("items", ())], frame))
        except Exception:  # the pipe closed under us (the import is stopping), or garbage:
            pass  # either way the stream ends here, and the importer asks the child why
        finally:
            put(None)  # the end, whatever happened: the importer then asks the child why

    finished = False
    thread = threading.Thread(target=drain, name="mirrorwatch-sheet-reader", daemon=True)
    try:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(request).encode())
        proc.stdin.close()
        thread.start()
        while True:
            got = frames.get()
            if got is None:
                break
            items, frame = got
            yield from items
            if "error" in frame:
                finished = True
                if frame.get("kind") == "sheet":
                    raise SheetError(frame["error"])
                raise ReaderFailed(f"reading {path.name} failed: {frame['error']}")
            if frame.get("end"):
                finished = True
                return
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # its output stopped making sense while it ran: stopped here
            proc.kill()
            code = proc.wait()
        errors.seek(0)
        err = errors.read(65536).decode(errors="replace").strip().splitlines()
        why = f"exit status {code}" if code >= 0 else f"killed by signal {-code}"
        raise ReaderFailed(f"the process reading {path.name} stopped before the end of the sheet ({why}"
                           + (f": {err[-1][:200]}" if err else "") + "); nothing was imported")
    finally:
        stop.set()
        if not finished or proc.poll() is None:
            proc.kill()
        proc.wait()
        if thread.is_alive():
            thread.join()
        if proc.stdout is not None:
            proc.stdout.close()
        errors.close()


# --- the child's side ----------------------------------------------------------------------------

def _serve(request: dict[str, Any], out: Any) -> None:
    from mirrorwatch.bank.importer import iter_records
    from mirrorwatch.bank.sheets import open_sheet

    path = Path(request["path"])
    items: list[list[Any]] = []
    try:
        if file_identity(path) != request["identity"]:
            raise SheetError(f"{path.name} changed after the import opened it; run the import again")
        with open_sheet(path, mapping=request["mapping"], encoding=request["encoding"]) as sheet:
            if sheet.fmt != request["fmt"] or dict(sheet.mapping) != request["columns"]:
                raise SheetError(f"{path.name} changed after the import opened it; run the import again")
            for item in iter_records(sheet, request["origin"]):
                items.append(_item_out(item))
                if len(items) >= FRAME_ITEMS:
                    _write_frame(out, {"items": items})
                    items = []
            _write_frame(out, {"items": items, "end": True})
    except SheetError as exc:
        _write_frame(out, {"items": items, "error": str(exc), "kind": "sheet"})
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            raise
        _write_frame(out, {"items": [], "error": f"cannot read {path.name}: {exc.strerror or exc}", "kind": "sheet"})


def main() -> int:
    out = sys.stdout.buffer
    try:
        request = json.loads(sys.stdin.buffer.read())
        _serve(request, out)
    except (BrokenPipeError, KeyboardInterrupt):  # the importer stopped: nothing to tell it
        os._exit(1)
    except Exception as exc:  # anything else: told to the importer in one line
        try:
            _write_frame(out, {"items": [], "error": f"{type(exc).__name__}: {exc}"[:500], "kind": "internal"})
        except OSError:
            os._exit(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
