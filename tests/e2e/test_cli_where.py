"""`mirrorwatch where HASH [--json]`: swept files with a hash, exit 1 when none, a clear error for bad input."""

from __future__ import annotations

import json

import numpy as np
from safetensors.numpy import save_file

from mirrorwatch.hashing.engine import hash_file


def test_where_cli(tmp_path, cli):
    root = tmp_path / "storage"
    root.mkdir()
    p = root / "re_upload.safetensors"
    save_file({"w": np.ones((64, 64), dtype=np.float32)}, str(p))
    h = hash_file(p)
    assert cli("scan", "dir", str(root), "--json").returncode == 0
    out = cli("where", h.crc32, "--json")
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert [(f["hub"], f["path"], f["size"], f["forms"]) for f in body["files"]] == [
        ("dir", "re_upload.safetensors", h.size, ["crc32"])]
    assert body["banked"] == [] and body["forms"] == ["autov1", "crc32"]
    table = cli("where", h.sha256)
    assert table.returncode == 0 and "re_upload.safetensors" in table.stdout and "no entry" in table.stdout
    none = cli("where", "0" * 64)
    assert none.returncode == 1 and "no swept file" in none.stdout
    assert cli("where", "0" * 64, "--json").returncode == 1
    bad = cli("where", "xyz")
    assert bad.returncode not in (0, 1) or "error" in bad.stderr
    assert "Traceback" not in bad.stderr and "not a hash" in bad.stderr


def test_scan_dir_matches_a_member_of_a_zip_and_can_skip_archives(tmp_path, db, cli):
    import zipfile

    from mirrorwatch.hashing.engine import hash_bytes
    from mirrorwatch.services.banks import create_bank
    from mirrorwatch.store.models import Entry, EntrySignal

    root = tmp_path / "storage"
    root.mkdir()
    member = b"\x10" + bytes(7) + b'{"a":1}' + b"w" * 5000 + bytes(range(256))
    with zipfile.ZipFile(root / "pack.zip", "w") as z:
        z.writestr("inner/re_upload.safetensors", member, compress_type=zipfile.ZIP_DEFLATED)
    h = hash_bytes(member)
    create_bank(db, "b")
    with db.session() as s:
        s.add(e := Entry(bank_id=1, key="k", name="Zip Person", name_norm="zip person"))
        s.flush()
        s.add_all([EntrySignal(entry_id=e.id, form="sha256", value=h.sha256),
                   EntrySignal(entry_id=e.id, form="crc32", value=h.crc32)])
    skipped = cli("scan", "dir", str(root), "--no-archives", "--json")
    assert skipped.returncode == 0 and json.loads(skipped.stdout)["counts"]["matches"] == 0
    out = cli("scan", "dir", str(root), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["counts"]["matches"] == 1
    listed = cli("matches", "--json")
    assert listed.returncode == 0
    text = listed.stdout
    assert "pack.zip" in text and "inner/re_upload.safetensors" in text
