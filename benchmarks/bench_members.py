"""What recording archive members as rows costs: a folder sweep of one zip with many members (each a
hub_file row with its CRC-32 signal), a few of them banked by CRC-32 and size (read and matched), then
a re-sweep of the unchanged zip (its index and members are not read again).

    .venv/bin/python benchmarks/bench_members.py [--members 10000] [--leads 10] [--json out.json]

Every read of the archive goes through the folder hub's range reader, counted here; a hub answers the
same calls with HTTP range requests. The database is a temporary SQLite file.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sqlalchemy import func, select

from mirrorwatch.formats.archives import ARCHIVE_EXTENSIONS
from mirrorwatch.hashing.engine import hash_bytes
from mirrorwatch.hubs.localdir.hub import LocalDirHub
from mirrorwatch.services.banks import create_bank
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import Entry, EntrySignal, HubFile, Match
from mirrorwatch.sweep.runner import Sweep, SweepOptions


class CountingHub(LocalDirHub):
    """The folder hub, counting the range reads and bytes its archive reader serves."""

    reads = 0
    bytes = 0

    def archive_reader(self, f):
        opened = super().archive_reader(f)
        if opened is None:
            return None
        read, size, stream = opened

        def counted(offset: int, length: int) -> bytes:
            data = read(offset, length)
            CountingHub.reads += 1
            CountingHub.bytes += len(data)
            return data

        def streamed(offset: int, length: int):
            CountingHub.reads += 1
            for chunk in stream(offset, length):
                CountingHub.bytes += len(chunk)
                yield chunk

        return counted, size, streamed


def member(i: int) -> bytes:
    return b"member %06d " % i + bytes((i * 7 + k) % 251 for k in range(400))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=10_000)
    ap.add_argument("--leads", type=int, default=10)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "storage"
        root.mkdir()
        with zipfile.ZipFile(root / "pack.zip", "w") as z:
            for i in range(args.members):
                z.writestr(f"loras/m{i:06d}.safetensors", member(i))
        db = Database.open(str(Path(tmp) / "bench.db"))
        create_bank(db, "b")
        with db.session() as s:
            for i in range(args.leads):
                h = hash_bytes(member(i * (args.members // max(1, args.leads))))
                s.add(e := Entry(bank_id=1, key=f"k{i}", name=f"Bench {i}", name_norm=f"bench {i}"))
                s.flush()
                s.add_all([EntrySignal(entry_id=e.id, form="crc32", value=h.crc32),
                           EntrySignal(entry_id=e.id, form="size", value=str(h.size))])
        opts = SweepOptions(scope={}, extensions=SweepOptions().extensions + ARCHIVE_EXTENSIONS, headers=False)
        out = {"members": args.members, "leads": args.leads, "zip_bytes": (root / "pack.zip").stat().st_size}
        for run in ("first", "again"):
            CountingHub.reads = CountingHub.bytes = 0
            t = time.perf_counter()
            Sweep(db, CountingHub(root), opts).run()
            out[run] = {"seconds": round(time.perf_counter() - t, 2), "archive_reads": CountingHub.reads,
                        "archive_bytes": CountingHub.bytes}
        with db.session() as s:
            out["member_rows"] = s.scalar(select(func.count()).select_from(HubFile)
                                          .where(HubFile.archive_file_id.isnot(None)))
            out["matches"] = s.scalar(select(func.count()).select_from(Match))
        db.engine.dispose()
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
