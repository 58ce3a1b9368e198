"""Helpers for Civitai tests: a local Civitai API whose models include files with banked hashes."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from mirrorwatch.hubs.civitai.hub import CivitaiHub
from mirrorwatch.hubs.retry import RetryPolicy
from mirrorwatch.services.banks import create_bank
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import Entry, EntrySignal
from mirrorwatch.testhub.civitai import CFile, CModel, CVersion, generate_models


def banked_sha(tag: str) -> str:
    return hashlib.sha256(f"banked-civitai-{tag}".encode()).hexdigest()


def bank_entry(db: Database, name: str, sha: str, *, model_id: int | None = None,
               version_id: int | None = None) -> int:
    with db.session() as s:
        e = Entry(bank_id=1, key=f"sha256:{sha}", name=name, name_norm=name.lower(),
                  civitai_model_id=model_id, civitai_version_id=version_id)
        s.add(e)
        s.flush()
        s.add_all([EntrySignal(entry_id=e.id, form="sha256", value=sha),
                   EntrySignal(entry_id=e.id, form="autov2", value=sha[:10])])
        return e.id


def scenario(n: int = 250, *, now: datetime | None = None) -> tuple[list[CModel], dict[str, str]]:
    """n generated models plus planted ones; returns (models, expected re-upload model id by entry tag).

    - "orig": banked with its own model and version ids (model 900001, version 950001); the same
      bytes come back as a new model of another uploader (900002): only 900002 is a match;
    - "model": banked by model id only (900003); its file re-appears as the non-primary file of a
      version of 900004: a match (every file counts); any version of 900003 itself is not;
    - "nsfw": a re-upload in a mature model (900005): a match (the sweep asks nsfw=true);
    - "hidden": a re-upload in a hidden model (900006): never listed, no match;
    - "down": a re-upload in a taken-down model (900007): recorded disabled, no match."""
    now = now or datetime.utcnow()
    models = generate_models(n, seed=3, now=now)
    t = now - timedelta(hours=2)

    def one(mid: int, vid: int, creator: str, files: list[CFile], **kw) -> CModel:
        return CModel(mid, f"Invented Upload {mid}", creator, [CVersion(vid, "v1.0", t, files)], **kw)

    models += [
        one(900001, 950001, "original_author", [CFile("orig.safetensors", banked_sha("orig"))]),
        one(900002, 950002, "reuploader_one", [CFile("totally_new_style.safetensors", banked_sha("orig"))]),
        CModel(900003, "Invented Model Only", "original_author", [
            CVersion(950003, "v1.0", t - timedelta(days=1), [CFile("m_v1.safetensors", banked_sha("model"))]),
            CVersion(950013, "v2.0", t, [CFile("m_v2.safetensors", banked_sha("model"))])]),
        one(900004, 950004, "reuploader_two", [CFile("pruned.safetensors", banked_sha("other")),
                                              CFile("full.safetensors", banked_sha("model"), primary=False)]),
        one(900005, 950005, "reuploader_one", [CFile("mature.safetensors", banked_sha("nsfw"))], nsfw=True),
        one(900006, 950006, "reuploader_three", [CFile("hidden.safetensors", banked_sha("hidden"))], hidden=True),
        one(900007, 950007, "reuploader_three", [CFile("down.safetensors", banked_sha("down"))], mode="TakenDown"),
    ]
    return models, {"orig": "900002", "model": "900004", "nsfw": "900005"}


def make_civitai_bank(db: Database) -> dict[str, int]:
    create_bank(db, "civitai-bank")
    return {
        "orig": bank_entry(db, "Invented Person Orig", banked_sha("orig"), model_id=900001, version_id=950001),
        "model": bank_entry(db, "Invented Person Model", banked_sha("model"), model_id=900003),
        "nsfw": bank_entry(db, "Invented Person Nsfw", banked_sha("nsfw")),
        "hidden": bank_entry(db, "Invented Person Hidden", banked_sha("hidden")),
        "down": bank_entry(db, "Invented Person Down", banked_sha("down")),
    }


def civitai_hub(url: str, **kw) -> CivitaiHub:
    kw.setdefault("retry", RetryPolicy(attempts=6, base_s=0.01, cap_s=0.05))
    kw.setdefault("interval_s", 0.0)
    return CivitaiHub(url, **kw)
