"""A small world for the notification tests: a bank whose entries each have one match, recorded the
way a sweep records them (through match.hits.record_hits, so each has its match.new event)."""

from __future__ import annotations

from sqlalchemy import select

from mirrorwatch.match.hits import Hit, record_hits
from mirrorwatch.services.banks import create_bank
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import Entry, HubFile, HubRepo, Match

NAME = "Invented Person"


def small_world(db: Database, n: int, *, bank: str = "bank") -> tuple[int, list[int]]:
    """A bank with n entries and one match each (recorded the way the sweep records them)."""
    b = create_bank(db, bank)
    with db.session() as s:
        hits = []
        for i in range(n):
            e = Entry(bank_id=b.id, key=f"n:{bank}{i}", name=f"{NAME} {i}", name_norm=f"invented person {i}")
            r = HubRepo(hub="hf", repo_id=f"reuploader/{bank}-lora-{i}")
            s.add_all([e, r])
            s.flush()
            f = HubFile(repo_pk=r.id, path=f"lora_{i}.safetensors", sha256=f"{i:064x}")
            s.add(f)
            s.flush()
            hits.append(Hit(e.id, f.id, 1.0, [{"tier": 1, "kind": "hash", "form": "sha256"}], 1))
        assert record_hits(s, hits, scan_run_id=None) == n
        ids = list(s.scalars(select(Match.id).join(Entry).where(Entry.bank_id == b.id).order_by(Match.id)))
    return b.id, ids
