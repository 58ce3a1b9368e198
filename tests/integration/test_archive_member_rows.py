"""Archive members as rows of their own (issue 10 item 2): every inspected member is a hub_file row
linked to its archive's row; a match on a member points at the member; `where` finds members by any
form (CRC-32 from the central directory included); a member known to the bank only by CRC-32 (and
size) becomes a weaker match once its read confirms them; an unchanged archive is not read again;
members follow their archive (gone, changed). Over HTTP with the real huggingface_hub client
against the test hub, and in a folder (`scan dir`'s hub)."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np
from safetensors.numpy import save
from sqlalchemy import select

from bankfixtures import bank_with_signals
from mirrorwatch.bank.sheets import parse_sheet
from mirrorwatch.bank.sizes import parse_size, size_value
from mirrorwatch.formats.archives import ARCHIVE_EXTENSIONS
from mirrorwatch.hashing.engine import hash_bytes
from mirrorwatch.hubs.localdir.hub import LocalDirHub
from mirrorwatch.services.imports import import_sheet
from mirrorwatch.services.matches import list_matches
from mirrorwatch.services.serial import to_json
from mirrorwatch.services.where import where
from mirrorwatch.store.models import (
    Entry,
    EntrySignal,
    FileSignal,
    Fingerprint,
    HubFile,
    Match,
    ScanError,
    StatusEvent,
)
from mirrorwatch.sweep.runner import Sweep, SweepOptions
from mirrorwatch.testhub import Repo, RepoFile
from pytest_testhub import hf_env, testhub  # noqa: F401
from sweepfixtures import hf

EXTENSIONS = SweepOptions().extensions + ARCHIVE_EXTENSIONS  # what `scan hf` / `scan dir` sweep by default
REPO = "archivist-2/removed-pack"
REAL = Path(__file__).resolve().parents[1] / "data" / "real"


def lora(seed: int, rank: int = 4, dim: int = 96) -> bytes:
    """A small generated kohya-layout LoRA (float32 up/down and alpha): it has a header and a fingerprint."""
    rng = np.random.default_rng(seed)
    tensors = {}
    for name in ("lora_unet_mid_block_attentions_0_proj_in", "lora_unet_mid_block_attentions_0_proj_out"):
        tensors[f"{name}.lora_down.weight"] = rng.standard_normal((rank, dim)).astype(np.float32)
        tensors[f"{name}.lora_up.weight"] = rng.standard_normal((dim, rank)).astype(np.float32)
        tensors[f"{name}.alpha"] = np.array(float(rank), dtype=np.float32)
    return save(tensors, metadata={"ss_output_name": f"invented_{seed}", "ss_session_id": str(1000 + seed)})


def zip_bytes(members: dict[str, bytes], deflate: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED if name in deflate else zipfile.ZIP_STORED)
    return buf.getvalue()


def by_entry(db) -> dict[int, tuple[str | None, float, int, str, list]]:
    """entry id -> (member, score, tier, state, evidence) of every match."""
    with db.session() as s:
        rows = s.execute(select(Match.entry_id, HubFile.member, Match.score, Match.tier, Match.state, Match.evidence)
                         .join(HubFile, HubFile.id == Match.hub_file_id)).all()
    return {eid: (member, score, tier, state, ev) for eid, member, score, tier, state, ev in rows}


def members_of(db, archive: str) -> dict[str, HubFile]:
    with db.session() as s:
        arch = s.scalar(select(HubFile).where(HubFile.path == archive, HubFile.archive_file_id.is_(None)))
        rows = list(s.scalars(select(HubFile).where(HubFile.archive_file_id == arch.id)))
        s.expunge_all()
    return {r.member: r for r in rows}


def add_entry(db, name: str, forms: dict[str, str]) -> int:
    with db.session() as s:
        e = Entry(bank_id=1, key=f"n:{name}", name=name, name_norm=name.lower())
        s.add(e)
        s.flush()
        s.add_all([EntrySignal(entry_id=e.id, form=f, value=v) for f, v in forms.items()])
        return e.id


def test_hf_members_are_rows_matched_by_sha256_and_by_crc32_and_size(db, testhub):  # noqa: F811
    data = {n: lora(i) for i, n in enumerate(("pack/full.safetensors", "pack/crc_size.safetensors",
                                               "pack/crc_only.safetensors", "pack/both.safetensors",
                                               "pack/unbanked.safetensors", "pack/other_size.safetensors"))}
    h = {n: hash_bytes(d) for n, d in data.items()}
    pack = zip_bytes(data, deflate=("pack/crc_size.safetensors",))
    ids = bank_with_signals(db, {
        "Person A": {"sha256": h["pack/full.safetensors"].sha256, "crc32": h["pack/full.safetensors"].crc32},
        # Civitai-like entries known only by CRC-32 and size (sizeKB), or CRC-32 alone
        "Person B": {"crc32": h["pack/crc_size.safetensors"].crc32},
        "Person C": {"crc32": h["pack/crc_only.safetensors"].crc32},
        # the same member: D has its SHA256 (the usual exact match wins), E only its CRC-32 and size
        "Person D": {"sha256": h["pack/both.safetensors"].sha256, "crc32": h["pack/both.safetensors"].crc32},
        "Person E": {"crc32": h["pack/both.safetensors"].crc32},
        # a CRC-32 with another banked size: no lead, never read
        "Person F": {"crc32": h["pack/other_size.safetensors"].crc32},
    }, sizes={"Person A": [str(len(data["pack/full.safetensors"]))],
              "Person B": [str(len(data["pack/crc_size.safetensors"]))],
              "Person E": [str(len(data["pack/both.safetensors"]))],
              "Person F": ["123"]})
    running = testhub([Repo(REPO, files=[RepoFile("removed_pack.zip", content=pack, lfs=True),
                                         RepoFile("README.md", content=b"# pack\n")])])
    hub = hf(running, extensions=EXTENSIONS)
    opts = SweepOptions(scope={"sort": "createdAt"}, extensions=EXTENSIONS, concurrency=2)
    assert Sweep(db, hub, opts).run().status == "finished"
    first_reads = running.stats.by_endpoint["resolve_get"]
    assert first_reads <= 3 + 5  # the index, then one bounded read per lead (A, B, C, D/E)

    # every listed member is a row linked to its archive's row, with what the index says
    rows = members_of(db, "removed_pack.zip")
    assert set(rows) == set(data)
    for name, row in rows.items():
        assert row.path == f"removed_pack.zip!{name}" and row.size == len(data[name]) and row.status == "present"
        assert row.hashes["crc32"] == h[name].crc32
    read = {n for n, r in rows.items() if r.sha256}
    assert read == {"pack/full.safetensors", "pack/crc_size.safetensors", "pack/crc_only.safetensors",
                    "pack/both.safetensors"}
    full = rows["pack/full.safetensors"]
    assert full.sha256 == h["pack/full.safetensors"].sha256 and full.hashes["blake3"] == h["pack/full.safetensors"].blake3
    assert full.header_signals["signals"]["ss_session_id"] == ["1000"]
    with db.session() as s:
        sigs = {(f, v) for f, v in s.execute(select(FileSignal.form, FileSignal.value)
                                             .where(FileSignal.hub_file_id == full.id))}
        assert ("autov3_full", h["pack/full.safetensors"].autov3_full) in sigs and ("ss_session_id", "1000") in sigs
        assert s.scalar(select(Fingerprint.id).where(Fingerprint.hub_file_id == full.id)) is not None

    got = by_entry(db)
    assert set(got) == {ids["Person A"], ids["Person B"], ids["Person C"], ids["Person D"]}
    assert got[ids["Person A"]][:3] == ("pack/full.safetensors", 1.0, 1)
    member, score, tier, _state, ev = got[ids["Person B"]]
    assert (member, score, tier) == ("pack/crc_size.safetensors", 0.8, 1)
    assert ev[0]["lead"] == "crc32 + size" and "no full hash banked" in ev[0]["confirmed"]
    member, score, tier, _state, ev = got[ids["Person C"]]
    assert (member, score, tier) == ("pack/crc_only.safetensors", 0.6, 1)
    assert ev[0]["lead"] == "crc32 (no banked size)"
    assert got[ids["Person D"]][:2] == ("pack/both.safetensors", 1.0)  # E's CRC-32 match gave way

    # downstream: the match names the member and the archive, the link is the archive's
    views = {v.entry_id: v for v in list_matches(db)}
    v = views[ids["Person B"]]
    assert (v.member, v.archive, v.repo_id) == ("pack/crc_size.safetensors", "removed_pack.zip", REPO)
    assert v.url.endswith("removed_pack.zip") and "!" not in v.url
    assert any(w.startswith("member pack/crc_size.safetensors of archive removed_pack.zip: lead by crc32 + size")
               for w in v.why)
    assert to_json(v)["member"] == "pack/crc_size.safetensors" and to_json(v)["archive"] == "removed_pack.zip"

    # `where`: a member unread (its CRC-32 from the central directory) and a read one (its SHA256)
    unread = where(db, h["pack/unbanked.safetensors"].crc32)
    assert [(f.hub, f.repo_id, f.path, f.member, f.forms) for f in unread.files] == [
        ("hf", REPO, "removed_pack.zip", "pack/unbanked.safetensors", ["crc32"])]
    assert unread.files[0].url.endswith("removed_pack.zip")
    found = where(db, h["pack/full.safetensors"].sha256)
    assert [(f.path, f.member) for f in found.files] == [("removed_pack.zip", "pack/full.safetensors")]
    assert [m.entry_name for m in found.files[0].matches] == ["Person A"]

    # a new commit leaves the archive as it was: it is not read again
    running.hub.update_files(REPO, [RepoFile("removed_pack.zip", content=pack, lfs=True),
                                    RepoFile("README.md", content=b"# pack, v2\n")])
    assert Sweep(db, hub, opts).run().status == "finished"
    assert running.stats.by_endpoint["resolve_get"] == first_reads
    # ... unless a member became a lead since (a new bank entry): that member alone is read
    g = add_entry(db, "Person G", {"crc32": h["pack/unbanked.safetensors"].crc32})
    running.hub.update_files(REPO, [RepoFile("removed_pack.zip", content=pack, lfs=True),
                                    RepoFile("README.md", content=b"# pack, v3\n")])
    assert Sweep(db, hub, opts).run().status == "finished"
    assert running.stats.by_endpoint["resolve_get"] == first_reads + 1
    assert by_entry(db)[g][:2] == ("pack/unbanked.safetensors", 0.6)

    # the archive removed: its members are gone, and their matches with them
    # (the repo keeps a weight file: a repo without any is no candidate, and only a recheck visits it)
    running.hub.update_files(REPO, [RepoFile("README.md", content=b"# emptied\n"),
                                    RepoFile("kept.safetensors", content=lora(99), lfs=True)])
    assert Sweep(db, hub, opts).run().status == "finished"
    assert {r.status for r in members_of(db, "removed_pack.zip").values()} == {"gone"}
    assert {state for _m, _s, _t, state, _e in by_entry(db).values()} == {"gone"}
    with db.session() as s:
        assert not list(s.scalars(select(ScanError)))


def test_folder_members_follow_their_archive(db, tmp_path):
    root = tmp_path / "storage"
    root.mkdir()
    a, b, c = lora(11), lora(12), lora(13)
    ha, hb, hc = hash_bytes(a), hash_bytes(b), hash_bytes(c)
    (root / "pack.zip").write_bytes(zip_bytes({"a.safetensors": a, "b.safetensors": b, "c.safetensors": c}))
    ids = bank_with_signals(db, {"Person A": {"sha256": ha.sha256, "crc32": ha.crc32},
                                 "Person B": {"crc32": hb.crc32}, "Person C": {"crc32": hc.crc32}},
                            sizes={"Person B": [str(len(b))]})
    opts = SweepOptions(scope={}, extensions=EXTENSIONS)
    assert Sweep(db, LocalDirHub(root), opts).run().status == "finished"
    got = by_entry(db)
    assert {eid: got[eid][:2] for eid in got} == {ids["Person A"]: ("a.safetensors", 1.0),
                                                   ids["Person B"]: ("b.safetensors", 0.8),
                                                   ids["Person C"]: ("c.safetensors", 0.6)}
    assert [(f.hub, f.path, f.member) for f in where(db, hb.crc32).files] == [("dir", "pack.zip", "b.safetensors")]
    assert [f.member for f in where(db, ha.sha256).files] == ["a.safetensors"]

    # a sheet imported later banks c by CRC-32 and size (KB): the member already read matches at once
    sheet = f"name,crc32,size (kb)\nPerson H,{hc.crc32.upper()},{len(c) / 1024:.2f}\n".encode()
    summary = import_sheet(db, "b", parse_sheet(sheet, name="later.csv"), "later.csv")
    assert summary.matches == 1
    h_id = next(eid for eid in by_entry(db) if eid not in ids.values())
    assert by_entry(db)[h_id][:2] == ("c.safetensors", 0.8)

    # the archive changes: b's bytes changed, c left; a is as it was and keeps its match
    b2 = lora(22)
    (root / "pack.zip").write_bytes(zip_bytes({"a.safetensors": a, "b.safetensors": b2}))
    assert Sweep(db, LocalDirHub(root), opts).run().status == "finished"
    rows = members_of(db, "pack.zip")
    assert (rows["a.safetensors"].status, rows["c.safetensors"].status) == ("present", "gone")
    assert rows["b.safetensors"].hashes["crc32"] == hash_bytes(b2).crc32 and rows["b.safetensors"].sha256 is None
    got = by_entry(db)
    assert (got[ids["Person A"]][3], got[ids["Person B"]][3], got[ids["Person C"]][3]) == ("new", "gone", "gone")
    with db.session() as s:
        events = {(e.hub_file_id, e.status) for e in s.scalars(select(StatusEvent))}
    assert (rows["b.safetensors"].id, "changed") in events and (rows["c.safetensors"].id, "gone") in events

    # the archive deleted: every member gone with it
    (root / "pack.zip").unlink()
    (root / "other.safetensors").write_bytes(lora(30))
    assert Sweep(db, LocalDirHub(root), opts).run().status == "finished"
    assert {r.status for r in members_of(db, "pack.zip").values()} == {"gone"}
    assert by_entry(db)[ids["Person A"]][3] == "gone"


def go_biggest_zip() -> bytes:
    """The zip in golang/go src/archive/zip/reader_test.go ``biggestZipBytes`` (commit
    34417d277a3ef53864ab531b88cb010033432676), written by Go's archive/zip Writer: one deflated
    member ``bigger.zip`` with a data descriptor (flag 0x08: the local header has no CRC or sizes,
    only the central directory does). Kept as the same hex dump (tests/data/real/go-biggest.zip.hex)."""
    text = (REAL / "go-biggest.zip.hex").read_text()
    return bytes.fromhex("".join(re.sub(r"(?m)^[0-9a-f]{7}", "", text).split()))


def test_real_go_written_zip_member_known_by_crc32_and_size(db, tmp_path):
    raw = go_biggest_zip()
    assert len(raw) == 1252  # as Go's test says
    root = tmp_path / "storage"
    root.mkdir()
    (root / "go_biggest.zip").write_bytes(raw)
    member = zipfile.ZipFile(io.BytesIO(raw)).read("bigger.zip")
    ids = bank_with_signals(db, {"Person R": {"crc32": hash_bytes(member).crc32}},
                            sizes={"Person R": [size_value(parse_size("17.97 KB"))]})  # 18,404 bytes, rounded
    assert Sweep(db, LocalDirHub(root), SweepOptions(scope={}, extensions=EXTENSIONS)).run().status == "finished"
    rows = members_of(db, "go_biggest.zip")
    assert set(rows) == {"bigger.zip"} and rows["bigger.zip"].size == 18_404
    assert rows["bigger.zip"].archive_info["method"] == "deflated"
    assert rows["bigger.zip"].sha256 == hash_bytes(member).sha256
    assert by_entry(db)[ids["Person R"]][:3] == ("bigger.zip", 0.8, 1)


def test_folder_members_follow_their_archive_on_postgresql(tmp_path):
    from pgdb import fresh_pg

    db = fresh_pg()
    try:
        test_folder_members_follow_their_archive(db, tmp_path)
    finally:
        db.engine.dispose()
