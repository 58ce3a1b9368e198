"""Reverse look-up: which swept hub files have this hash, whether or not it is banked.

Answered from the sweep's own file index: a file's SHA256 is the indexed ``hub_file.sha256``
column (AutoV2, never stored, is an index range on it), every other form it has is a
``file_signal`` row under the form's registry name (filled when a sweep stores the file, and by
migration 0005 for files swept before). A bare value is every form its length may be
(:func:`~mirrorwatch.hashing.forms.candidate_forms`); a named form (``?sha256=``) is only that form.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import text

from mirrorwatch.errors import InvalidInput
from mirrorwatch.hashing.forms import FORMS, candidate_forms, normalise_hash
from mirrorwatch.hubs.registry import web_url as hub_web_url
from mirrorwatch.services.lookup import _by_hash, archive_of
from mirrorwatch.services.serial import Utc, read_model
from mirrorwatch.store.db import Database

#: Files listed at most per look-up (a hash carried by more files than this is reported as truncated).
MAX_FILES = 500


@read_model
class EntryRef:
    """A banked entry: one the hash itself names, or one a file was matched to."""
    id: int
    bank: str
    name: str
    why: str


@read_model
class FileMatchRef:
    """A recorded match of a found file with a banked entry."""
    match_id: int
    entry_id: int
    entry_name: str
    bank: str
    tier: int
    state: str


@read_model
class FileHit:
    """One swept hub file, or archive member (then ``path`` is the archive's, ``member`` its path
    inside it, ``url`` the archive's), carrying the hash."""
    hub_file_id: int
    hub: str
    repo_type: str
    repo_id: str
    repo_pk: int
    path: str
    member: str | None
    size: int | None
    status: str
    repo_status: str
    first_seen: Utc
    last_seen: Utc
    url: str | None
    forms: list[str]
    matches: list[FileMatchRef]


@read_model
class WhereResult:
    query: str
    value: str
    forms: list[str]
    files: list[FileHit]
    truncated: bool
    banked: list[EntryRef]


def _dt(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def parse_query(value: str, form: str | None = None) -> tuple[str, tuple[str, ...]]:
    """The normalised value and the forms to try; InvalidInput/InvalidHash for bad input."""
    if len(value) > 200:
        raise InvalidInput("hash too long (200 characters at most)")
    if form is None:
        normal = normalise_hash(value)
        return normal, candidate_forms(normal)
    hash_form = FORMS.get(form)
    if hash_form is None:
        raise InvalidInput(f"unknown hash form {form!r} (known: {', '.join(FORMS)})")
    return hash_form.normalise(value), (form,)


def where(db: Database, value: str, *, form: str | None = None, limit: int = MAX_FILES) -> WhereResult:
    """Swept files carrying ``value`` (any form it may be, or only ``form``), newest first."""
    normal, forms = parse_query(value.strip(), form)
    limit = max(1, min(limit, MAX_FILES))
    parts: list[str] = []
    params: dict[str, Any] = {"v": normal}
    signal_forms = []
    for i, name in enumerate(forms):
        f = FORMS[name]
        if name == "sha256":
            parts.append("SELECT id AS fid, 'sha256' AS form FROM hub_file WHERE sha256 = :v")
        elif f.derived_from == "sha256" and not f.stored_when_derived:
            # AutoV2: never stored; an index range on the SHA256 column
            parts.append(f"SELECT id AS fid, '{name}' AS form FROM hub_file WHERE sha256 >= :v AND sha256 < :hi")
            params["hi"] = normal + "g"
        else:
            signal_forms.append(name)
            params[f"f{i}"] = name
    if signal_forms:
        marks = ", ".join(f":f{forms.index(n)}" for n in signal_forms)
        parts.append(f"SELECT hub_file_id AS fid, form FROM file_signal WHERE value = :v AND form IN ({marks})")
    sql = " UNION ALL ".join(parts)
    found: dict[int, list[str]] = defaultdict(list)
    with db.engine.connect() as conn:
        for fid, f in conn.execute(text(f"SELECT fid, form FROM ({sql}) AS hits LIMIT {MAX_FILES * 4 + 1}"), params):
            if f not in found[fid]:
                found[fid].append(f)
        files = _file_hits(conn, found)
    files.sort(key=lambda h: (h.last_seen, h.hub_file_id), reverse=True)
    entry_ids, why = _by_hash(db, normal, forms)
    banked = _entry_refs(db, entry_ids[:100], why)
    return WhereResult(query=value, value=normal, forms=list(forms), files=files[:limit],
                       truncated=len(files) > limit, banked=banked)


_FILE_SQL = (
    "SELECT f.id, r.hub, r.repo_type, r.repo_id, r.id, f.path, f.size, f.status, r.status, f.first_seen, "
    "f.last_seen, f.member "
    "FROM hub_file f JOIN hub_repo r ON r.id = f.repo_pk WHERE f.id IN ({ids})"
)
_MATCH_SQL = (
    "SELECT m.id, m.hub_file_id, e.id, e.name, b.name, m.tier, m.state FROM match m "
    "JOIN entry e ON e.id = m.entry_id JOIN bank b ON b.id = e.bank_id WHERE m.hub_file_id IN ({ids}) "
    "ORDER BY m.tier, m.id"
)


def _file_hits(conn: Any, found: dict[int, list[str]]) -> list[FileHit]:
    ids = list(found)[: MAX_FILES + 1]
    if not ids:
        return []
    marks = ", ".join(f":i{n}" for n in range(len(ids)))
    params = {f"i{n}": v for n, v in enumerate(ids)}
    matches: dict[int, list[FileMatchRef]] = defaultdict(list)
    for mid, fid, eid, ename, bank, tier, state in conn.execute(text(_MATCH_SQL.format(ids=marks)), params):
        matches[fid].append(FileMatchRef(match_id=mid, entry_id=eid, entry_name=ename, bank=bank, tier=tier,
                                         state=state))
    out = []
    for fid, hub, rtype, repo_id, repo_pk, path, size, status, rstatus, first, last, member in conn.execute(
        text(_FILE_SQL.format(ids=marks)), params
    ):
        path = archive_of(path, member) or path  # an archive member: its archive's path, and the member
        out.append(FileHit(
            hub_file_id=fid, hub=hub, repo_type=rtype, repo_id=repo_id, repo_pk=repo_pk, path=path,
            member=member, size=size, status=status, repo_status=rstatus, first_seen=_dt(first), last_seen=_dt(last),
            url=hub_web_url(hub, repo_id, path, rtype), forms=found[fid], matches=matches.get(fid, []),
        ))
    return out


def _entry_refs(db: Database, ids: list[int], why: dict[int, str]) -> list[EntryRef]:
    if not ids:
        return []
    marks = ", ".join(f":i{n}" for n in range(len(ids)))
    params = {f"i{n}": v for n, v in enumerate(ids)}
    sql = f"SELECT e.id, b.name, e.name FROM entry e JOIN bank b ON b.id = e.bank_id WHERE e.id IN ({marks})"
    with db.engine.connect() as conn:
        rows = {eid: (bank, name) for eid, bank, name in conn.execute(text(sql), params)}
    return [EntryRef(id=i, bank=rows[i][0], name=rows[i][1], why=why.get(i, "")) for i in ids if i in rows]
