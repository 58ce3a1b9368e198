"""Issue 8, defect 3: kohya's `sshs_legacy_hash` is not the AutoV1 of the file as saved.

Files are built exactly as sd-scripts saves a LoRA (tests/support/realwriters.py): networks/lora.py
`LoRANetwork.save_weights` adds the model spec (library/sai_model_spec.py `build_metadata`), computes
library/train_util.py `precalculate_safetensors_hashes` on an in-memory `safetensors.torch.save` of the
tensors with only the ss_* metadata (`addnet_hash_safetensors`: the tensor bytes -> sshs_model_hash;
`addnet_hash_legacy`: sha256 of 0x10000 bytes at 0x100000, 8 hex -> sshs_legacy_hash), then saves with
the sshs_* and modelspec.* fields added: a longer header, so every tensor byte sits further on.
"""

from __future__ import annotations

import hashlib
import io

import pytest
from safetensors.numpy import save
from sqlalchemy import select

from mirrorwatch.formats.safetensors import read_header
from mirrorwatch.hashing.engine import hash_file
from mirrorwatch.match.header import FILE_TO_ENTRY, find_signal_matches, header_signals, store_file_signals
from mirrorwatch.match.robust import file_learnables, learn
from mirrorwatch.services.banks import create_bank
from mirrorwatch.store.models import Entry, EntrySignal, HubFile, HubRepo, Match
from realwriters import addnet_hash_legacy, kohya_state_dict, sd_scripts_save, ss_metadata

FILES = [(48, 1, "aurelie_synthetic_v5"), (48, 2, "bertrand_example"), (56, 3, "cosmo_invented_v2"),
         (64, 4, "delphine_sample-000010"), (72, 5, "ernesto_fictional")]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Five LoRAs saved the sd-scripts way: (path, tensors, metadata as saved, sshs_model_hash, legacy)."""
    out = []
    for rank, seed, name in FILES:
        path = tmp_path_factory.mktemp("sd") / f"{name}.safetensors"
        tensors = kohya_state_dict(rank=rank, seed=seed)
        model_hash, legacy = sd_scripts_save(path, tensors, ss_metadata(name))
        out.append((path, tensors, read_header(path).metadata, model_hash, legacy))
    return out


def test_the_legacy_hash_is_not_the_autov1_of_the_saved_file(saved):
    for path, tensors, metadata, model_hash, legacy in saved:
        forms = hash_file(path).forms()
        assert path.stat().st_size >= 2 * 1024 * 1024 and legacy != "e3b0c442"  # the window holds tensor bytes
        assert metadata["sshs_legacy_hash"] == legacy
        assert forms["autov1"] != legacy  # 5 of 5
        # what it is: AutoV1's window over the ss_*-only serialization sd-scripts hashed in memory
        ss_only = {k: v for k, v in metadata.items() if k.startswith("ss_")}
        assert addnet_hash_legacy(io.BytesIO(save(tensors, ss_only))) == legacy
        assert hashlib.sha256(save(tensors, ss_only)[0x100000:0x110000]).hexdigest()[:8] == legacy
        # while sshs_model_hash is the saved file's full AutoV3 (the tensor bytes do not move)
        assert forms["autov3_full"] == model_hash == metadata["sshs_model_hash"]


def test_the_header_reads_it_as_a_training_save_id_never_as_autov1(saved):
    path, *_rest, legacy = saved[0]
    signals = header_signals(read_header(path))
    assert signals["sshs_legacy_hash"] == [legacy]
    assert "hdr_autov1" not in signals
    assert FILE_TO_ENTRY["sshs_legacy_hash"] == "sshs_legacy_hash"
    assert "autov1" not in FILE_TO_ENTRY.values()


@pytest.fixture
def world(db, saved):
    bank = create_bank(db, "bank", user="setup")
    with db.session() as s:
        entries = []
        for i in range(2):
            e = Entry(bank_id=bank.id, key=f"k{i}", name=f"Invented Entry {i}", name_norm=f"invented entry {i}")
            s.add(e)
            s.flush()
            entries.append(e.id)
        repo = HubRepo(hub="hf", repo_id="some-user/models", author="some-user")
        s.add(repo)
        s.flush()
        files = []
        for i in range(3):
            f = HubFile(repo_pk=repo.id, path=f"f{i}.safetensors", sha256=f"{i:064x}", hashes={})
            s.add(f)
            s.flush()
            files.append(f.id)
    return db, entries, files


def test_an_entrys_autov1_equal_to_a_files_legacy_hash_is_no_evidence(world, saved):
    """The old rule: sshs_legacy_hash == the entry's AutoV1 gave a 0.60 hit. It cannot mean that."""
    db, (e0, _e1), (f0, *_rest) = world
    path, *_mid, legacy = saved[0]
    with db.session() as s:
        s.add(EntrySignal(entry_id=e0, form="autov1", value=legacy))
    with db.session() as s:
        assert find_signal_matches(s, {f0: header_signals(read_header(path))}) == []


def test_a_shared_legacy_hash_links_copies_of_one_save(world, saved):
    """An entry that learned the value from a file it is known to have (a confirmed mirror) leads to
    other hub files carrying the same value: copies of the same training save."""
    db, (e0, _e1), (f0, f1, f2) = world
    path, *_mid, legacy = saved[0]
    other_path, *_mid2, other_legacy = saved[1]
    signals = header_signals(read_header(path))
    with db.session() as s:
        for fid, sigs in ((f0, signals), (f1, signals), (f2, header_signals(read_header(other_path)))):
            store_file_signals(s, fid, {"sshs_legacy_hash": sigs["sshs_legacy_hash"]})
        learned, _fp = file_learnables(s, f0)  # f0 is a confirmed mirror of e0
        assert learned["sshs_legacy_hash"] == [legacy]
        out = learn(db, s, e0, {"sshs_legacy_hash": learned["sshs_legacy_hash"]}, None, origin=f"mirror:{f0}")
        assert out["signals"] == 1
    with db.session() as s:
        pairs = {(m.entry_id, m.hub_file_id): m for m in s.scalars(select(Match))}
    assert set(pairs) == {(e0, f0), (e0, f1)}  # not f2, another save
    m = pairs[(e0, f1)]
    assert m.tier == 2 and m.score < 0.7  # a lead for a reviewer: 8 hex can collide by chance
    assert [e["field"] for e in m.evidence] == ["sshs_legacy_hash"]
    assert other_legacy != legacy



def test_stored_signals_of_the_old_form_are_renamed_by_the_migration(tmp_path):
    """0006_realmatch: a database swept before the fix keeps its signals under the new form."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from mirrorwatch.store.db import MIGRATIONS, Database

    db = Database.open(str(tmp_path / "old.db"), migrate=False)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003_hubport")
        conn.execute(text("INSERT INTO hub_repo (id, hub, repo_id, gated, disabled, status, first_seen, last_seen)"
                          " VALUES (1, 'hf', 'u/r', 0, 0, 'live', '2026-01-01', '2026-01-01')"))
        conn.execute(text("INSERT INTO hub_file (id, repo_pk, path, hashes, status, first_seen, last_seen)"
                          " VALUES (1, 1, 'a.safetensors', '{}', 'live', '2026-01-01', '2026-01-01')"))
        conn.execute(text("INSERT INTO file_signal (hub_file_id, form, value) VALUES (1, 'hdr_autov1', '0badf00d')"))
    db.migrate()
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT form, value FROM file_signal")).all() == [("sshs_legacy_hash", "0badf00d")]
