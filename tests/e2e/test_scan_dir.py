"""Sweeping a local folder: every hash form computed, all matched, unchanged files not re-read."""

from __future__ import annotations

import json
import os

import numpy as np
from safetensors.numpy import save_file

from mirrorwatch.hashing.engine import hash_file
from mirrorwatch.services.banks import create_bank
from mirrorwatch.services.matches import list_matches
from mirrorwatch.store.models import Entry, EntrySignal


def test_scan_dir_matches_every_form(db, db_path, tmp_path, cli):
    store = tmp_path / "storage"
    (store / "a").mkdir(parents=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(4):
        p = store / "a" / f"upload_{i}.safetensors"
        save_file({"w": rng.standard_normal((64, 64), dtype=np.float32)}, str(p), metadata={"i": str(i)})
        paths.append(p)
    (store / "notes.txt").write_text("not a model")
    hashes = [hash_file(p) for p in paths]
    create_bank(db, "b")
    # each entry knows its file by a different form: SHA256, BLAKE3, AutoV3 (12 hex), CRC32 + AutoV1 absent
    forms = [("sha256", hashes[0].sha256), ("blake3", hashes[1].blake3), ("autov3", hashes[2].autov3),
             ("autov2", hashes[3].autov2)]
    with db.session() as s:
        for i, (form, value) in enumerate(forms):
            e = Entry(bank_id=1, key=f"k{i}", name=f"Local Person {i}", name_norm=f"local person {i}")
            s.add(e)
            s.flush()
            s.add(EntrySignal(entry_id=e.id, form=form, value=value))
    out = cli("scan", "dir", str(store), "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["counts"]["matches"] == 4 and summary["counts"]["files"] == 4
    rows = list_matches(db)
    assert {r.entry_name for r in rows} == {f"Local Person {i}" for i in range(4)}
    assert {r.path for r in rows} == {f"a/upload_{i}.safetensors" for i in range(4)}
    ev = {r.entry_name: {e.get("form") for e in r.evidence} for r in rows}
    assert "blake3" in ev["Local Person 1"] and "autov3" in ev["Local Person 2"]

    # second sweep: files with unchanged size and mtime are not read again (proved by changing the
    # bytes behind the sweeper's back and restoring the mtime), and nothing is matched twice
    st = paths[0].stat()
    paths[0].write_bytes(b"\0" * st.st_size)
    os.utime(paths[0], ns=(st.st_atime_ns, st.st_mtime_ns))
    again = json.loads(cli("scan", "dir", str(store), "--json").stdout)
    assert again["counts"]["matches"] == 0 and len(list_matches(db)) == 4
    assert {r.sha256 for r in list_matches(db)} >= {hashes[0].sha256}

    bad = cli("scan", "dir", str(tmp_path / "missing"))
    assert bad.returncode != 0 and "is not a folder" in bad.stderr
