"""What matching the members of a big zip costs: range requests and bytes before the leads are known,
then per confirmed lead (issue 10 target: a 2 GiB archive of 40 LoRAs in at most 3 range requests and
under 1 MiB before the leads are confirmed, then one bounded read per lead).

    .venv/bin/python benchmarks/bench_zip.py [--members 40] [--member-mib 51] [--zip64] [--json out.json]

The archive is built sparsely (testhub/zipbuild.py): 36 members of zeros are holes in the file, so a
2 GiB archive takes a few MB of disk; 4 members are real generated safetensors files (2 stored, 2
deflated) of a few hundred KB. A bank knows 3 of the members by CRC-32 and size (two real ones and one
of zeros). Every read goes through ``read_range(offset, length)`` over the local file, counted; a hub
answers the same calls with HTTP range requests, so the counts are the HTTP requests a sweep would make.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mirrorwatch.formats.archives import confirm_member, local_reader, local_stream, read_zip
from mirrorwatch.hashing.engine import hash_bytes
from mirrorwatch.testhub.zipbuild import ZipSpec, write_zip

MIB = 1024 * 1024


def fake_lora(seed: int, n: int) -> bytes:
    header = json.dumps({"__metadata__": {"ss_output_name": f"bench_{seed}"},
                         "lora_up.weight": {"dtype": "U8", "shape": [n], "data_offsets": [0, n]}}).encode()
    body = bytes((seed * 131 + i * 17 + (i >> 9)) % 251 for i in range(n))
    return struct.pack("<Q", len(header)) + header + body


class Counter:
    def __init__(self, read):
        self.read, self.requests, self.bytes = read, 0, 0

    def __call__(self, offset: int, length: int) -> bytes:
        self.requests += 1
        data = self.read(offset, length)
        self.bytes += len(data)
        return data


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=40)
    ap.add_argument("--member-mib", type=float, default=56.0, help="size of each member of zeros")
    ap.add_argument("--zip64", action="store_true", help="write ZIP64 records and extra fields")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    real = {i: fake_lora(i, 300_000 + 1000 * i) for i in range(4)}
    specs = []
    for i in range(args.members):
        name = f"removed_models/lora_{i:03d}_{'x' * 20}.safetensors"
        if i < 4:
            specs.append(ZipSpec(name, real[i], deflate=i % 2 == 1))
        else:
            specs.append(ZipSpec(name, zeros=int(args.member_mib * MIB) + i))
    with tempfile.TemporaryDirectory(prefix="mw-bench-zip-") as tmp:
        path = Path(tmp) / "archive.zip"
        t0 = time.perf_counter()
        write_zip(path, specs, zip64=args.zip64)
        build_s = time.perf_counter() - t0
        st = os.stat(path)
        read, size = local_reader(path)

        listing_reads = Counter(read)
        t0 = time.perf_counter()
        listing = read_zip(listing_reads, size)
        list_ms = (time.perf_counter() - t0) * 1000
        by_name = {m.name: m for m in listing.members}
        banked = {(by_name[specs[k].name].crc32, by_name[specs[k].name].size) for k in (0, 1, 7)}  # a bank's (CRC32, size)
        leads = [m for m in listing.members if (m.crc32, m.size) in banked]

        confirmations = []
        for m in leads:
            c = Counter(read)
            streamed = local_stream(path)

            def stream(offset, length, c=c, streamed=streamed):  # one request, counted like a range read
                c.requests += 1
                for chunk in streamed(offset, length):
                    c.bytes += len(chunk)
                    yield chunk

            t0 = time.perf_counter()
            h = confirm_member(c, size, m, archive_name=path.name, stream_range=stream)
            idx = next(i for i, s in enumerate(specs) if s.name == m.name)
            expected = hash_bytes(real[idx]).sha256 if idx < 4 else None
            confirmations.append({"member": m.name, "method": m.method, "size": m.size, "requests": c.requests,
                                  "bytes": c.bytes, "ms": round((time.perf_counter() - t0) * 1000, 1),
                                  "sha256_ok": expected is None or h.sha256 == expected})

    out = {
        "archive_bytes": size, "archive_gib": round(size / 1024**3, 3), "disk_bytes_used": st.st_blocks * 512,
        "members": len(listing.members), "zip64": args.zip64, "build_s": round(build_s, 2),
        "listing": {"requests": listing_reads.requests, "bytes": listing_reads.bytes, "ms": round(list_ms, 2)},
        "leads": len(leads), "confirm": confirmations,
        "targets": {"listing_requests_max": 3, "listing_bytes_max": MIB},
    }
    ok = listing_reads.requests <= 3 and listing_reads.bytes < MIB and len(leads) == 3 and all(
        c["sha256_ok"] for c in confirmations)
    print(f"archive: {out['archive_gib']} GiB ({size} bytes), {len(listing.members)} members, "
          f"{'ZIP64, ' if args.zip64 else ''}{out['disk_bytes_used'] / MIB:.1f} MiB on disk (sparse)")
    print(f"{'':28}{'measured':>14}{'target':>14}")
    print(f"{'listing range requests':28}{listing_reads.requests:>14}{'<= 3':>14}")
    print(f"{'listing bytes':28}{listing_reads.bytes:>14,}{'< 1,048,576':>14}")
    print(f"{'listing time (ms)':28}{list_ms:>14.2f}")
    print(f"{'leads (CRC-32 + size)':28}{len(leads):>14}{3:>14}")
    for c in confirmations:
        print(f"  confirm {c['member'][-30:]:30} {c['method']:8} {c['size']:>11,} B  {c['requests']:>3} requests "
              f"{c['bytes']:>12,} B  {c['ms']:>8.1f} ms  sha256 ok={c['sha256_ok']}")
    print("PASS" if ok else "FAIL")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
