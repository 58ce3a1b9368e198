"""Creating and listing banks, with their coverage (how many entries are found online)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from mirrorwatch.errors import Conflict, InvalidInput, NotFound
from mirrorwatch.match.states import EXCLUDED
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import Audit, Bank, Entry, Match


@dataclass
class BankView:
    id: int
    name: str
    description: str | None
    source: str | None
    created_at: datetime
    entries: int
    found: int  # entries with at least one live (not dismissed/gone) match

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "description": self.description, "source": self.source,
                "created_at": self.created_at.isoformat() + "Z", "entries": self.entries, "found": self.found}


def create_bank(db: Database, name: str, *, description: str | None = None, source: str | None = None,
                user: str = "cli") -> BankView:
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("a bank name must be 1 to 200 characters")
    try:
        with db.session() as s:
            bank = Bank(name=name, description=description, source=source)
            s.add(bank)
            s.flush()
            s.add(Audit(user=user, action="bank.create", object_type="bank", object_id=str(bank.id),
                        detail={"name": name}))
            return BankView(bank.id, bank.name, description, source, bank.created_at, 0, 0)
    except IntegrityError:
        raise Conflict(f"a bank named {name!r} already exists") from None


def bank_name(db: Database, bank_id: int) -> str:
    with db.session() as s:
        name = s.scalar(select(Bank.name).where(Bank.id == bank_id))
    if name is None:
        raise NotFound(f"no bank with id {bank_id}")
    return name


def list_banks(db: Database) -> list[BankView]:
    with db.session() as s:
        counts = dict(s.execute(select(Entry.bank_id, func.count()).group_by(Entry.bank_id)).all())
        found = dict(
            s.execute(
                select(Entry.bank_id, func.count(func.distinct(Match.entry_id)))
                .join(Match, Match.entry_id == Entry.id)
                .where(Match.state.notin_(EXCLUDED))
                .group_by(Entry.bank_id)
            ).all()
        )
        return [
            BankView(b.id, b.name, b.description, b.source, b.created_at, counts.get(b.id, 0), found.get(b.id, 0))
            for b in s.scalars(select(Bank).order_by(Bank.name))
        ]
