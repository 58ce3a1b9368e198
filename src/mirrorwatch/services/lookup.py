"""Lookup: one input, auto-detected (hash of any form, Civitai URL or id, or a name), to entries
with all their hash forms and their known mirrors.

Name search on SQLite uses the FTS5 index over normalised names; query terms missing from the
index vocabulary are corrected to their nearest indexed terms (rapidfuzz) so typos still find the
entry; candidates are re-ranked by rapidfuzz similarity of the whole name."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import field
from datetime import datetime
from typing import Annotated

from pydantic import PlainSerializer
from sqlalchemy import select, text

from mirrorwatch.bank.search import search_names
from mirrorwatch.bank.urls import looks_like_url, parse_civitai_url
from mirrorwatch.errors import InvalidHash, InvalidInput
from mirrorwatch.hashing.forms import FORMS, candidate_forms, normalise_hash, with_unstored
from mirrorwatch.hubs.registry import web_url as hub_web_url
from mirrorwatch.services.serial import Utc, read_model
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import Entry
from mirrorwatch.text.names import normalise_name

#: Signal forms shown as hashes (a live view of the registry, in its order); other signals are not hashes.
HASH_FORMS_SHOWN = FORMS.keys()


@read_model
class Mirror:
    """A known mirror of an entry: the matched hub file, its repo and the match's state."""
    match_id: int
    hub: str
    repo_type: str
    repo_id: str
    path: str
    url: str | None
    author: str | None
    repo_status: str
    file_status: str
    tier: int
    score: float
    state: str
    first_seen: Utc
    last_seen: Utc


#: A lookup result's rank score, written with one decimal.
Score = Annotated[float, PlainSerializer(lambda x: round(x, 1), return_type=float, when_used="json")]


@read_model
class EntryView:
    """An entry as a lookup answers it: every hash form, other signals, known mirrors, why it matched."""
    id: int
    bank: str
    name: str
    url: str | None
    civitai_model_id: int | None
    civitai_version_id: int | None
    kind: str | None
    notes: str | None
    hashes: dict[str, list[str]]
    signals: dict[str, list[str]] = field(default_factory=dict)  # non-hash signatures (trigger words, ...)
    mirrors: list[Mirror] = field(default_factory=list)
    why: str = ""
    score: Score = 100.0


@read_model
class LookupResult:
    """What a lookup answers (the API's and `mirrorwatch lookup --json`'s JSON: services.serial.to_json)."""
    query: str
    kind: str  # hash / url / name
    detail: str
    results: list[EntryView]


def classify_query(query: str) -> str:
    q = query.strip()
    if not q:
        raise InvalidInput("empty query")
    if looks_like_url(q):
        return "url"
    try:
        normalise_hash(q)
        return "hash"
    except InvalidHash:
        pass
    return "name"


NameSearch = Callable[[Database, str, int], tuple[list[int], dict[int, float]]]


def lookup(db: Database, query: str, *, limit: int = 20, bank: str | None = None,
           name_search: NameSearch | None = None) -> LookupResult:
    """Find entries for one query of any kind; raise InvalidInput for unusable input.

    `name_search` replaces bank.search.search_names for name queries (the web app runs the ranking
    in a separate, lower-priority process so it never competes with hash lookups: web/pools.py)."""
    query = query.strip()
    if len(query) > 500:
        raise InvalidInput("query too long (500 characters at most)")
    kind = classify_query(query)
    if kind == "url":
        ref = parse_civitai_url(query)
        ids, detail = _by_civitai(db, ref.model_id, ref.version_id)
        why = {i: detail for i in ids}
        scores = {i: 100.0 for i in ids}
    elif kind == "hash":
        value = normalise_hash(query)
        forms = candidate_forms(value)
        detail = f"{len(value)} hex: " + " or ".join(forms)
        if not db.is_sqlite:  # the hits and their entries' reads in one pipelined round trip
            ids, why, reads = _hash_pipelined(db, value, forms, limit * 3)
            views = _assemble(ids[: limit * 3], *reads, bank=bank)
            return _finish(query, kind, detail, views, why, {i: 100.0 for i in ids}, limit)
        ids, why = _by_hash(db, value, forms)
        scores = {i: 100.0 for i in ids}
    else:
        ids, scores = (name_search or _search_names)(db, query, limit * 3)
        why = {i: f"name ({scores[i]:.0f})" for i in ids}
        detail = f"name search for {normalise_name(query)!r}"
    views = entry_views(db, ids[: limit * 3], bank=bank)
    return _finish(query, kind, detail, views, why, scores, limit)


def _finish(query: str, kind: str, detail: str, views: list[EntryView], why: dict[int, str],
            scores: dict[int, float], limit: int) -> LookupResult:
    for v in views:
        v.why = why.get(v.id, "")
        v.score = scores.get(v.id, 0.0)
    views.sort(key=lambda v: -v.score)
    return LookupResult(query=query, kind=kind, detail=detail, results=views[:limit])


def _search_names(db: Database, query: str, limit: int) -> tuple[list[int], dict[int, float]]:
    return search_names(db, query, limit=limit)


def _hash_hits_sql(value: str, forms: tuple[str, ...]) -> tuple[str, dict[str, object], dict[str, str]]:
    """The statement finding a hash value's entries (its text depends only on the forms), its
    parameters, and the unstored forms answered by a prefix of their source form."""
    marks = ", ".join(f":f{i}" for i in range(len(forms)))
    params: dict[str, object] = {"v": value, **{f"f{i}": f for i, f in enumerate(forms)}}
    sql = f"SELECT entry_id, form FROM entry_signal WHERE value = :v AND form IN ({marks})"
    # Derived forms that are not stored (AutoV2, the first 10 hex of the SHA256): an index range on the source.
    prefix_of = {FORMS[f].derived_from: f for f in forms if FORMS[f].derived_from and not FORMS[f].stored_when_derived}
    for i, source in enumerate(prefix_of):
        sql += f" UNION ALL SELECT entry_id, form FROM entry_signal WHERE value >= :v AND value < :hi AND form = :s{i}"
        params[f"s{i}"] = source
        params["hi"] = value + "g"
    return f"SELECT entry_id, form FROM ({sql}) AS hits ORDER BY entry_id LIMIT 1000", params, prefix_of


def _by_hash(db: Database, value: str, forms: tuple[str, ...]) -> tuple[list[int], dict[int, str]]:
    sql, params, prefix_of = _hash_hits_sql(value, forms)
    with db.reader() as conn:
        rows = conn.execute(text(sql), params).all()
    return _hash_why(rows, prefix_of)


def _hash_why(rows, prefix_of: dict[str, str]) -> tuple[list[int], dict[int, str]]:
    why: dict[int, str] = {}
    for eid, form in rows:
        form = prefix_of.get(form, form)
        why[eid] = f"{why[eid]}, {form}" if eid in why else form
    return list(why), why


def _by_civitai(db: Database, model_id: int | None, version_id: int | None) -> tuple[list[int], str]:
    with db.session() as s:
        if version_id is not None:
            ids = list(s.scalars(select(Entry.id).where(Entry.civitai_version_id == version_id).limit(1000)))
            if ids:
                return ids, f"Civitai version {version_id}"
        if model_id is not None:
            ids = list(s.scalars(select(Entry.id).where(Entry.civitai_model_id == model_id).limit(1000)))
            return ids, f"Civitai model {model_id}"
    return [], f"Civitai version {version_id}"


_ENTRY_SQL = (
    "SELECT e.id, b.name, e.name, e.url, e.civitai_model_id, e.civitai_version_id, e.kind, e.notes "
    "FROM entry e JOIN bank b ON b.id = e.bank_id WHERE e.id IN ({ids})"
)
_SIGNAL_SQL = "SELECT entry_id, form, value FROM entry_signal WHERE entry_id IN ({ids}) ORDER BY id"
_MIRROR_SQL = (
    "SELECT m.id, m.entry_id, r.hub, r.repo_type, r.repo_id, f.path, r.author, r.status, f.status, m.tier, m.score, "
    "m.state, f.first_seen, f.last_seen, f.member FROM match m JOIN hub_file f ON f.id = m.hub_file_id "
    "JOIN hub_repo r ON r.id = f.repo_pk WHERE m.entry_id IN ({ids}) ORDER BY m.tier, m.id"
)


def _dt(value) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def entry_views(db: Database, ids: list[int], *, bank: str | None = None) -> list[EntryView]:
    """Full views (hash forms, signals, mirrors) of the given entries, in the given order.

    The read path of every lookup: three plain SQL statements on one connection (the ORM's
    per-row overhead was most of a lookup's cost); on PostgreSQL prepared and pipelined
    (_read_pipelined)."""
    ids = [int(i) for i in ids]
    if not ids:
        return []
    if db.is_sqlite:
        reads = _read_sqlite(db, ids, bank)
    else:
        reads = _read_pipelined(db, _PG_READS, {"ids": ids})
    return _assemble(ids, *reads, bank=bank)


def _assemble(ids: list[int], entry_rows, sig_rows, mirror_rows, *, bank: str | None) -> list[EntryView]:
    """EntryViews, in the order of ids, from the rows of the three entry reads."""
    rows = {r[0]: r for r in entry_rows}
    if bank:
        rows = {k: r for k, r in rows.items() if r[1] == bank}
    sigs: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    mirrors: dict[int, list[Mirror]] = defaultdict(list)
    for eid, form, value in sig_rows:
        sigs[eid][form].append(value)
    for (mid, eid, hub, rtype, repo_id, path, author, rstatus, fstatus, tier, score, state, first, last,
         member) in mirror_rows:
        mirrors[eid].append(Mirror(
            match_id=mid, hub=hub, repo_type=rtype, repo_id=repo_id, path=path,
            url=hub_file_url(hub, repo_id, archive_of(path, member) or path, rtype),
            author=author, repo_status=rstatus, file_status=fstatus, tier=tier, score=score, state=state,
            first_seen=_dt(first), last_seen=_dt(last),
        ))
    views = []
    for eid in ids:
        if eid not in rows:
            continue
        _id, bname, name, url, model_id, version_id, kind, notes = rows[eid]
        forms = with_unstored(sigs.get(eid, {}))
        views.append(
            EntryView(
                id=eid, bank=bname, name=name, url=url, civitai_model_id=model_id, civitai_version_id=version_id,
                kind=kind, notes=notes,
                hashes={k: list(v) for k, v in forms.items() if k in HASH_FORMS_SHOWN},
                signals={k: list(v) for k, v in forms.items() if k not in HASH_FORMS_SHOWN},
                mirrors=mirrors.get(eid, []),
            )
        )
    return views


def _read_sqlite(db: Database, ids: list[int], bank: str | None) -> tuple[list, list, list]:
    marks = ", ".join(f":i{n}" for n in range(len(ids)))
    params = {f"i{n}": v for n, v in enumerate(ids)}
    with db.reader() as conn:
        rows = conn.execute(text(_ENTRY_SQL.format(ids=marks)), params).all()
        if not any(bank is None or r[1] == bank for r in rows):
            return rows, [], []
        return (rows, conn.execute(text(_SIGNAL_SQL.format(ids=marks)), params).all(),
                conn.execute(text(_MIRROR_SQL.format(ids=marks)), params).all())


# PostgreSQL: the same three statements with one array parameter, so their text never changes (psycopg
# prepares a statement it has run prepare_threshold (5) times on a connection: later runs skip parsing and
# planning), sent in one pipeline (one round trip to the server for all three).
_PG_IDS = "SELECT unnest(CAST(%(ids)s AS integer[]))"
_PG_READS = tuple(sql.format(ids=_PG_IDS) for sql in (_ENTRY_SQL, _SIGNAL_SQL, _MIRROR_SQL))


def _read_pipelined(db: Database, statements: tuple[str, ...], params: dict[str, object]) -> tuple[list, ...]:
    """Run the statements (psycopg's %(name)s parameters) in one pipeline: one round trip."""
    with db.reader() as conn:
        raw = conn.connection.driver_connection
        with raw.pipeline():
            cursors = [raw.cursor() for _ in statements]
            for cur, sql in zip(cursors, statements, strict=True):
                cur.execute(sql, params)
        out = tuple(cur.fetchall() for cur in cursors)
        for cur in cursors:
            cur.close()
    return out


def _hash_pipelined(db: Database, value: str, forms: tuple[str, ...],
                    n: int) -> tuple[list[int], dict[int, str], tuple[list, list, list]]:
    """PostgreSQL: a hash's hits and the three reads of its first n entries in one round trip (the
    entry reads take their ids from the hits statement itself)."""
    sql, params, prefix_of = _hash_hits_sql(value, forms)
    sql = re.sub(r":(\w+)", r"%(\1)s", sql)
    ids_sql = f"SELECT DISTINCT entry_id FROM ({sql}) AS h ORDER BY entry_id LIMIT %(n)s"
    hits, *reads = _read_pipelined(db, (sql, *(t.format(ids=ids_sql) for t in (_ENTRY_SQL, _SIGNAL_SQL, _MIRROR_SQL))),
                                   {**params, "n": n})
    ids, why = _hash_why(hits, prefix_of)
    return ids, why, tuple(reads)


def archive_of(path: str, member: str | None) -> str | None:
    """The archive's path of a member row (its path is "<archive>!<member>"), None for a plain file."""
    if not member or not path.endswith("!" + member):
        return None
    return path[: len(path) - len(member) - 1]


def hub_file_url(hub: str, repo_id: str, path: str, repo_type: str | None = None) -> str | None:
    return hub_web_url(hub, repo_id, path, repo_type)
