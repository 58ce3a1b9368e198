"""`scan dir` end to end with a bank that knows file sizes (a sheet's size column): the member whose
banked CRC-32 and size agree is matched with lead "crc32 + size"; a member whose CRC-32 is banked with
another size is not a lead, so not matched; `lookup --json` shows the banked size."""

from __future__ import annotations

import json
import zipfile

from mirrorwatch.hashing.engine import hash_bytes


def _member(seed: int) -> bytes:
    return b"\x10" + bytes(7) + b'{"a":1}' + bytes((seed * 7 + i) % 256 for i in range(20_000))


def test_scan_dir_uses_banked_sizes_for_archive_leads(tmp_path, cli):
    root = tmp_path / "storage"
    root.mkdir()
    right, wrong = _member(1), _member(2)
    with zipfile.ZipFile(root / "pack.zip", "w") as z:
        z.writestr("inner/right.safetensors", right, compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("inner/wrong.safetensors", wrong)
    hr, hw = hash_bytes(right), hash_bytes(wrong)
    sheet = tmp_path / "bank.csv"
    sheet.write_text("name,sha256,crc32,size\n"
                     f"Right Size Person,{hr.sha256},{hr.crc32},\"{len(right):,}\"\n"
                     f"Wrong Size Person,{hw.sha256},{hw.crc32},{len(wrong) + 4096}\n")
    assert cli("bank", "create", "b").returncode == 0
    imported = cli("bank", "import", str(sheet), "--bank", "b", "--json")
    assert imported.returncode == 0, imported.stderr
    found = json.loads(cli("lookup", hr.sha256, "--json").stdout)["results"][0]
    assert found["signals"]["size"] == [str(len(right))]

    out = cli("scan", "dir", str(root), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["counts"]["matches"] == 1
    listed = cli("matches", "--json")
    assert listed.returncode == 0
    assert "inner/right.safetensors" in listed.stdout and "crc32 + size" in listed.stdout
    assert "Wrong Size Person" not in listed.stdout and "inner/wrong.safetensors" not in listed.stdout
