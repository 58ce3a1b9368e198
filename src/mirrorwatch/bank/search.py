"""Name search over a bank: case-, accent- and punctuation-insensitive, typo-tolerant, ranked.

On PostgreSQL with pg_trgm (migration 0008) a trigram GIN index gives them instead (word similarity:
typos, partial names; _trgm_candidates), without it substring scans. On SQLite the FTS5 index over
normalised names gives candidates: each query word stands for itself
or, when the index does not hold it, its nearest indexed words (rapidfuzz over the index
vocabulary); words found in many names are left out of the candidate query when rarer words are
there. Candidates are ranked by how well each name covers the query (`name_score`).

Every query has a bounded cost, whatever its words (issue 13: "lora" alone took 0.65 s on a
300,000-entry bank, ranking every name that holds it):
  * at most MAX_TOKENS query words, and at most FULL_VOCAB_SCANS of them corrected against the whole
    vocabulary (the others only within their first-letter bucket);
  * the rare-word candidate query is ranked by FTS5 only over at most RANK_BUDGET indexed names: the
    most frequent of the rare words are left out until the sum of their name counts fits;
  * a query made only of common words ("lora", "model person") skips FTS ranking altogether: the
    newest CANDIDATES names holding all those words (rowid order, which FTS5 streams and stops);
  * at most CANDIDATES candidates reach the Python ranking, and at most 60 the fine score."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import closing

from rapidfuzz import fuzz, process
from sqlalchemy import or_, select, text

from mirrorwatch.errors import InvalidInput
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import Entry
from mirrorwatch.text.names import normalise_name

NAME_MIN_SCORE = 75.0
MAX_TOKENS = 12
CANDIDATES = 400
RANK_BUDGET = 20_000
FULL_VOCAB_SCANS = 2


class _Vocabulary:
    """Indexed terms of the name index, cached per database and refreshed when entries change,
    bucketed by first letter and length so a typo is looked for among a few thousand terms."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[tuple[int, int], list[str], dict[tuple[str, int], list[str]]]] = {}

    def _load(self, db: Database) -> tuple[list[str], dict[tuple[str, int], list[str]]]:
        with db.engine.connect() as conn:
            stamp = tuple(conn.execute(text(
                "SELECT (SELECT coalesce(max(id), 0) FROM entry), (SELECT coalesce(max(id), 0) FROM import_run)"
            )).one())
        with self._lock:
            hit = self._cache.get(db.url)
            if hit and hit[0] == stamp:
                return hit[1], hit[2]
        with db.engine.connect() as conn:
            terms = [r[0] for r in conn.execute(text("SELECT term FROM entry_fts_vocab"))]
        buckets: dict[tuple[str, int], list[str]] = {}
        for t in terms:
            buckets.setdefault((t[:1], len(t)), []).append(t)
        with self._lock:
            self._cache[db.url] = (stamp, terms, buckets)
        return terms, buckets

    def terms(self, db: Database) -> list[str]:
        return self._load(db)[0]

    def near(self, db: Database, token: str, limit: int = 6, *, whole: bool = True) -> list[str]:
        """Indexed terms within a small edit distance of a token (typos). With whole=False only the
        token's first-letter bucket is searched (bounded cost)."""
        terms, buckets = self._load(db)
        n = len(token)
        cutoff = 30 if n <= 4 else 25  # fuzz.ratio >= 70..75: about one edit in short words, two in long
        pool = [t for d in (-1, 0, 1) for t in buckets.get((token[:1], n + d), ())]
        found = process.extract(token, pool, scorer=fuzz.ratio, limit=limit, score_cutoff=100 - cutoff)
        if not found and whole:  # the typo may be in the first letter: the whole vocabulary
            found = process.extract(token, terms, scorer=fuzz.ratio, limit=limit, score_cutoff=100 - cutoff)
        return [t for t, _s, _i in found]


VOCABULARY = _Vocabulary()


def _fts_quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def search_names(db: Database, query: str, *, limit: int = 50) -> tuple[list[int], dict[int, float]]:
    """Entry ids ranked by name similarity (case-, accent-, punctuation-insensitive, typo-tolerant)."""
    qn = normalise_name(query)
    if not qn:
        raise InvalidInput("the query has no letters or digits to search for")
    tokens = list(dict.fromkeys(qn.split()))[:MAX_TOKENS]
    candidates: dict[int, str] = {}
    if db.has_trgm():  # PostgreSQL: the cheapest tier whose candidates rank at all (_trgm_tiers)
        with closing(_trgm_tiers(db, qn, tokens)) as tiers:  # closed: its connection goes back at once
            for tier in tiers:
                top = _ranked(tier, tokens, qn, limit)
                if top:
                    break
        return [eid for _, eid in top], {eid: float(score) for score, eid in top}
    if db.has_fts():
        with db.engine.connect() as conn:
            candidates = _fts_candidates(db, conn, tokens)
    else:  # other databases (PostgreSQL without pg_trgm): substring candidates per token
        with db.session() as s:
            conds = [Entry.name_norm.like(f"%{tok}%") for tok in tokens if len(tok) >= 2]
            if conds:
                rows = s.execute(select(Entry.id, Entry.name_norm).where(or_(*conds)).limit(CANDIDATES))
                candidates = {eid: norm for eid, norm in rows}
    top = _ranked(candidates, tokens, qn, limit)
    return [eid for _, eid in top], {eid: float(score) for score, eid in top}


def _ranked(candidates: dict[int, str], tokens: list[str], qn: str, limit: int) -> list[tuple[float, int]]:
    """(score, id) of the candidates that cover the query well enough, best first."""
    if len(candidates) > 60:  # a fast first cut in C, then the finer coverage score
        ids = list(candidates)
        best = process.extract(qn, [candidates[i] for i in ids], scorer=fuzz.token_set_ratio, limit=60)
        candidates = {ids[i]: norm for norm, _s, i in best}
    scored = []
    for eid, norm in candidates.items():
        score = name_score(tokens, qn, norm)
        if score >= NAME_MIN_SCORE:
            scored.append((score, eid))
    scored.sort(key=lambda t: (-t[0], t[1]))
    return scored[:limit]


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
        for n, tok in enumerate(missing):
            variants[tok] = set(VOCABULARY.near(db, tok, whole=n < FULL_VOCAB_SCANS))
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
        # rarest terms first, while the names FTS5 must rank stay within the budget (the rarest always)
        terms = sorted({t for tok in rare for t in variants[tok]}, key=lambda t: (docs.get(t, 0), t))
        kept, cost = [], 0
        for t in terms:
            if kept and cost + docs.get(t, 0) > RANK_BUDGET:
                break
            kept.append(t)
            cost += docs.get(t, 0)
        match = " OR ".join(_fts_quote(t) for t in sorted(kept))
        order = "rank"
    else:  # only common words: every one of them must be in the name; the newest such names, unranked
        match = " AND ".join("(" + " OR ".join(_fts_quote(t) for t in sorted(variants[tok])) + ")" for tok in usable)
        order = "entry_fts.rowid DESC"
    rows = conn.execute(
        text("SELECT e.id, e.name_norm FROM entry_fts JOIN entry e ON e.id = entry_fts.rowid "
             f"WHERE entry_fts MATCH :m ORDER BY {order} LIMIT {CANDIDATES}"),
        {"m": match},
    )
    return {eid: norm for eid, norm in rows}


# The trigram candidate queries (PostgreSQL, the GIN index of migration 0008), cheapest first:
#  1. every query word of 3+ characters as a substring of the name (`LIKE '%word%'` AND ...): the
#     index answers an AND of trigrams from its rarest posting lists, in milliseconds on any bank size.
#     Exact names, partial names, words in another order: the FTS path's exact-word candidates.
#  2. when no candidate of tier 1 ranks (NAME_MIN_SCORE), a typo in one word: the names holding all
#     the other words (one bounded AND per word left out), ranked in Python like every candidate set;
#  3. when none of those ranks either (a typo in a one-word query, typos in several words):
#     `q <% name_norm`, some part of the name sharing at least TRGM_THRESHOLD of the query's trigrams
#     (word_similarity). It reads the posting lists of all the query's trigrams, so it costs more on
#     large banks; only the queries the cheaper tiers cannot answer pay it.
# The inner LIMIT bounds what a query of common words costs (every name holding "lora"): its first
# TRGM_SCAN hits, as the FTS path takes the newest names. Word similarity costs about 10 us a row.
TRGM_THRESHOLD = 0.5
TRGM_SCAN = 2000
TRGM_SUBSET_SCAN = 500
_TRGM_FUZZY_SQL = text(
    "SELECT id, name_norm FROM (SELECT id, name_norm FROM entry WHERE :q <% name_norm LIMIT :scan) AS hits "
    "ORDER BY :q <<-> name_norm, id LIMIT :n"
)


def _like_word(word: str) -> str:
    return "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _trgm_tiers(db: Database, qn: str, tokens: list[str]) -> Iterator[dict[int, str]]:
    """Candidate sets from the pg_trgm index, cheapest first (see above); the caller stops at the first
    that ranks. The reads run in autocommit (Database.reader): no ROLLBACK when the caller stops early,
    which would also drop the connection's prepared statements (psycopg clears them on a rollback)."""
    words = [t for t in tokens if len(t) >= 3]
    with db.reader() as conn:
        if words:
            conds = " AND ".join(f"name_norm LIKE :w{i}" for i in range(len(words)))
            yield dict(conn.execute(
                text(f"SELECT id, name_norm FROM (SELECT id, name_norm FROM entry WHERE {conds} LIMIT :scan) "
                     "AS hits ORDER BY length(name_norm), id LIMIT :n"),
                {**{f"w{i}": _like_word(w) for i, w in enumerate(words)}, "scan": TRGM_SCAN, "n": CANDIDATES}).all())
        if len(words) >= 2:  # one word with a typo: the names holding all the others (each set bounded)
            parts = []
            for skip in range(len(words)):
                conds = " AND ".join(f"name_norm LIKE :w{i}" for i in range(len(words)) if i != skip)
                parts.append(f"(SELECT id, name_norm FROM entry WHERE {conds} LIMIT :scan)")
            params = {"scan": TRGM_SUBSET_SCAN, **{f"w{i}": _like_word(w) for i, w in enumerate(words)}}
            yield dict(conn.execute(text(" UNION ALL ".join(parts)), params).all())
        # the threshold of `<%` is a setting: for this pooled connection (only this query uses it)
        conn.exec_driver_sql(f"SET pg_trgm.word_similarity_threshold = {TRGM_THRESHOLD:.2f}")
        yield dict(conn.execute(_TRGM_FUZZY_SQL, {"q": qn, "scan": TRGM_SCAN, "n": CANDIDATES}).all())


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


