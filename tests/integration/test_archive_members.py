"""Sweeping a local folder that holds archives: members are leads by banked CRC-32, confirmed by
reading the member alone; a match names the archive and the member; archives not inspected and
members left out are recorded with the reason."""

from __future__ import annotations

import io
import struct
import tarfile
import zipfile

from sqlalchemy import select

from bankfixtures import bank_with_signals
from mirrorwatch.formats.archives import ARCHIVE_EXTENSIONS
from mirrorwatch.hashing.engine import hash_bytes
from mirrorwatch.hubs.localdir.hub import LocalDirHub
from mirrorwatch.store.models import HubFile, Match, ScanError
from mirrorwatch.sweep.runner import Sweep, SweepOptions


def lora(seed: int, n: int = 40_000) -> bytes:
    header = b'{"w":{"dtype":"U8","shape":[%d],"data_offsets":[0,%d]}}' % (n, n)
    return struct.pack("<Q", len(header)) + header + bytes((seed * 13 + i * 5) % 253 for i in range(n))




def test_members_of_a_zip_in_a_folder_are_matched(db, tmp_path):
    a, b, c = lora(1), lora(2), lora(3)
    ha, hb, hc = hash_bytes(a), hash_bytes(b), hash_bytes(c)
    root = tmp_path / "storage"
    root.mkdir()
    with zipfile.ZipFile(root / "removed_pack.zip", "w") as z:
        z.writestr("pack/first.safetensors", a)
        z.writestr("pack/second.safetensors", b, compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("pack/unbanked.safetensors", lora(9))
        z.writestr("../escape.safetensors", c)
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w:gz") as t:
        info = tarfile.TarInfo("x.safetensors")
        info.size = len(c)
        t.addfile(info, io.BytesIO(c))
    (root / "old.tar.gz").write_bytes(tar.getvalue())
    ids = bank_with_signals(db, {
        "Person A": {"sha256": ha.sha256, "crc32": ha.crc32},  # full SHA256 banked
        "Person B": {"crc32": hb.crc32, "autov3": hb.autov3},  # Civitai's short forms only
        "Person C": {"crc32": hc.crc32, "sha256": hc.sha256},  # only in the skipped member and the tarball
        "Person D": {"crc32": hash_bytes(lora(9)).crc32},  # a CRC-32 alone: the weakest member match
    })
    opts = SweepOptions(scope={}, extensions=SweepOptions().extensions + ARCHIVE_EXTENSIONS)  # as `scan dir` does
    run = Sweep(db, LocalDirHub(root), opts).run()
    assert run.to_dict()["status"] == "finished"
    with db.session() as s:
        rows = s.execute(select(Match.entry_id, HubFile.path, HubFile.member, Match.tier, Match.score, Match.evidence)
                         .join(HubFile, HubFile.id == Match.hub_file_id)).all()
        errors = {(e.path, e.reason) for e in s.scalars(select(ScanError))}
    got = {eid: (path, member, tier, score, ev) for eid, path, member, tier, score, ev in rows}
    assert set(got) == {ids["Person A"], ids["Person B"], ids["Person D"]}
    # matches point at the member's own row
    path, member, tier, score, ev = got[ids["Person A"]]
    assert (path, member, tier, score) == ("removed_pack.zip!pack/first.safetensors", "pack/first.safetensors", 1, 1.0)
    assert ev[0]["kind"] == "archive_member" and ev[0]["member"] == "pack/first.safetensors"
    assert ev[0]["archive"] == "removed_pack.zip"
    hashes = [e for e in ev if e["kind"] == "hash"]
    assert {e["form"] for e in hashes} == {"sha256", "crc32"} and all(e["member"] == ev[0]["member"] for e in hashes)
    # (a member is a file like any: the entry learned its AutoV3 from the confirmed member, tier 2 agrees)
    assert {e.get("field") for e in ev if e["kind"] == "header"} <= {"autov3", "autov3_full"}
    path, member, tier, score, ev = got[ids["Person B"]]
    assert member == "pack/second.safetensors" and score == 0.99 and ev[0]["member"] == "pack/second.safetensors"
    # a CRC-32 banked without a size: confirmed by the read, but the weakest tier-1 match (a lead)
    path, member, tier, score, ev = got[ids["Person D"]]
    assert (member, tier, score) == ("pack/unbanked.safetensors", 1, 0.6)
    assert ev[0]["lead"] == "crc32 (no banked size)" and "no full hash" in ev[0]["confirmed"]
    assert ("removed_pack.zip!../escape.safetensors", "archive member skipped: path climbs out of the archive (..)") \
        in errors
    assert any(p == "old.tar.gz" and r.startswith("archive not inspected: compressed tarball") for p, r in errors)
