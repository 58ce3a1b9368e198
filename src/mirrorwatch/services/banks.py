"""Banks of removed models: creating and listing them, a bank's coverage (how much of it is found
online, where, since when), its entries and its import history."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from pydantic import computed_field
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from mirrorwatch.errors import Conflict, InvalidInput, NotFound
from mirrorwatch.match.states import EXCLUDED, LIVE
from mirrorwatch.services.paging import Page, check_window
from mirrorwatch.services.serial import Utc, read_model
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import Audit, Bank, Entry, HubFile, HubRepo, ImportRun, Match
from mirrorwatch.text.names import normalise_name


@read_model
class BankView:
    id: int
    name: str
    description: str | None
    source: str | None
    created_at: Utc
    entries: int
    found: int  # entries with at least one live (not dismissed/gone) match


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


# --- coverage, entries and import history ---------------------------------------------------------

@read_model
class Coverage:
    """How much of a bank has been found online, where, and since when."""

    entries: int
    found: int  # entries with at least one match that is not dismissed or gone
    matches: int
    by_state: dict[str, int]
    by_hub: dict[str, int]  # entries found per hub
    repos: int
    uploaders: int
    first_found: Utc | None
    last_found: Utc | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def share(self) -> float:
        return self.found / self.entries if self.entries else 0.0


@read_model
class ImportRunView:
    id: int
    filename: str
    fmt: str
    user: str | None
    at: Utc
    counts: dict[str, Any]
    rejected: list[Any]


@read_model
class EntryRow:
    id: int
    name: str
    url: str | None
    civitai_model_id: int | None
    civitai_version_id: int | None
    kind: str | None
    matches: int = 0
    live: int = 0


@read_model
class BankDetail:
    """A bank with its coverage and import history (its entries are paged: :func:`bank_entries`)."""

    id: int
    name: str
    description: str | None
    source: str | None
    created_at: Utc
    coverage: Coverage
    imports: list[ImportRunView]


def bank_coverage(db: Database, bank_id: int) -> Coverage:
    with db.session() as s:
        entries = s.scalar(select(func.count()).select_from(Entry).where(Entry.bank_id == bank_id)) or 0
        base = (select(Match.state, Match.entry_id, HubRepo.hub, HubRepo.id, HubRepo.author, Match.created_at)
                .select_from(Match).join(Entry, Entry.id == Match.entry_id)
                .join(HubFile, HubFile.id == Match.hub_file_id).join(HubRepo, HubRepo.id == HubFile.repo_pk)
                .where(Entry.bank_id == bank_id)).subquery()
        by_state = dict(s.execute(select(base.c.state, func.count()).group_by(base.c.state)).all())
        live = base.c.state.in_(LIVE)
        found = s.scalar(select(func.count(func.distinct(base.c.entry_id))).where(live)) or 0
        by_hub = dict(s.execute(select(base.c.hub, func.count(func.distinct(base.c.entry_id))).where(live)
                                .group_by(base.c.hub)).all())
        repos, ups, first, last = s.execute(
            select(func.count(func.distinct(base.c.id)), func.count(func.distinct(base.c.author)),
                   func.min(base.c.created_at), func.max(base.c.created_at)).where(live)).one()
    return Coverage(entries, found, sum(by_state.values()), by_state, by_hub, repos or 0, ups or 0, first, last)


def bank_entries(db: Database, bank_id: int, *, q: str | None = None, found_only: bool = False,
                 limit: int | None = None, offset: int | None = None) -> Page[EntryRow]:
    """Entries of a bank in id order; `q` filters by a part of the (normalised) name."""
    limit, offset = check_window(limit, offset)
    conds = [Entry.bank_id == bank_id]
    if q:
        if len(q) > 200:
            raise InvalidInput("a name filter has at most 200 characters")
        norm = normalise_name(q).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conds.append(Entry.name_norm.like(f"%{norm}%", escape="\\"))
    if found_only:
        conds.append(Entry.id.in_(select(Match.entry_id).where(Match.state.in_(LIVE))))
    with db.session() as s:
        total = s.scalar(select(func.count()).select_from(Entry).where(*conds)) or 0
        rows = [EntryRow(e.id, e.name, e.url, e.civitai_model_id, e.civitai_version_id, e.kind)
                for e in s.scalars(select(Entry).where(*conds).order_by(Entry.id).limit(limit).offset(offset))]
        if rows:
            counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
            for eid, state, n in s.execute(
                select(Match.entry_id, Match.state, func.count()).where(Match.entry_id.in_([r.id for r in rows]))
                .group_by(Match.entry_id, Match.state)
            ):
                counts[eid][0] += n
                if state in LIVE:
                    counts[eid][1] += n
            for r in rows:
                r.matches, r.live = counts.get(r.id, (0, 0))
    return Page(rows, total, limit, offset)


def bank_imports(db: Database, bank_id: int, *, limit: int = 50) -> list[ImportRunView]:
    with db.session() as s:
        return [ImportRunView(r.id, r.filename, r.fmt, r.user, r.at, dict(r.counts or {}), list(r.rejected or []))
                for r in s.scalars(select(ImportRun).where(ImportRun.bank_id == bank_id)
                                   .order_by(ImportRun.id.desc()).limit(limit))]


def get_bank(db: Database, bank_id: int) -> BankDetail:
    with db.session() as s:
        b = s.get(Bank, bank_id)
        if b is None:
            raise NotFound(f"no bank with id {bank_id}")
        head = (b.id, b.name, b.description, b.source, b.created_at)
    return BankDetail(*head, bank_coverage(db, bank_id), bank_imports(db, bank_id))
