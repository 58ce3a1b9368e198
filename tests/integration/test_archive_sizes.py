"""Archive leads use banked sizes (issue 10 item 2): a member is a lead when its CRC-32 is banked AND
its size is one of that entry's banked sizes; a banked CRC-32 with another banked size is no lead
(the member is never read); a CRC-32 banked without a size is a weaker lead, read after sized ones."""

from __future__ import annotations

import struct
import zipfile

from sqlalchemy import select

from bankfixtures import bank_with_signals
from mirrorwatch.formats.archives import ARCHIVE_EXTENSIONS, local_reader, read_archive
from mirrorwatch.hashing.engine import hash_bytes
from mirrorwatch.hubs.localdir.hub import LocalDirHub
from mirrorwatch.store.models import HubFile, Match
from mirrorwatch.sweep.runner import Sweep, SweepOptions


def lora(seed: int, n: int = 100_000) -> bytes:
    header = b'{"w":{"dtype":"U8","shape":[%d],"data_offsets":[0,%d]}}' % (n, n)
    return struct.pack("<Q", len(header)) + header + bytes((seed * 17 + i * 3) % 251 for i in range(n))


class CountingDir(LocalDirHub):
    """The folder hub with every range read and streamed read of its archives recorded."""

    def __init__(self, root) -> None:
        super().__init__(root)
        self.reads: list[tuple[int, int]] = []

    def archive_reader(self, f: HubFile):
        opened = super().archive_reader(f)
        if opened is None:
            return None
        read, size, stream = opened

        def counted_read(offset: int, length: int) -> bytes:
            self.reads.append((offset, length))
            return read(offset, length)

        def counted_stream(offset: int, length: int):
            self.reads.append((offset, length))
            return stream(offset, length)

        return counted_read, size, counted_stream if stream is not None else None




def _touches(reads: list[tuple[int, int]], start: int, end: int) -> bool:
    """Whether a read starts inside the member's local header + data (a member's read may run a few
    bytes past its end)."""
    return any(start <= o < end for o, _n in reads)


def test_crc32_with_another_banked_size_is_no_lead_and_is_never_read(db, tmp_path):
    sized, other_size, unsized = lora(1), lora(2), lora(3)
    hs, ho, hu = hash_bytes(sized), hash_bytes(other_size), hash_bytes(unsized)
    root = tmp_path / "storage"
    root.mkdir()
    with zipfile.ZipFile(root / "pack.zip", "w") as z:
        z.writestr("pack/other_size.safetensors", other_size)
        z.writestr("pack/unsized.safetensors", unsized, compress_type=zipfile.ZIP_DEFLATED)  # read last
        z.writestr("pack/sized.safetensors", sized)
    with zipfile.ZipFile(root / "pack.zip") as z:
        spans = {i.filename: (i.header_offset, i.header_offset + 30 + len(i.filename) + i.compress_size)
                 for i in z.infolist()}
    listing_reads = []  # the reads that list the archive (its tail: the central directory)
    read, size = local_reader(root / "pack.zip")
    read_archive("pack.zip", size, lambda o, n: listing_reads.append((o, n)) or read(o, n))
    ids = bank_with_signals(db, {
        "Sized Person": {"sha256": hs.sha256, "crc32": hs.crc32},
        # the member's real CRC-32 and SHA256, but the bank says the file is another size: as if a
        # different banked file collided on CRC-32 -- no lead, so not read, so no match
        "Other Size Person": {"sha256": ho.sha256, "crc32": ho.crc32},
        "Unsized Person": {"sha256": hu.sha256, "crc32": hu.crc32},
    }, {"Sized Person": ["999", str(len(sized))], "Other Size Person": [str(len(other_size) + 1), "5-10"]})
    hub = CountingDir(root)
    opts = SweepOptions(scope={}, extensions=SweepOptions().extensions + ARCHIVE_EXTENSIONS)
    run = Sweep(db, hub, opts).run()
    assert run.to_dict()["status"] == "finished"

    assert hub.reads[: len(listing_reads)] == listing_reads
    assert not _touches(listing_reads, *spans["pack/other_size.safetensors"])  # far from the tail
    members = hub.reads[len(listing_reads):]
    assert not _touches(members, *spans["pack/other_size.safetensors"])  # never read
    sized_at = [i for i, r in enumerate(members) if _touches([r], *spans["pack/sized.safetensors"])]
    unsized_at = [i for i, r in enumerate(members) if _touches([r], *spans["pack/unsized.safetensors"])]
    assert sized_at and unsized_at and max(sized_at) < min(unsized_at)  # sized leads confirmed first

    with db.session() as s:
        got = {eid: ev for eid, ev in s.execute(select(Match.entry_id, Match.evidence))}
    assert set(got) == {ids["Sized Person"], ids["Unsized Person"]}
    lead = got[ids["Sized Person"]][0]
    assert (lead["member"], lead["lead"], lead["size"]) == ("pack/sized.safetensors", "crc32 + size", len(sized))
    lead = got[ids["Unsized Person"]][0]
    assert (lead["member"], lead["lead"]) == ("pack/unsized.safetensors", "crc32 (no banked size)")


def test_a_rounded_banked_size_still_makes_a_lead(db, tmp_path):
    member = lora(4)
    h = hash_bytes(member)
    root = tmp_path / "storage"
    root.mkdir()
    with zipfile.ZipFile(root / "pack.zip", "w") as z:
        z.writestr("m.safetensors", member)
    n = len(member)
    ids = bank_with_signals(db, {"Rounded Person": {"sha256": h.sha256, "crc32": h.crc32}},
                {"Rounded Person": [f"{n - 40}-{n + 60}"]})  # e.g. "97.8 KB" in a sheet
    opts = SweepOptions(scope={}, extensions=SweepOptions().extensions + ARCHIVE_EXTENSIONS)
    Sweep(db, LocalDirHub(root), opts).run()
    with db.session() as s:
        (ev,) = s.scalars(select(Match.evidence).where(Match.entry_id == ids["Rounded Person"])).all()
    assert ev[0]["lead"] == "crc32 + size"
