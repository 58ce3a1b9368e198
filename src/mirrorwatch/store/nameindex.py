"""The name-token index behind name search (bank/search.py), on SQLite and PostgreSQL (migration 0016).

Why (issue 11, 10M entries, name search p99 < 50 ms): the older paths ranked names inside the database
(FTS5 bm25 over up to 20,000 names), corrected typos against the whole FTS vocabulary held in Python
(hundreds of thousands of terms, reloaded whenever an entry was added), and on PostgreSQL matched a
one-typo query by trigram word similarity against all 10M full names (0.3 s). Here every step is a
handful of B-tree seeks or one posting-list intersection:

  name_vocab(token, docs)  every distinct word of entry.name_norm (the words are what `normalise_name`
                           leaves between spaces) and, on SQLite, how many names hold it (an upper
                           bound: edits and deletions never decrement it). The rarity tells the search
                           which words to intersect first and which are too common to list.
  name_typo(key, token)    (SQLite; on PostgreSQL the array name_vocab.keys under a GIN index)
                           the SymSpell deletion neighbourhood of each word of 4..32 characters that is
                           not all digits: the word with one character left out, once per position. Two
                           words within one edit (substitution, insertion, deletion, adjacent swap) share
                           a key, so a query word's typo candidates are one `key IN (...)` away, on any
                           bank size (a million words give about eight million keys; rapidfuzz over a
                           bucket of the vocabulary cost 2-100 ms a word and needed it all in memory).

The postings (word -> entries) are what each backend already does well: SQLite's FTS5 index entry_fts
(migration 0001); on PostgreSQL a GIN index over the name's words, `string_to_array(name_norm, ' ')`
(ix_entry_name_tokens; much shorter posting lists than the trigram index, whose trigrams are shared by
many names). PostgreSQL keeps no counts (a hot row like "lora" updated by every writer would serialise
concurrent imports and invite deadlocks); its rarity comes from the statistics ANALYZE keeps on that
index (most_common_elems: the words in more than about 0.1% of names, with their frequencies).

Everything is kept by triggers, so every write path (import, `bank add`, edits, exchange, tests that
add Entry rows) keeps the index without calling anything:
  SQLite:     entry insert / name_norm update -> name_vocab upsert (docs + 1) -> name_typo keys.
  PostgreSQL: entry insert (one statement-level trigger per INSERT or COPY, transition table) and
              name_norm update -> new words into name_vocab, with their keys (name_typo_keys()).
  PostgreSQL's name_vocab has no unique constraint: two writers adding the same new word at once never wait
  on each other (a duplicate row is harmless; the search reads DISTINCT).
A word whose last name went away stays in name_vocab: a stale word only costs a posting lookup that
finds nothing. Bulk loads on SQLite drop the per-row trigger and fill name_vocab in one GROUP BY
(bulk_begin / bulk_end, called by store/fts.py's bulk_index_begin / bulk_index_end).
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import text

MIN_TYPO_LEN = 4
MAX_TYPO_LEN = 32
_POSITIONS = "[" + ",".join(str(i) for i in range(1, MAX_TYPO_LEN + 1)) + "]"

# -- SQLite -----------------------------------------------------------------------------------------------
# The words of a name in SQL: json_quote makes the name one valid JSON string whatever it holds (quotes,
# backslashes), and each space becomes a string boundary (json_quote never writes a space of its own).
_SQLITE_WORDS = "json_each('[' || replace(json_quote({col}), ' ', '\",\"') || ']')"

SQLITE_DDL = [
    "CREATE TABLE IF NOT EXISTS name_vocab (token TEXT NOT NULL PRIMARY KEY, docs INTEGER NOT NULL DEFAULT 0)"
    " WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS name_typo (key TEXT NOT NULL, token TEXT NOT NULL, PRIMARY KEY (key, token))"
    " WITHOUT ROWID",
    # a new word: its deletion keys (only real inserts fire this; an upsert's DO UPDATE does not)
    "CREATE TRIGGER IF NOT EXISTS name_typo_ai AFTER INSERT ON name_vocab"
    f" WHEN length(new.token) BETWEEN {MIN_TYPO_LEN} AND {MAX_TYPO_LEN} AND new.token GLOB '*[^0-9]*' BEGIN"
    " INSERT OR IGNORE INTO name_typo (key, token)"
    " SELECT substr(new.token, 1, p.value - 1) || substr(new.token, p.value + 1), new.token"
    f" FROM json_each('{_POSITIONS}') AS p WHERE p.value <= length(new.token); END",
]
SQLITE_ENTRY_INSERT_TRIGGER = (
    "CREATE TRIGGER IF NOT EXISTS name_vocab_ai AFTER INSERT ON entry BEGIN"
    " INSERT INTO name_vocab (token, docs) SELECT w.value, 1 FROM " + _SQLITE_WORDS.format(col="new.name_norm")
    + " AS w WHERE w.value <> '' ON CONFLICT (token) DO UPDATE SET docs = docs + 1; END"
)
SQLITE_ENTRY_UPDATE_TRIGGER = (
    "CREATE TRIGGER IF NOT EXISTS name_vocab_au AFTER UPDATE OF name_norm ON entry"
    " WHEN old.name_norm IS NOT new.name_norm BEGIN"
    " INSERT INTO name_vocab (token, docs) SELECT w.value, 1 FROM " + _SQLITE_WORDS.format(col="new.name_norm")
    + " AS w WHERE w.value <> '' ON CONFLICT (token) DO UPDATE SET docs = docs + 1; END"
)
SQLITE_BULK_FILL = (
    "INSERT INTO name_vocab (token, docs) SELECT w.value, count(*) FROM entry AS e, "
    + _SQLITE_WORDS.format(col="e.name_norm")
    + " AS w WHERE e.id >= ? AND w.value <> '' GROUP BY w.value"
    " ON CONFLICT (token) DO UPDATE SET docs = docs + excluded.docs"
)

# -- PostgreSQL -------------------------------------------------------------------------------------------
PG_WORDS = "string_to_array(name_norm, ' ')"
#: A transaction that sets this (SET LOCAL ... = 'on') adds the words of the entries it inserts itself
#: (words_of + PG_ADD_WORDS): the bulk importer, which knows them already. The insert trigger then skips
#: its statement: reading the transition table, splitting every name, DISTINCT and the anti-join were
#: 13 s of the server's 35 s for 1M entries in 50 COPYs (migration 0017).
PG_WRITER_ADDS_WORDS = "mirrorwatch.writer_adds_words"


def _add_words(words: str) -> str:
    """SQL inserting the words a subquery yields (column ``w``) that name_vocab lacks, with their keys."""
    return ("INSERT INTO name_vocab (token, keys) SELECT w, name_typo_keys(w) FROM (" + words + ") AS words"
            " WHERE w <> '' AND NOT EXISTS (SELECT 1 FROM name_vocab v WHERE v.token = w)")


PG_INSERT_FUNCTION = (
    "CREATE OR REPLACE FUNCTION name_vocab_from_entries() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    f" IF current_setting('{PG_WRITER_ADDS_WORDS}', true) = 'on' THEN RETURN NULL; END IF; "
    + _add_words("SELECT DISTINCT w FROM new_entries, unnest(string_to_array(new_entries.name_norm, ' ')) AS w")
    + "; RETURN NULL; END $$"
)
#: The words of a list (words_of's, distinct) not yet in name_vocab; psycopg parameters: run on the DB-API
#: connection (the importer's COPY thread).
PG_ADD_WORDS = _add_words("SELECT unnest(CAST(%(words)s AS text[])) AS w")


def words_of(name_norm: str | None) -> list[str]:
    """The words name_vocab holds for a normalised name: string_to_array(name_norm, ' ') less the empty
    strings, as the triggers split it."""
    return [w for w in name_norm.split(" ") if w] if name_norm else []


PG_DDL = [
    # on PostgreSQL the deletion keys are an array on the word's own row, under a GIN index: a row per key
    # (as on SQLite) cost 107 bytes a key with its B-tree, the array and GIN about a third of that
    f"CREATE OR REPLACE FUNCTION name_typo_keys(w text) RETURNS text[] LANGUAGE sql IMMUTABLE AS $$"
    f" SELECT CASE WHEN length(w) BETWEEN {MIN_TYPO_LEN} AND {MAX_TYPO_LEN} AND w ~ '[^0-9]' THEN"
    " ARRAY(SELECT DISTINCT overlay(w PLACING '' FROM p FOR 1) FROM generate_series(1, length(w)) AS p) END $$",
    "CREATE TABLE IF NOT EXISTS name_vocab (token text NOT NULL, docs bigint, keys text[])",
    "CREATE INDEX IF NOT EXISTS ix_name_vocab_token ON name_vocab (token)",
    # few words are added once a bank is loaded: no pending list for the searches to read through
    "CREATE INDEX IF NOT EXISTS ix_name_vocab_keys ON name_vocab USING gin (keys) WITH (fastupdate = off)",
    f"CREATE INDEX IF NOT EXISTS ix_entry_name_tokens ON entry USING gin ({PG_WORDS})",
    # new words of a statement's names (insert: transition table; update: the row) into name_vocab
    PG_INSERT_FUNCTION,
    "CREATE OR REPLACE FUNCTION name_vocab_from_entry() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    + _add_words("SELECT DISTINCT w FROM unnest(string_to_array(NEW.name_norm, ' ')) AS w") + "; RETURN NULL; END $$",
    "DROP TRIGGER IF EXISTS name_vocab_ai ON entry",
    "CREATE TRIGGER name_vocab_ai AFTER INSERT ON entry REFERENCING NEW TABLE AS new_entries"
    " FOR EACH STATEMENT EXECUTE FUNCTION name_vocab_from_entries()",
    "DROP TRIGGER IF EXISTS name_vocab_au ON entry",
    "CREATE TRIGGER name_vocab_au AFTER UPDATE OF name_norm ON entry FOR EACH ROW"
    " WHEN (OLD.name_norm IS DISTINCT FROM NEW.name_norm) EXECUTE FUNCTION name_vocab_from_entry()",
]
PG_BACKFILL = _add_words(f"SELECT DISTINCT w FROM entry, unnest({PG_WORDS}) AS w")
PG_DROP = [
    "DROP TRIGGER IF EXISTS name_vocab_au ON entry",
    "DROP TRIGGER IF EXISTS name_vocab_ai ON entry",
    "DROP INDEX IF EXISTS ix_entry_name_tokens",
    "DROP TABLE IF EXISTS name_vocab",
    "DROP FUNCTION IF EXISTS name_vocab_from_entries()",
    "DROP FUNCTION IF EXISTS name_vocab_from_entry()",
    "DROP FUNCTION IF EXISTS name_typo_keys(text)",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS name_vocab_au",
    "DROP TRIGGER IF EXISTS name_vocab_ai",
    "DROP TABLE IF EXISTS name_typo",
    "DROP TABLE IF EXISTS name_vocab",
]


def create(conn, dialect: str) -> None:
    """Create the index and fill it from the entries there are (the migration's upgrade)."""
    if dialect == "sqlite":
        for stmt in SQLITE_DDL:
            conn.exec_driver_sql(stmt)
        conn.exec_driver_sql(SQLITE_BULK_FILL, (0,))
        conn.exec_driver_sql(SQLITE_ENTRY_INSERT_TRIGGER)
        conn.exec_driver_sql(SQLITE_ENTRY_UPDATE_TRIGGER)
    elif dialect == "postgresql":
        for stmt in PG_DDL:
            conn.exec_driver_sql(stmt)
        conn.exec_driver_sql(PG_BACKFILL)


def drop(conn, dialect: str) -> None:
    for stmt in SQLITE_DROP if dialect == "sqlite" else PG_DROP if dialect == "postgresql" else []:
        conn.exec_driver_sql(stmt)


# -- bulk loads (SQLite): one GROUP BY instead of a trigger per row ----------------------------------------
def bulk_begin(cursor) -> None:
    """Before a bulk insert of entries on SQLite (a DB-API cursor in the importer's transaction)."""
    cursor.execute("DROP TRIGGER IF EXISTS name_vocab_ai")


def bulk_end(cursor, first_id: int) -> None:
    """After it: the words of the entries from first_id on, counted in one statement; trigger back."""
    cursor.execute(SQLITE_BULK_FILL, (first_id,))
    cursor.execute(SQLITE_ENTRY_INSERT_TRIGGER)


# -- reads ------------------------------------------------------------------------------------------------
_present: dict[str, bool] = {}
_pg_stats: dict[str, tuple[float, float, dict[str, float]]] = {}
_lock = threading.Lock()
PG_STATS_TTL = 300.0


def present(db) -> bool:
    """Whether the name_vocab index exists in this database (checked once per database URL)."""
    hit = _present.get(db.url)
    if hit is None:
        with db.engine.connect() as conn:
            if db.is_sqlite:
                row = conn.execute(text("SELECT 1 FROM sqlite_master WHERE name = 'name_vocab'")).first()
            elif db.engine.dialect.name == "postgresql":
                row = conn.execute(text("SELECT 1 FROM pg_indexes WHERE indexname = 'ix_entry_name_tokens' "
                                        "AND schemaname = current_schema()")).first()
            else:
                row = None
        hit = _present[db.url] = row is not None
    return hit


def pg_common_words(conn, url: str) -> tuple[float, dict[str, float]]:
    """PostgreSQL: (rows in entry, {word: share of names holding it}) for the words ANALYZE found common
    (most_common_elems of ix_entry_name_tokens), cached for PG_STATS_TTL seconds. A word not listed
    is rarer than the least common listed one (about 0.1% of names with the default statistics)."""
    now = time.monotonic()
    with _lock:
        hit = _pg_stats.get(url)
    if hit and now - hit[0] < PG_STATS_TTL:
        return hit[1], hit[2]
    rows = conn.execute(text(
        "SELECT most_common_elems::text::text[], most_common_elem_freqs FROM pg_stats "
        "WHERE schemaname = current_schema() AND tablename = 'ix_entry_name_tokens'")).first()
    total = conn.execute(text("SELECT reltuples FROM pg_class WHERE relname = 'entry' "
                              "AND relnamespace = current_schema()::regnamespace")).scalar() or 0.0
    common: dict[str, float] = {}
    if rows and rows[0]:
        common = dict(zip(rows[0], rows[1], strict=False))
    total = max(float(total), 0.0)
    with _lock:
        _pg_stats[url] = (now, total, common)
    return total, common


# -- bulk loads (PostgreSQL): the index and the trigger off while a large COPY runs ------------------------
# For a load into a new or small table only (the benchmark's direct fill, a first import of millions of
# names): dropping the GIN index takes a lock that blocks readers of entry until the transaction ends.
# Otherwise the statement-level trigger and the GIN pending list already keep up with a COPY.
def pg_bulk_begin(conn) -> None:
    conn.exec_driver_sql("DROP TRIGGER IF EXISTS name_vocab_ai ON entry")
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_entry_name_tokens")
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_name_vocab_keys")


def pg_bulk_end(conn) -> None:
    conn.exec_driver_sql(PG_BACKFILL)
    for stmt in PG_DDL:  # the index and the trigger back (the rest exists: IF NOT EXISTS / OR REPLACE)
        conn.exec_driver_sql(stmt)
