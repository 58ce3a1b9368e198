"""`scan dir` on a folder holding a zip: `where HASH --json` finds a member by its CRC-32 (from the
central directory, never read) and by its SHA256 (after the read); `matches --json` records carry
`member` and `archive` (null for plain files); a second scan finds nothing new."""

from __future__ import annotations

import json
import struct
import zipfile

from mirrorwatch.hashing.engine import hash_bytes
from mirrorwatch.services.banks import create_bank
from mirrorwatch.store.models import Entry, EntrySignal


def lora(seed: int, n: int = 20_000) -> bytes:
    header = b'{"w":{"dtype":"U8","shape":[%d],"data_offsets":[0,%d]}}' % (n, n)
    return struct.pack("<Q", len(header)) + header + bytes((seed * 17 + i * 3) % 251 for i in range(n))


def test_scan_dir_where_and_matches_name_the_member(tmp_path, db, cli):
    root = tmp_path / "storage"
    root.mkdir()
    banked, unread, plain = lora(1), lora(2), lora(3)
    hb, hu, hp = hash_bytes(banked), hash_bytes(unread), hash_bytes(plain)
    with zipfile.ZipFile(root / "pack.zip", "w") as z:
        z.writestr("inner/banked.safetensors", banked, compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("inner/unread.safetensors", unread)
    (root / "plain.safetensors").write_bytes(plain)
    create_bank(db, "b")
    with db.session() as s:
        s.add_all([a := Entry(bank_id=1, key="a", name="Zip Person", name_norm="zip person"),
                   p := Entry(bank_id=1, key="p", name="Plain Person", name_norm="plain person")])
        s.flush()
        # Civitai-like: CRC-32 and size only for the member; a SHA256 for the plain file
        s.add_all([EntrySignal(entry_id=a.id, form="crc32", value=hb.crc32),
                   EntrySignal(entry_id=a.id, form="size", value=str(len(banked))),
                   EntrySignal(entry_id=p.id, form="sha256", value=hp.sha256)])
    out = cli("scan", "dir", str(root), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["counts"]["matches"] == 2

    rows = {r["entry_name"]: r for r in json.loads(cli("matches", "--json").stdout)}
    assert (rows["Zip Person"]["member"], rows["Zip Person"]["archive"]) == ("inner/banked.safetensors", "pack.zip")
    assert rows["Zip Person"]["score"] == 0.8 and rows["Zip Person"]["tier"] == 1
    assert (rows["Plain Person"]["member"], rows["Plain Person"]["archive"]) == (None, None)
    assert cli("matches").returncode == 0

    by_crc = cli("where", hu.crc32, "--json")
    assert by_crc.returncode == 0, by_crc.stderr
    assert [(f["hub"], f["path"], f["member"], f["forms"]) for f in json.loads(by_crc.stdout)["files"]] == [
        ("dir", "pack.zip", "inner/unread.safetensors", ["crc32"])]
    by_sha = json.loads(cli("where", hb.sha256, "--json").stdout)
    assert [(f["path"], f["member"]) for f in by_sha["files"]] == [("pack.zip", "inner/banked.safetensors")]
    assert by_sha["files"][0]["matches"][0]["entry_name"] == "Zip Person"
    assert cli("where", hu.sha256).returncode == 1  # never read: its SHA256 is not known

    again = cli("scan", "dir", str(root), "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["counts"]["matches"] == 0
