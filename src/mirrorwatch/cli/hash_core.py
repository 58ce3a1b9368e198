"""What `mirrorwatch hash` does, without Typer or Rich: which files, their hashes, JSON and CSV out.

A storage scan runs `mirrorwatch hash --json` once per object, by the million, so its start-up is
part of its cost: Typer, Rich and the pydantic that Typer's parameter adapters load take about
0.2 s, a quarter of the time to hash a 1 GiB file. This module imports only the hash engine and the
folder walker; `hash_cmds.py` builds the Typer command (help, table output, progress bars) on it,
and `main.py` runs `fast_hash` directly for the machine-output form (`hash --json|--csv PATH...`
to a pipe or file), so both paths hash, walk and print with the same code."""

from __future__ import annotations

import csv
import json
import os
import stat
import sys
from collections.abc import Callable, Iterator

from mirrorwatch.display import csv_safe, safe_text
from mirrorwatch.hashing.engine import FileHashes, hash_file
from mirrorwatch.hashing.forms import FORMS

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up)
if TYPE_CHECKING:
    from mirrorwatch.hubs.localdir.walk import Skipped

Say = Callable[[str], None]


def display(text: str, limit: int | None = None, *, keep_newlines: bool = False) -> str:
    """Untrusted text made safe to print: undecodable bytes, control and bidi characters (terminal
    escape sequences, and newlines unless ``keep_newlines``) escaped (mirrorwatch.display), optionally cut to ``limit``
    characters with a note of the full length."""
    text = safe_text(text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"),
                     keep_newlines=keep_newlines)
    if limit is not None and len(text) > limit:
        text = f"{text[:limit]}\u2026 ({len(text):,} characters; --json shows all)"
    return text


class Collected:
    """The files to hash, and how many named paths could not be (no dataclass: see engine.FileHashes)."""

    __slots__ = ("files", "problems")

    def __init__(self) -> None:
        self.files: list[str] = []
        self.problems = 0


def _walk(root: str, found: Collected, say_error: Say, say_note: Say) -> Iterator[str]:
    """Regular files under ``root``, by the one walker's rules (``hubs/localdir/walk.py``), with each
    skipped entry said. (Imported here: hashing named files needs no walker, nor the hubs package.)"""
    from mirrorwatch.hubs.localdir.walk import walk_files

    def said(skip: Skipped) -> None:
        if skip.kind == "unreadable":
            say_error(f"{display(skip.path)}: {skip.detail}")
        elif skip.kind == "broken_link":
            say_error(f"{display(skip.path)}: broken symlink")
        elif skip.kind == "outside_link":
            say_note(f"{display(skip.path)}: skipped, a symlink to outside {display(root)}")
        else:
            say_note(f"{display(skip.path)}: skipped, not a regular file")
        if skip.is_error:
            found.problems += 1

    yield from walk_files(root, said)


def collect_files(paths: list[str], say_error: Say, say_note: Say) -> Collected:
    """Files named on the command line plus regular files under named folders, deduplicated."""
    found = Collected()
    seen: set[str] = set()

    def add(path: str) -> None:
        key = os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            found.files.append(path)

    for path in paths:
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            say_error(f"{display(path)}: no such file or folder")
            found.problems += 1
            continue
        except OSError as exc:
            say_error(f"{display(path)}: {exc.strerror or exc}")
            found.problems += 1
            continue
        if stat.S_ISDIR(mode):
            for file in _walk(path, found, say_error, say_note):
                add(file)
        elif stat.S_ISREG(mode):
            add(path)
        else:
            say_error(f"{display(path)}: not a regular file")
            found.problems += 1
    found.files.sort()
    return found


def hash_all(found: Collected, hash_one: Callable[[str], FileHashes], say_error: Say) -> list[FileHashes]:
    """Each collected file's hashes; a file that cannot be read is said and counted, and the rest go on."""
    results: list[FileHashes] = []
    for path in found.files:
        try:
            results.append(hash_one(path))
        except OSError as exc:
            say_error(f"{display(path)}: cannot read: {exc.strerror or exc}")
            found.problems += 1
    return results


def write_json(results: list[FileHashes]) -> None:
    sys.stdout.write(json.dumps([r.to_dict() for r in results], indent=2) + "\n")


def write_csv(results: list[FileHashes]) -> None:
    """CSV with a header row; file names can come from a hub, so no cell starts a formula."""
    writer = csv.writer(sys.stdout, lineterminator="\n")
    fields = ("path", "size", *FORMS)
    writer.writerow(fields)
    for result in results:
        row = result.to_dict()
        row["path"] = display(row["path"] or "")
        writer.writerow([csv_safe("" if row.get(k) is None else row[k]) for k in fields])


# --------------------------------------------------------------------------- the fast path


def fast_hash_args(argv: list[str]) -> tuple[str, list[str]] | None:
    """``(format, paths)`` when ``argv`` is exactly `hash --json|--csv PATH...` (options in any
    place, ``--`` ending them) and stdout is not a terminal; otherwise None, and Typer takes the
    command (help, errors of usage, the table, progress bars)."""
    if not argv or argv[0] != "hash" or sys.stdout.isatty():
        return None
    fmt: str | None = None
    paths: list[str] = []
    options_done = False
    for arg in argv[1:]:
        if options_done or not arg.startswith("-") or arg == "-":
            paths.append(arg)
        elif arg == "--":
            options_done = True
        elif arg in ("--json", "--csv") and fmt in (None, arg[2:]):
            fmt = arg[2:]
        else:
            return None
    if fmt is None or not paths:
        return None
    return fmt, paths


def fast_hash(fmt: str, paths: list[str]) -> int:
    """`mirrorwatch hash --json|--csv PATH...` without Typer: the same files, hashes, output and exit
    status (0, or 1 when a path had a problem) as the Typer command, with plain-text messages."""

    def say(kind: str) -> Say:
        return lambda message: print(f"{kind}: {message}", file=sys.stderr, flush=True)

    found = collect_files(paths, say("error"), say("note"))
    results = hash_all(found, hash_file, say("error"))
    (write_json if fmt == "json" else write_csv)(results)
    return 1 if found.problems else 0
