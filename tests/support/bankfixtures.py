"""A bank whose entries carry given signals, written straight through the models (no importer)."""

from __future__ import annotations

from mirrorwatch.services.banks import create_bank
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import Entry, EntrySignal


def bank_with_signals(db: Database, known: dict[str, dict[str, str]],
                      sizes: dict[str, list[str]] | None = None) -> dict[str, int]:
    """Bank "b" with one entry per name holding the given forms (and banked sizes): name -> entry id."""
    create_bank(db, "b")
    ids = {}
    with db.session() as s:
        for name, forms in known.items():
            e = Entry(bank_id=1, key=f"n:{name}", name=name, name_norm=name.lower())
            s.add(e)
            s.flush()
            s.add_all([EntrySignal(entry_id=e.id, form=f, value=v) for f, v in forms.items()])
            s.add_all([EntrySignal(entry_id=e.id, form="size", value=v) for v in (sizes or {}).get(name, [])])
            ids[name] = e.id
    return ids
