"""`scan hf` sweeps .zip/.tar archives by default (`--archives`) and leaves them out with `--no-archives`."""

from __future__ import annotations

import io
import json
import struct
import zipfile

from mirrorwatch.hashing.engine import hash_bytes
from mirrorwatch.services.banks import create_bank
from mirrorwatch.store.models import Entry, EntrySignal
from mirrorwatch.testhub import Repo, RepoFile
from pytest_testhub import hf_env, testhub  # noqa: F401


def lora(seed: int, n: int = 30_000) -> bytes:
    header = b'{"w":{"dtype":"U8","shape":[%d],"data_offsets":[0,%d]}}' % (n, n)
    return struct.pack("<Q", len(header)) + header + bytes((seed * 31 + i * 11) % 251 for i in range(n))


def test_scan_hf_matches_archive_members_unless_told_not_to(db, cli, testhub):  # noqa: F811
    members = [lora(i) for i in range(3)]
    h = hash_bytes(members[1])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i, m in enumerate(members):
            z.writestr(f"loras/m{i}.safetensors", m)
    create_bank(db, "b")
    with db.session() as s:
        e = Entry(bank_id=1, key="n:x", name="Invented Person", name_norm="invented person")
        s.add(e)
        s.flush()
        s.add_all([EntrySignal(entry_id=e.id, form="crc32", value=h.crc32),
                   EntrySignal(entry_id=e.id, form="size", value=str(len(members[1]))),
                   EntrySignal(entry_id=e.id, form="sha256", value=h.sha256)])
    running = testhub([Repo("archivist-2/pack", files=[RepoFile("pack.zip", content=buf.getvalue(), lfs=True)])])

    off = cli("scan", "hf", "--endpoint", running.url, "--repo", "archivist-2/pack", "--no-archives", "--json")
    assert off.returncode == 0, off.stderr
    assert json.loads(off.stdout)["counts"]["matches"] == 0
    assert running.stats.by_endpoint["resolve_get"] == 0  # the archive was not read at all

    on = cli("scan", "hf", "--endpoint", running.url, "--repo", "archivist-2/pack", "--json")
    assert on.returncode == 0, on.stderr
    assert json.loads(on.stdout)["counts"]["matches"] == 1
    (row,) = json.loads(cli("matches", "--json").stdout)
    # the match is on the member's own row: `member` and the archive's path name it
    assert (row["repo_id"], row["archive"], row["member"]) == ("archivist-2/pack", "pack.zip", "loras/m1.safetensors")
    assert row["path"] == "pack.zip!loras/m1.safetensors" and row["url"].endswith("pack.zip")
    assert row["evidence"][0]["member"] == "loras/m1.safetensors"
