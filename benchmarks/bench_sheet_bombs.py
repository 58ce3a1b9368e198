"""Benchmark: peak RSS and time of the sheet parsers on hostile sheets, before and after the fix.

    .venv/bin/python benchmarks/bench_sheet_bombs.py [--before /path/to/old/src] [--timeout 120]
        [--cases name,...] [--memory-cap-mb 2500]

Each case builds its bomb (tests/sheet_bombs.py, sized to what the 50 MB upload cap allows) and
parses it in a fresh subprocess with `parse_sheet`, the function the browser preview and the API
call (with its default, CLI limits); the "preview" cases run the whole upload preview (`services.uploads.preview_import`, a dry-run
import into a scratch SQLite bank). Peak RSS is the child's ru_maxrss (it includes the input bytes).
With --before, the same cases run against another source tree (e.g. the main checkout's src before
issue 13) side by side; those children get an address-space cap (--memory-cap-mb) and a timeout so
the old parsers cannot take the machine down.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CASES = {  # label: (builder given the sheet_bombs module, file name)
    "xlsx 170 MB sheet XML (0.6 MB file)": (lambda b: b.xlsx_cell_bomb(170), "bomb.xlsx"),
    "xlsx 100 MB one cell": (lambda b: b.xlsx_one_cell_bomb(100), "cell.xlsx"),
    "xlsx 40 MB distinct cells": (lambda b: b.xlsx_distinct_cells(40), "cells.xlsx"),
    "xlsx entity expansion": (lambda b: b.xlsx_entity_bomb(), "lol.xlsx"),
    "csv one line 47 MB": (lambda b: b.csv_one_line(47), "line.csv"),
    "csv 50 MB of short rows": (lambda b: b.csv_many_rows(49), "rows.csv"),
    "csv 50 MB of 500-column rows": (lambda b: b.csv_wide_rows(49), "wide.csv"),
    "json 60,000 keys": (lambda b: b.json_many_keys(60_000), "keys.json"),
    "json 1,000,000 objects (21 MB)": (lambda b: b.json_rows(1_000_000), "rows.json"),
    "json 500,000 objects (12 MB)": (lambda b: b.json_rows(500_000), "rows.json"),
    "json nested 100,000 deep": (lambda b: b"[" * 100_000, "deep.json"),
    "preview: csv 50 MB of short rows": (lambda b: b.csv_many_rows(49), "rows.csv"),
    "preview: csv 1,000,000 named rows": (lambda b: b.csv_named_rows(1_000_000), "named.csv"),
    "preview: csv 99,000 named rows": (lambda b: b.csv_named_rows(99_000), "named.csv"),
    "preview: xlsx 40 MB distinct cells": (lambda b: b.xlsx_distinct_cells(40), "cells.xlsx"),
}

CHILD = r"""
import json, sys, time
data = open({path!r}, "rb").read()
start = time.perf_counter()
try:
    if {preview!r}:
        import tempfile
        from mirrorwatch.services.banks import create_bank
        from mirrorwatch.services.uploads import preview_import
        from mirrorwatch.store.db import Database
        db = Database.open("sqlite:///" + tempfile.mkdtemp() + "/b.db")
        create_bank(db, "b")
        s = preview_import(db, "b", {name!r}, data)
        outcome = f"previewed {{s.rows:,}} rows"
    else:
        from mirrorwatch.bank.sheets import parse_sheet
        sheet = parse_sheet(data, name={name!r})
        n = getattr(sheet, "row_count", None)
        outcome = f"parsed {{n if n is not None else len(sheet.rows):,}} rows"
except Exception as exc:
    outcome = f"{{type(exc).__name__}}: {{str(exc)[:70]}}"
elapsed = time.perf_counter() - start
print(json.dumps({{"outcome": outcome, "seconds": elapsed, "input_mb": len(data) / 1e6}}))
"""


def run_case(src: Path, path: Path, name: str, preview: bool, timeout: float, cap_mb: int | None) -> dict:
    code = CHILD.format(path=str(path), name=name, preview=preview)
    env = {**os.environ, "PYTHONPATH": str(src)}

    def limit() -> None:
        if cap_mb:
            resource.setrlimit(resource.RLIMIT_AS, (cap_mb * 1024**2, cap_mb * 1024**2))

    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=out, stderr=subprocess.DEVNULL,
                                preexec_fn=limit)
        try:
            _, status, usage = os.wait4(proc.pid, 0) if timeout <= 0 else _wait(proc, timeout)
        except TimeoutError:
            proc.kill()
            _, status, usage = os.wait4(proc.pid, 0)
            return {"outcome": f"killed after {timeout:.0f} s", "seconds": time.perf_counter() - start,
                    "rss_mb": usage.ru_maxrss / 1024}
        out.seek(0)
        text = out.read().decode(errors="replace").strip()
    try:
        result = json.loads(text.splitlines()[-1])
    except (IndexError, ValueError):
        result = {"outcome": f"crashed (status {status})", "seconds": time.perf_counter() - start}
    result["rss_mb"] = usage.ru_maxrss / 1024
    return result


def _wait(proc: subprocess.Popen, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            return pid, status, usage
        time.sleep(0.05)
    raise TimeoutError


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", type=Path, help="another source tree to compare with (e.g. ../old-checkout/src: a worktree of an older commit)")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--memory-cap-mb", type=int, default=2500, help="address-space cap for --before runs")
    ap.add_argument("--cases", help="comma-separated substrings of case names to run")
    args = ap.parse_args()
    wanted = [c.strip() for c in args.cases.split(",")] if args.cases else None
    sys.path.insert(0, str(ROOT / "tests" / "support"))
    import sheet_bombs  # the same builders the regression tests use

    print("peak RSS of the parsing process (input bytes included), wall time, outcome")
    with tempfile.TemporaryDirectory() as tmp:
        for label, (build, name) in CASES.items():
            if wanted and not any(w in label for w in wanted):
                continue
            path = Path(tmp) / name
            path.write_bytes(build(sheet_bombs))
            preview = label.startswith("preview")
            after = run_case(ROOT / "src", path, name, preview, args.timeout, None)
            before = (run_case(args.before, path, name, preview, args.timeout, args.memory_cap_mb)
                      if args.before else None)
            print(_line(label, before, after), flush=True)
            path.unlink()


def _fmt(r: dict | None) -> str:
    if r is None:
        return ""
    return f"{r['rss_mb']:7.0f} MB {r['seconds']:7.2f} s  {r['outcome'][:46]:46}"


def _line(label: str, before: dict | None, after: dict) -> str:
    if before is None:
        return f"{label:36} after: {_fmt(after)}"
    return f"{label:36} before: {_fmt(before)} | after: {_fmt(after)}"


if __name__ == "__main__":
    main()
