"""Name search over a bank: case-, accent- and punctuation-insensitive, typo-tolerant, ranked.

Both databases answer from the name-token index (store/nameindex.py, migration 0016): the query's words
are looked up in the vocabulary of the bank's words (name_vocab), and a word the bank does not hold is
replaced by the words one edit away (name_typo, SymSpell deletion keys) or, when there are none, by
two words it runs together ("janeexample"). Then, cheapest first (issue 11: p99 < 50 ms at 10M names):
  1. the names holding every query word (each one or its typo variants): one posting-list
     intersection (FTS5 on SQLite; the GIN index over the name's words on PostgreSQL) of the words
     in few enough names (AND_DOCS; RANK_BUDGET when one is in at most SELECTIVE). A query made
     only of common words ("lora", "model person") takes the names holding them among the newest
     NEWEST_SCAN entries instead of listing every name that holds "lora";
  2. unless the first gave `limit` names that rank: the names holding one of the rare words, rarest
     first and the names holding more of them first, while the names they hold stay within
     RANK_BUDGET (at most ANY_CANDIDATES read): the answer when a query word is not in the name, and
     the near neighbours of an exact answer ("... v3" beside "... v5"), as the old bm25 ranking gave.
Candidates are ranked in Python by how well each name covers the query (`name_score`): at most
CANDIDATES reach it, and at most 60 the fine score. Every step is a few index seeks, or one posting
list bounded by a LIMIT, whatever the bank's size.

Why not the older paths (measured at 10M names on a loaded 2-core machine): FTS5 bm25 ranking of up
to 20,000 names per query and typo correction by rapidfuzz over the whole FTS vocabulary held in
Python (reloaded whenever an entry was added): SQLite p99 167 ms exact / 229 ms one typo; on
PostgreSQL trigram word similarity against every full name for a typo: p99 322 ms."""

from __future__ import annotations

from contextlib import closing

from rapidfuzz import fuzz, process
from sqlalchemy import or_, select, text

from mirrorwatch.errors import InvalidInput
from mirrorwatch.store import nameindex
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import Entry
from mirrorwatch.text.names import normalise_name

NAME_MIN_SCORE = 75.0
MAX_TOKENS = 12
CANDIDATES = 400
RANK_BUDGET = 20_000
NEWEST_SCAN = 10_000  # a query of common words only: the names holding them among this many newest
SELECTIVE = 4 * CANDIDATES  # a word in at most this many names: the first tier adds only words in <= RANK_BUDGET
AND_DOCS = 150_000  # otherwise it intersects the words in at most this many names (and always the rarest)
AND_MAX = 300_000  # and adds words in at most this many names while the LIMIT cuts what it finds
# The rare-word tier reads ANY_CANDIDATES names, shared out, at least PER_TERM per word: each name read is
# a random row read (about 20 us warm; 400 of them were a third of a PostgreSQL query at 10M names)
ANY_CANDIDATES = 200
PER_TERM = 50
MAX_VARIANTS = 6  # typo variants kept per query word (best fuzz.ratio first)
MIN_SPLIT = 5  # a word at least this long may be two words run together


def search_names(db: Database, query: str, *, limit: int = 50) -> tuple[list[int], dict[int, float]]:
    """Entry ids ranked by name similarity (case-, accent-, punctuation-insensitive, typo-tolerant)."""
    qn = normalise_name(query)
    if not qn:
        raise InvalidInput("the query has no letters or digits to search for")
    tokens = list(dict.fromkeys(qn.split()))[:MAX_TOKENS]
    if nameindex.present(db) and (db.has_fts() or not db.is_sqlite):
        top: list[tuple[float, int]] = []
        pool: dict[int, str] = {}
        with db.reader() as conn, closing(_token_tiers(db, conn, tokens)) as tiers:
            for tier in tiers:  # the next tier adds the near neighbours ("v3" beside "v5") the first lacks
                pool.update(tier)
                top = _ranked(pool, tokens, qn, limit)
                if len(top) >= limit:
                    break
        return [eid for _, eid in top], {eid: float(score) for score, eid in top}
    candidates: dict[int, str] = {}
    with db.session() as s:  # a database without the index: substring candidates per token
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


# -- the query's words against the bank's vocabulary ------------------------------------------------------

def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


def _typo_close(a: str, b: str) -> bool:
    """About one edit in short words, two in long ones (the cutoffs name search always had)."""
    cutoff = 70 if len(a) <= 4 else 75
    return fuzz.ratio(a, b) >= cutoff


def _in(names: list[str], prefix: str) -> tuple[str, dict[str, str]]:
    return ", ".join(f":{prefix}{i}" for i in range(len(names))), {f"{prefix}{i}": n for i, n in enumerate(names)}


class _Words:
    """The query's words resolved against name_vocab: groups of bank words (a word and its typo
    variants, or the two halves of a run-together word), with how many names hold each."""

    def __init__(self, db: Database, conn, tokens: list[str]) -> None:
        self.docs: dict[str, int] = {}
        self.groups: list[set[str]] = []
        self.unknown: list[str] = []
        if db.is_sqlite:
            self.total = conn.execute(text("SELECT coalesce(max(id), 0) FROM entry")).scalar() or 0
            self._common: dict[str, float] | None = None
        else:
            self.total, self._common = nameindex.pg_common_words(conn, db.url)
        # one look-up for the words, the words less one character (a typo that added one) and the halves
        # of words that may be two run together
        probe = set(tokens)
        for tok in tokens:
            if len(tok) >= nameindex.MIN_TYPO_LEN:
                probe |= _deletes(tok)
            if len(tok) >= MIN_SPLIT:
                probe |= {h for i in range(2, len(tok) - 1) for h in (tok[:i], tok[i:])}
        found = self._vocab(conn, sorted(probe))
        missing = [t for t in tokens if t not in found]
        near: dict[str, set[str]] = {t: {d for d in _deletes(t) if d in found} for t in missing if len(t) >= 4}
        keys = sorted({k for t in missing if len(t) >= 3 for k in ({t} | (_deletes(t) if len(t) >= 4 else set()))})
        if keys:  # words one edit away: they share a deletion key with the query word
            by_key: dict[str, set[str]] = {}
            if db.is_sqlite:
                ph, params = _in(keys, "k")
                for key, tok in conn.execute(text(f"SELECT key, token FROM name_typo WHERE key IN ({ph})"), params):
                    by_key.setdefault(key, set()).add(tok)
            else:
                wanted = set(keys)
                for tok, its in conn.execute(text("SELECT token, keys FROM name_vocab WHERE keys && CAST(:k AS text[])"),
                                             {"k": keys}):
                    for key in wanted.intersection(its):
                        by_key.setdefault(key, set()).add(tok)
            for t in missing:
                if len(t) >= 3:
                    near.setdefault(t, set()).update(
                        w for k in ({t} | (_deletes(t) if len(t) >= 4 else set())) for w in by_key.get(k, ()))
            extra = sorted({w for ws in near.values() for w in ws} - set(found))
            if extra:
                found.update(self._vocab(conn, extra))
        for tok in tokens:
            if tok in found:
                self.groups.append({tok})
                continue
            close = sorted((w for w in near.get(tok, ()) if w in found and _typo_close(tok, w)),
                           key=lambda w: (-fuzz.ratio(tok, w), -found[w], w))[:MAX_VARIANTS]
            if close:
                self.groups.append(set(close))
                continue
            halves = [(tok[:i], tok[i:]) for i in range(2, len(tok) - 1)
                      if tok[:i] in found and tok[i:] in found] if len(tok) >= MIN_SPLIT else []
            if halves:  # the split with the longest shorter half: "janeexample" -> "jane" "example"
                a, b = max(halves, key=lambda h: (min(len(h[0]), len(h[1])), h))
                self.groups += [{a}, {b}]
                continue
            self.unknown.append(tok)
        self.docs = found

    def _vocab(self, conn, words: list[str]) -> dict[str, int]:
        ph, params = _in(words, "w")
        rows = conn.execute(text(f"SELECT token, docs FROM name_vocab WHERE token IN ({ph})"), params).all()
        if self._common is None:
            return {w: int(d or 0) for w, d in rows}
        floor = min(self._common.values(), default=0.0) / 2  # a word ANALYZE did not list is rarer
        return {w: int(self.total * self._common.get(w, floor)) for w, _d in rows}

    @property
    def common(self) -> int:
        return max(500, int(self.total) // 100)

    def weight(self, group: set[str]) -> int:
        return max(self.docs.get(w, 0) for w in group)


# -- the candidate queries --------------------------------------------------------------------------------

def _fts_quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def _token_tiers(db: Database, conn, tokens: list[str]):
    """Candidate sets, cheapest first (see the module's docstring); the caller stops at the first
    that ranks. On PostgreSQL the reads run in autocommit (Database.reader)."""
    words = _Words(db, conn, tokens)
    groups = words.groups
    if groups:
        if all(words.weight(g) > words.common for g in groups):
            yield _all_of(db, conn, groups, newest=True)
        else:
            # Only the words in few enough names are intersected; the others ("lora", "v1", "style") are
            # left to the ranking. An FTS5 AND costs about a page of each posting list per candidate it
            # steps over: at 10M names "dridribin AND concept" took 1.3 ms, "... AND lora" 46 ms, and a
            # concept name of eight words 150 ms with every word in the AND, 13 ms with the three rarest.
            # When those names are more than CANDIDATES (the LIMIT cut them), the next rarest word joins the
            # AND and it runs again, up to words in AND_MAX names: the exact name is then in what it reads.
            order = sorted(groups, key=words.weight)
            cap = RANK_BUDGET if words.weight(order[0]) <= SELECTIVE else AND_DOCS
            n = max(1, sum(1 for g in order if words.weight(g) <= cap))
            found = _all_of(db, conn, order[:n], newest=False)
            while len(found) >= CANDIDATES and n < len(order) and words.weight(order[n]) <= AND_MAX:
                n += 1
                found = {**found, **_all_of(db, conn, order[:n], newest=False)}
            yield found
    # the rare words (and words the vocabulary does not hold, in case a name's words were split
    # otherwise than by spaces), rarest first, while the names to read stay within the budget
    terms = sorted({w for g in groups if words.weight(g) <= words.common for w in g} | set(words.unknown),
                   key=lambda w: (words.docs.get(w, 0), w))
    kept, cost = [], 0
    for t in terms:
        if kept and cost + words.docs.get(t, 0) > RANK_BUDGET:
            break
        kept.append(t)
        cost += words.docs.get(t, 0)
    if kept and (len(groups) > 1 or words.unknown):
        yield _any_of(db, conn, kept)


def _all_of(db: Database, conn, groups: list[set[str]], *, newest: bool) -> dict[int, str]:
    """Names holding a word of every group (at most CANDIDATES; with newest, among the NEWEST_SCAN
    newest entries only)."""
    if db.is_sqlite:
        match = " AND ".join("(" + " OR ".join(_fts_quote(t) for t in sorted(g)) + ")" for g in groups)
        if newest:
            sql = ("SELECT rowid FROM entry_fts WHERE entry_fts MATCH :m AND rowid > "
                   "(SELECT coalesce(max(id), 0) FROM entry) - :k ORDER BY rowid DESC LIMIT :n")
        else:
            sql = "SELECT rowid FROM entry_fts WHERE entry_fts MATCH :m LIMIT :n"
        rows = conn.execute(text(f"SELECT e.id, e.name_norm FROM entry e WHERE e.id IN ({sql})"),
                            {"m": match, "k": NEWEST_SCAN, "n": CANDIDATES})
        return dict(rows.all())
    single = sorted(w for g in groups if len(g) == 1 for w in g)
    conds, params = [], {"n": CANDIDATES, "k": NEWEST_SCAN}
    if single:
        conds.append(f"{nameindex.PG_WORDS} @> CAST(:all AS text[])")
        params["all"] = single
    for i, g in enumerate(g for g in groups if len(g) > 1):
        conds.append(f"{nameindex.PG_WORDS} && CAST(:g{i} AS text[])")
        params[f"g{i}"] = sorted(g)
    where = " AND ".join(conds)
    if newest:  # a scan of the newest rows: LIKE on the padded name costs half of building its word array
        likes = []
        for i, g in enumerate(groups):
            alts = []
            for j, w in enumerate(sorted(g)):
                alts.append(f"(' ' || name_norm || ' ') LIKE :l{i}_{j}")
                params[f"l{i}_{j}"] = "% " + w.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + " %"
            likes.append("(" + " OR ".join(alts) + ")")
        sql = (f"SELECT id, name_norm FROM (SELECT id, name_norm FROM entry ORDER BY id DESC LIMIT :k) AS recent "
               f"WHERE {' AND '.join(likes)} LIMIT :n")
    else:
        sql = f"SELECT id, name_norm FROM entry WHERE {where} LIMIT :n"
    return dict(conn.execute(text(sql), params).all())


def _any_of(db: Database, conn, terms: list[str]) -> dict[int, str]:
    """Names holding one of the terms (given rarest first): each term's first ANY_CANDIDATES / len(terms)
    names (PER_TERM at least: each read is a bounded index range plus that many row reads), the names
    holding more of the terms first, then the rarer terms' names, ANY_CANDIDATES in all."""
    params: dict[str, object] = {"n": ANY_CANDIDATES, "per": max(PER_TERM, ANY_CANDIDATES // len(terms))}
    parts = []
    for i, t in enumerate(terms):
        if db.is_sqlite:
            parts.append(f"SELECT * FROM (SELECT rowid AS id, {i} AS k FROM entry_fts WHERE entry_fts MATCH :m{i} "
                         "LIMIT :per)")
            params[f"m{i}"] = _fts_quote(t)
        else:
            parts.append(f"(SELECT id, {i} AS k FROM entry WHERE {nameindex.PG_WORDS} @> ARRAY[CAST(:m{i} AS text)] "
                         "LIMIT :per)")
            params[f"m{i}"] = t
    hits = (f"SELECT id FROM ({' UNION ALL '.join(parts)}) AS hits GROUP BY id "
            "ORDER BY count(*) DESC, min(k), id LIMIT :n")
    sql = f"SELECT e.id, e.name_norm FROM entry e WHERE e.id IN ({hits})"
    return dict(conn.execute(text(sql), params).all())


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


