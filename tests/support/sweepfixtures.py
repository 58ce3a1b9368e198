"""Helpers for sweep tests: a bank whose hashes are planted in a generated test hub."""

from __future__ import annotations

import hashlib

import pytest

from mirrorwatch.hubs.huggingface.hub import HuggingFaceHub
from mirrorwatch.hubs.retry import RetryPolicy
from mirrorwatch.services.banks import create_bank
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import Entry, EntrySignal, Match
from mirrorwatch.sweep.runner import Sweep, SweepOptions
from mirrorwatch.testhub import RepoFile
from pgdb import fresh_pg


def bank_sha(i: int) -> str:
    return hashlib.sha256(f"banked-model-{i}".encode()).hexdigest()


def make_bank(db: Database, n: int, name: str = "bank") -> list[int]:
    """A bank of n entries with SHA256 (and derived AutoV2) forms; returns entry ids."""
    create_bank(db, name)
    ids = []
    with db.session() as s:
        for i in range(n):
            sha = bank_sha(i)
            e = Entry(bank_id=1, key=f"sha256:{sha}", name=f"Invented Person {i}", name_norm=f"invented person {i}")
            s.add(e)
            s.flush()
            s.add_all([EntrySignal(entry_id=e.id, form="sha256", value=sha),
                       EntrySignal(entry_id=e.id, form="autov2", value=sha[:10])])
            ids.append(e.id)
    return ids


def planted(n: int, *, uploaders: int = 3, extra_files: bool = True) -> dict[str, list[RepoFile]]:
    """n re-uploads of banked models under generic names, spread over a few uploaders."""
    out = {}
    for i in range(n):
        files = [RepoFile("lora.safetensors", size=150_000_000 + i, sha256=bank_sha(i))]
        if extra_files:
            files.append(RepoFile("README.md", content=b"# LORA\nre-upload\n"))
        out[f"reuploader-{i % uploaders}/lora-{i}"] = files
    return out


def hf(running, **kw) -> HuggingFaceHub:
    kw.setdefault("retry", RetryPolicy(base_s=0.01, cap_s=0.05))
    return HuggingFaceHub(running.url, **kw)


def sweep(db: Database, hub, **scope) -> dict:
    opts = SweepOptions(scope={"sort": "createdAt", **scope}, concurrency=8)
    return Sweep(db, hub, opts).run().to_dict()


def match_pairs(db: Database) -> set[tuple[str, str, str]]:
    """(entry name, repo id, path) of every match."""
    from mirrorwatch.services.matches import list_matches

    return {(r.entry_name, r.repo_id, r.path) for r in list_matches(db, limit=100000)}


def match_count(db: Database) -> int:
    with db.session() as s:
        return s.query(Match).count()


@pytest.fixture(params=["sqlite", "postgresql"])
def anydb(request, tmp_path) -> Database:
    """The same test on a SQLite file and on PostgreSQL (MIRRORWATCH_TEST_PG; its schema is reset)."""
    if request.param == "sqlite":
        return Database.open(str(tmp_path / "mw.db"))
    return fresh_pg()
