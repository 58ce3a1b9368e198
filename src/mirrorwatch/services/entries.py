"""Removed models (bank entries): what one was, where it lived, its hash forms and every known mirror."""

from __future__ import annotations

from dataclasses import field

from sqlalchemy import select

from mirrorwatch.errors import NotFound
from mirrorwatch.hashing.forms import with_unstored
from mirrorwatch.services.lookup import HASH_FORMS_SHOWN
from mirrorwatch.services.matches import MatchView, match_select, match_views
from mirrorwatch.services.serial import Utc, read_model
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import Bank, Entry, EntrySignal, Match

MAX_MATCHES_SHOWN = 500


@read_model
class SignalView:
    form: str
    value: str
    origin: str
    created_at: Utc


@read_model
class EntryDetail:
    id: int
    bank_id: int
    bank: str
    name: str
    url: str | None
    civitai_model_id: int | None
    civitai_version_id: int | None
    kind: str | None
    notes: str | None
    imported_from: str | None
    row: int | None
    created_at: Utc
    updated_at: Utc
    hashes: dict[str, list[str]] = field(default_factory=dict)
    signals: list[SignalView] = field(default_factory=list)
    matches: list[MatchView] = field(default_factory=list)
    status: str = "active"  # active / withdrawn (services/exchange.py)
    origin: str | None = None  # the feed or file a subscribed entry came from


def get_entry(db: Database, entry_id: int) -> EntryDetail:
    """A removed model: what it was, where it lived, its hash forms and every known mirror."""
    with db.session() as s:
        row = s.execute(select(Entry, Bank.name).join(Bank, Bank.id == Entry.bank_id).where(Entry.id == entry_id)).first()
        if row is None:
            raise NotFound(f"no entry with id {entry_id}")
        e, bank = row
        sigs = [SignalView(x.form, x.value, x.origin, x.created_at)
                for x in s.scalars(select(EntrySignal).where(EntrySignal.entry_id == entry_id).order_by(EntrySignal.id))]
        matches = match_views(s, match_select().where(Match.entry_id == entry_id)
                              .order_by(Match.tier, Match.score.desc(), Match.id).limit(MAX_MATCHES_SHOWN))
    by_form: dict[str, list[str]] = {}
    for x in sigs:
        by_form.setdefault(x.form, []).append(x.value)
    with_unstored(by_form)  # AutoV2 is the SHA256's first 10 hex (not always stored)
    hashes = {form: by_form[form] for form in HASH_FORMS_SHOWN if form in by_form}
    return EntryDetail(e.id, e.bank_id, bank, e.name, e.url, e.civitai_model_id, e.civitai_version_id, e.kind, e.notes,
                     e.imported_from, e.row, e.created_at, e.updated_at, hashes,
                     [x for x in sigs if x.form not in HASH_FORMS_SHOWN], matches, e.status, e.origin)
