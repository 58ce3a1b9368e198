"""Reverse look-up (`where`, GET /api/files, /files): swept files carrying a hash, of any form,
banked or not, from the sweeps' own file index."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from alembic import command
from alembic.config import Config
from safetensors.numpy import save_file
from sqlalchemy import delete, select

from mirrorwatch.hashing.engine import hash_file
from mirrorwatch.hubs.localdir.hub import LocalDirHub
from mirrorwatch.services.serial import to_json
from mirrorwatch.services.where import where
from mirrorwatch.store.db import MIGRATIONS
from mirrorwatch.store.models import FileSignal, HubFile
from mirrorwatch.sweep.runner import Sweep, SweepOptions
from mirrorwatch.testhub import Hub, Repo, RepoFile, generate_repos
from pytest_testhub import hf_env, testhub  # noqa: F401
from sweepfixtures import bank_sha, hf, make_bank, planted, sweep

pytest_plugins = ("webfixtures",)

UNBANKED = hashlib.sha256(b"never banked anywhere").hexdigest()


def test_where_on_a_swept_test_hub(db, testhub):  # noqa: F811
    make_bank(db, 3)
    repos = [Repo(rid, files=files) for rid, files in planted(3).items()]
    repos.append(Repo("collector/misc", files=[RepoFile("other.safetensors", size=12_345, sha256=UNBANKED),
                                                 RepoFile("copy.safetensors", size=150_000_000, sha256=bank_sha(1))]))
    running = testhub(Hub(generate_repos(20, seed=3) + repos))
    assert sweep(db, hf(running))["status"] == "finished"

    found = where(db, bank_sha(1))
    assert {(f.hub, f.repo_type, f.repo_id, f.path) for f in found.files} == {
        ("hf", "model", "reuploader-1/lora-1", "lora.safetensors"), ("hf", "model", "collector/misc", "copy.safetensors")}
    assert found.forms == ["sha256", "blake3", "autov3_full"] and all(f.forms == ["sha256"] for f in found.files)
    assert [e.name for e in found.banked] == ["Invented Person 1"]
    f = next(f for f in found.files if f.repo_id == "reuploader-1/lora-1")
    assert f.size == 150_000_001 and f.status == "present" and f.repo_status == "live" and f.member is None
    assert [m.entry_name for m in f.matches] == ["Invented Person 1"]
    assert f.url and "reuploader-1/lora-1" in f.url
    # AutoV2 (10 hex, never stored): a range on the SHA256 index; "sha256:"/upper case pasted as is
    assert {f.repo_id for f in where(db, "AutoV2: " + bank_sha(1)[:10].upper()).files} == {
        "reuploader-1/lora-1", "collector/misc"}
    # not banked, but swept: found, with no entry
    unb = where(db, UNBANKED)
    assert [(f.repo_id, f.path, f.matches) for f in unb.files] == [("collector/misc", "other.safetensors", [])]
    assert unb.banked == []
    assert where(db, hashlib.sha256(b"nowhere").hexdigest()).files == []
    # a named form is only that form
    assert where(db, bank_sha(1), form="blake3").files == []
    assert to_json(unb)["files"][0]["first_seen"].endswith("Z")


def _local_folder(tmp_path: Path) -> tuple[Path, list]:
    root = tmp_path / "storage"
    root.mkdir()
    rng = np.random.default_rng(1)
    paths = []
    for i in range(2):
        p = root / f"up_{i}.safetensors"
        save_file({"w": rng.standard_normal((600, 600), dtype=np.float32)}, str(p))  # ~1.4 MB
        paths.append(p)
    big = root / "big.safetensors"  # over 2 MiB: has an AutoV1
    save_file({"w": rng.standard_normal((800, 800), dtype=np.float32)}, str(big))
    paths.append(big)
    return root, [hash_file(p) for p in paths]


def test_where_finds_local_files_by_every_form(db, tmp_path):
    root, hashes = _local_folder(tmp_path)
    Sweep(db, LocalDirHub(root), SweepOptions(scope={})).run()
    h = hashes[2]
    assert h.autov1
    for form in ("sha256", "autov2", "autov1", "autov3", "autov3_full", "crc32", "blake3"):
        found = where(db, getattr(h, form))
        assert [f.path for f in found.files] == ["big.safetensors"], form
        assert form in found.files[0].forms
        assert found.banked == []


def test_migration_backfills_file_signals_of_files_swept_before(db, db_path, tmp_path):
    root, hashes = _local_folder(tmp_path)
    Sweep(db, LocalDirHub(root), SweepOptions(scope={})).run()
    with db.session() as s:  # as a sweep before revision 0005 left it: forms only in the JSON
        s.execute(delete(FileSignal).where(FileSignal.form.in_(["crc32", "blake3", "autov1"])))
    assert where(db, hashes[0].crc32).files == []
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.connect() as conn:
        # (foreign keys off, as Database.migrate runs migrations: 0008 rebuilds hub_repo on SQLite)
        conn.connection.dbapi_connection.execute("PRAGMA foreign_keys=OFF")
        with conn.begin():
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0004_websec")
            command.upgrade(cfg, "head")
        conn.connection.dbapi_connection.execute("PRAGMA foreign_keys=ON")
    for h in hashes:
        assert [f.path for f in where(db, h.crc32, form="crc32").files] == [Path(h.path).name]
        assert len(where(db, h.blake3).files) == 1
    with db.session() as s:
        n = s.scalar(select(FileSignal.id).where(FileSignal.form == "crc32").limit(1))
        assert n is not None
        assert s.query(HubFile).count() == 3


def test_files_api_and_page(world, api, client_as):
    from webdata import fake_sha

    c = api("vic")  # a viewer may read
    r = c.get("/api/files", params={"sha256": fake_sha("e0")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [(f["repo_id"], f["path"], f["repo_type"], f["member"]) for f in body["files"]] == [
        ("archivist9/LORA-0", "lora_0.safetensors", "model", None)]
    assert body["files"][0]["matches"][0]["entry_id"] == world.entries[0]
    assert c.get("/api/files", params={"hash": fake_sha("e0")[:10]}).json()["files"][0]["path"] == "lora_0.safetensors"
    assert c.get("/api/files", params={"hash": fake_sha("e9")}).json()["files"][0]["hub"] == "local"
    assert c.get("/api/files", params={"hash": fake_sha("zz")}).json()["files"] == []
    bad = c.get("/api/files", params={"sha256": "abc"})
    assert bad.status_code == 400 and "error" in bad.json()
    assert c.get("/api/files", params={"sha256": fake_sha("e0")[:10]}).status_code == 400  # named form: 64 hex
    assert c.get("/api/files").status_code == 400
    assert c.get("/api/files", params={"sha256": fake_sha("e0"), "hash": "ab" * 4}).status_code == 400
    page, _csrf = client_as("vic")
    html = page.get("/files", params={"hash": fake_sha("e0")}).text
    assert "archivist9/LORA-0" in html and "lora_0.safetensors" in html
    assert page.get("/files", params={"hash": "not-a-hash"}).status_code == 400
    assert page.get("/files").status_code == 200
    assert json.dumps(body)  # plain JSON
