"""Lookup: one input, auto-detected (hash of any form, Civitai URL or id, or a name), to entries
with all their hash forms and their known mirrors.

Name search on SQLite uses the FTS5 index over normalised names; query terms missing from the
index vocabulary are corrected to their nearest indexed terms (rapidfuzz) so typos still find the
entry; candidates are re-ranked by rapidfuzz similarity of the whole name."""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rapidfuzz import fuzz, process
from sqlalchemy import or_, select, text

from mirrorwatch.bank.names import normalise_name
from mirrorwatch.bank.urls import looks_like_url, parse_civitai_url
from mirrorwatch.config import hub_web_url
from mirrorwatch.errors import InvalidHash, InvalidInput
from mirrorwatch.hashing.forms import candidate_forms, normalise_hash
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import Bank, Entry, EntrySignal, HubFile, HubRepo, Match

HASH_FORMS_SHOWN = ("sha256", "autov1", "autov2", "autov3", "autov3_full", "crc32", "blake3")
NAME_MIN_SCORE = 75.0


@dataclass
class Mirror:
    match_id: int
    hub: str
    repo_id: str
    path: str
    url: str | None
    author: str | None
    repo_status: str
    file_status: str
    tier: int
    score: float
    state: str
    first_seen: datetime
    last_seen: datetime

    def to_dict(self) -> dict[str, Any]:
        d = self.__dict__.copy()
        d["first_seen"] = self.first_seen.isoformat() + "Z"
        d["last_seen"] = self.last_seen.isoformat() + "Z"
        return d


@dataclass
class EntryView:
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
    score: float = 100.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "bank": self.bank, "name": self.name, "url": self.url,
            "civitai_model_id": self.civitai_model_id, "civitai_version_id": self.civitai_version_id,
            "kind": self.kind, "notes": self.notes, "hashes": self.hashes, "signals": self.signals,
            "mirrors": [m.to_dict() for m in self.mirrors], "why": self.why, "score": round(self.score, 1),
        }


@dataclass
class LookupResult:
    query: str
    kind: str  # hash / url / name
    detail: str
    results: list[EntryView]

    def to_dict(self) -> dict[str, Any]:
        return {"query": self.query, "kind": self.kind, "detail": self.detail,
                "results": [r.to_dict() for r in self.results]}


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


def lookup(db: Database, query: str, *, limit: int = 20, bank: str | None = None) -> LookupResult:
    """Find entries for one query of any kind; raise InvalidInput for unusable input."""
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
        ids, why = _by_hash(db, value, forms)
        detail = f"{len(value)} hex: " + " or ".join(forms)
        scores = {i: 100.0 for i in ids}
    else:
        ids, scores = search_names(db, query, limit=limit * 3)
        why = {i: f"name ({scores[i]:.0f})" for i in ids}
        detail = f"name search for {normalise_name(query)!r}"
    views = entry_views(db, ids[: limit * 3], bank=bank)
    for v in views:
        v.why = why.get(v.id, "")
        v.score = scores.get(v.id, 0.0)
    views.sort(key=lambda v: -v.score)
    return LookupResult(query=query, kind=kind, detail=detail, results=views[:limit])


def _by_hash(db: Database, value: str, forms: tuple[str, ...]) -> tuple[list[int], dict[int, str]]:
    with db.session() as s:
        rows = s.execute(
            select(EntrySignal.entry_id, EntrySignal.form)
            .where(EntrySignal.value == value, EntrySignal.form.in_(forms))
            .order_by(EntrySignal.entry_id)
            .limit(1000)
        ).all()
        if "autov2" in forms:  # AutoV2 is the first 10 hex of the SHA256: an index range on the SHA256
            rows += s.execute(
                select(EntrySignal.entry_id, EntrySignal.form)
                .where(EntrySignal.value >= value, EntrySignal.value < value + "g", EntrySignal.form == "sha256")
                .order_by(EntrySignal.entry_id)
                .limit(1000)
            ).all()
    why: dict[int, str] = {}
    for eid, form in rows:
        form = "autov2" if form == "sha256" and len(value) == 10 else form
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


class _Vocabulary:
    """Indexed terms of the name index, cached per database and refreshed when entries change."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[tuple[int, int], list[str]]] = {}

    def terms(self, db: Database) -> list[str]:
        with db.engine.connect() as conn:
            stamp = tuple(conn.execute(text(
                "SELECT (SELECT coalesce(max(id), 0) FROM entry), (SELECT coalesce(max(id), 0) FROM import_run)"
            )).one())
        with self._lock:
            hit = self._cache.get(db.url)
            if hit and hit[0] == stamp:
                return hit[1]
        with db.engine.connect() as conn:
            terms = [r[0] for r in conn.execute(text("SELECT term FROM entry_fts_vocab"))]
        with self._lock:
            self._cache[db.url] = (stamp, terms)
        return terms


VOCABULARY = _Vocabulary()


def _fts_quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def search_names(db: Database, query: str, *, limit: int = 50) -> tuple[list[int], dict[int, float]]:
    """Entry ids ranked by name similarity (case-, accent-, punctuation-insensitive, typo-tolerant)."""
    qn = normalise_name(query)
    if not qn:
        raise InvalidInput("the query has no letters or digits to search for")
    tokens = qn.split()[:12]
    candidates: dict[int, str] = {}
    if db.has_fts():
        with db.engine.connect() as conn:
            candidates = _fts_candidates(db, conn, tokens)
    else:  # other databases: substring candidates per token
        with db.session() as s:
            conds = [Entry.name_norm.like(f"%{tok}%") for tok in tokens if len(tok) >= 2]
            if conds:
                rows = s.execute(select(Entry.id, Entry.name_norm).where(or_(*conds)).limit(2000))
                candidates = {eid: norm for eid, norm in rows}
    scored = []
    for eid, norm in candidates.items():
        score = name_score(tokens, qn, norm)
        if score >= NAME_MIN_SCORE:
            scored.append((score, eid))
    scored.sort(key=lambda t: (-t[0], t[1]))
    top = scored[:limit]
    return [eid for _, eid in top], {eid: float(score) for score, eid in top}


def _fts_candidates(db: Database, conn, tokens: list[str]) -> dict[int, str]:
    """Candidate entries from the FTS5 index. Each query word stands for itself or, when the index
    does not hold it, its nearest indexed words. Words that occur in many names ("lora", "v2") are
    left out of the candidate query when rarer words are there; they still count in the ranking."""
    variants: dict[str, set[str]] = {}
    docs: dict[str, int] = {}
    placeholders = ", ".join(f":t{i}" for i in range(len(tokens)))
    for term, doc in conn.execute(
        text(f"SELECT term, doc FROM entry_fts_vocab WHERE term IN ({placeholders})"),
        {f"t{i}": t for i, t in enumerate(tokens)},
    ):
        docs[term] = doc
    missing = [t for t in tokens if t not in docs]
    if missing:
        vocab = VOCABULARY.terms(db)
        for tok in missing:
            near = [t for t, _s, _i in process.extract(tok, vocab, scorer=fuzz.ratio, limit=4, score_cutoff=70)]
            variants[tok] = set(near)
        near_terms = sorted({t for v in variants.values() for t in v})
        if near_terms:
            ph = ", ".join(f":n{i}" for i in range(len(near_terms)))
            for term, doc in conn.execute(text(f"SELECT term, doc FROM entry_fts_vocab WHERE term IN ({ph})"),
                                          {f"n{i}": t for i, t in enumerate(near_terms)}):
                docs[term] = doc
    for tok in tokens:
        if tok in docs:
            variants[tok] = {tok}
    total = conn.execute(text("SELECT coalesce(max(id), 0) FROM entry")).scalar() or 0
    common = max(500, total // 100)

    def weight(tok: str) -> int:
        return max((docs.get(t, 0) for t in variants.get(tok, ())), default=0)

    usable = [tok for tok in tokens if variants.get(tok)]
    if not usable:
        return {}
    rare = [tok for tok in usable if weight(tok) <= common]
    if rare:
        match = " OR ".join(sorted({_fts_quote(t) for tok in rare for t in variants[tok]}))
    else:  # only common words: every one of them must be in the name
        match = " AND ".join("(" + " OR ".join(_fts_quote(t) for t in sorted(variants[tok])) + ")" for tok in usable)
    rows = conn.execute(
        text("SELECT e.id, e.name_norm FROM entry_fts JOIN entry e ON e.id = entry_fts.rowid "
             "WHERE entry_fts MATCH :m LIMIT 2000"),
        {"m": match},
    )
    return {eid: norm for eid, norm in rows}


def name_score(q_tokens: list[str], qn: str, norm: str) -> float:
    """How well a name covers the query: each query token's best match among the name's tokens
    (and adjacent token pairs, for "janeexample"), weighted by token length, plus a little of the
    whole-string similarity so exact names rank first. 0..100."""
    words = norm.split()
    if not words or not q_tokens:
        return 0.0
    words += [a + b for a, b in zip(words, words[1:], strict=False)]
    total = sum(len(t) for t in q_tokens)
    coverage = sum(len(t) * max(fuzz.ratio(t, w) for w in words) for t in q_tokens) / total
    return 0.85 * coverage + 0.15 * fuzz.ratio(qn, norm)


def entry_views(db: Database, ids: list[int], *, bank: str | None = None) -> list[EntryView]:
    """Full views (hash forms, signals, mirrors) of the given entries, in the given order."""
    if not ids:
        return []
    with db.session() as s:
        q = select(Entry, Bank.name).join(Bank, Bank.id == Entry.bank_id).where(Entry.id.in_(ids))
        if bank:
            q = q.where(Bank.name == bank)
        rows = {e.id: (e, bname) for e, bname in s.execute(q)}
        sigs: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        for eid, form, value in s.execute(
            select(EntrySignal.entry_id, EntrySignal.form, EntrySignal.value)
            .where(EntrySignal.entry_id.in_(list(rows)))
            .order_by(EntrySignal.id)
        ):
            sigs[eid][form].append(value)
        mirrors: dict[int, list[Mirror]] = defaultdict(list)
        for m, f, r in s.execute(
            select(Match, HubFile, HubRepo)
            .join(HubFile, HubFile.id == Match.hub_file_id)
            .join(HubRepo, HubRepo.id == HubFile.repo_pk)
            .where(Match.entry_id.in_(list(rows)))
            .order_by(Match.tier, Match.id)
        ):
            mirrors[m.entry_id].append(mirror_view(m, f, r))
    views = []
    for eid in ids:
        if eid not in rows:
            continue
        e, bname = rows[eid]
        forms = sigs.get(eid, {})
        if "sha256" in forms and "autov2" not in forms:
            forms["autov2"] = [v[:10] for v in forms["sha256"]]
        views.append(
            EntryView(
                id=e.id, bank=bname, name=e.name, url=e.url, civitai_model_id=e.civitai_model_id,
                civitai_version_id=e.civitai_version_id, kind=e.kind, notes=e.notes,
                hashes={k: list(v) for k, v in forms.items() if k in HASH_FORMS_SHOWN},
                signals={k: list(v) for k, v in forms.items() if k not in HASH_FORMS_SHOWN},
                mirrors=mirrors.get(eid, []),
            )
        )
    return views


def hub_file_url(hub: str, repo_id: str, path: str) -> str | None:
    return hub_web_url(hub, repo_id, path)


def mirror_view(m: Match, f: HubFile, r: HubRepo) -> Mirror:
    return Mirror(
        match_id=m.id, hub=r.hub, repo_id=r.repo_id, path=f.path, url=hub_file_url(r.hub, r.repo_id, f.path),
        author=r.author, repo_status=r.status, file_status=f.status, tier=m.tier, score=m.score, state=m.state,
        first_seen=f.first_seen, last_seen=f.last_seen,
    )
