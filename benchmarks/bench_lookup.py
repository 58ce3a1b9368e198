"""Benchmark: a generated bank of 1,000,000 entries — import time, hash lookup and name search latency,
database size and memory, on SQLite and (with --postgres) on PostgreSQL, side by side.

Runs through the same code the CLI uses (`import_file`, `lookup`), each backend in its own process. Usage:
    ./dev bench lookup [--entries 1000000] [--queries 2000] [--keep DIR]
    ./dev bench lookup --postgres postgresql+psycopg://user:pw@127.0.0.1:5432/mw_bench
    ./dev bench lookup --import-rows 10000000 --postgres URL   # the sheet imported by `mirrorwatch bank import`
With --import-rows the sheet is imported by the CLI itself, in its own process (`mirrorwatch --db URL bank
import SHEET`): its wall time and peak RSS, and on PostgreSQL the peak RSS of the server backend that
took the COPY, are the import figures.
Targets (issue 2): import < 60 s at 1M; (issue 11) at 10M: import < 10 min, hash lookup p99 < 5 ms,
name search p99 < 50 ms.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import re
import statistics
import tempfile
import time
from pathlib import Path

from mirrorwatch.services.banks import create_bank
from mirrorwatch.services.imports import import_file
from mirrorwatch.services.lookup import lookup
from mirrorwatch.services.serial import to_json_bytes
from mirrorwatch.store import nameindex
from mirrorwatch.store.db import Database
from mirrorwatch.text.names import normalise_name

# Invented model names with the token statistics of a real takedown bank (a Civitai-style list of
# person LoRAs, styles and concepts): a few words are in a large share of the names ("lora" in about
# half, "sdxl", "pony", "v1", "v2", "style"), first names repeat a lot (Zipf over a few thousand), surnames
# less (Zipf over a quarter of a million), and the same person comes back with other versions, base
# models, separators and spellings ("Xyzzy Qorbin LoRA v2", "qorbin_xyzzy-v1.5", "XyzzyQorbin [SDXL]").
# The first benchmark drew every word uniformly from a syllable space, so no word but the suffixes was
# common and every first or last name was about equally rare: it flattered any search (issue 11).
SYLLABLES = ["ka", "ri", "to", "mo", "na", "el", "ve", "sa", "lin", "dor", "mi", "ra", "zo", "en", "ta",
             "qui", "bel", "ar", "os", "ne", "lu", "fa", "ge", "ho", "ja", "ke", "pe", "su", "vi", "ya",
             "xy", "qor", "bin", "zz", "tha", "wen", "dri", "mar", "ol", "is"]
STYLE_WORDS = ["watercolor", "anime", "realistic", "neon", "pixel", "ink", "sketch", "cyberpunk", "fantasy",
               "portrait", "detailed", "cinematic", "retro", "gothic", "pastel", "vintage", "chibi", "comic",
               "oil", "painting", "lineart", "glitch", "noir", "dreamy", "dark", "soft", "light", "outfit",
               "armor", "dress", "hair", "eyes", "pose", "background", "lighting", "concept", "slider"]
DESCRIPTORS = ["(actress)", "(singer)", "(cosplayer)", "(model)", "(streamer)", "(athlete)", "(youtuber)"]
TYPES = [("LoRA", 45), ("LyCORIS", 5), ("LoCon", 3), ("LoHa", 2), ("Embedding", 2), ("", 43)]
BASES = [("SDXL", 20), ("Pony", 12), ("Flux", 10), ("SD1.5", 10), ("Illustrious", 5), ("XL", 5), ("", 38)]
VERSIONS = [("v1", 20), ("v2", 15), ("v3", 6), ("v1.5", 4), ("v2.0", 4), ("V4", 3), ("v1.0", 4), ("", 44)]


def _words(rng: random.Random, n: int, lo: int, hi: int) -> list[str]:
    seen: dict[str, None] = {}
    while len(seen) < n:
        seen["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(lo, hi)))] = None
    return list(seen)


def _zipf(n: int, offset: float, s: float) -> list[float]:
    acc, out = 0.0, []
    for r in range(n):
        acc += 1 / (r + offset) ** s
        out.append(acc)
    return out


class NameGen:
    """Seeded generator of invented model names (see above); `words` of a name are its own parts."""

    def __init__(self, seed: int = 7) -> None:
        rng = random.Random(seed * 1000 + 1)
        self.first = _words(rng, 6_000, 2, 3)
        self.last = _words(rng, 250_000, 2, 4)
        self.concept = STYLE_WORDS + _words(rng, 3_000, 2, 3)
        self._cf = _zipf(len(self.first), 10, 1.0)
        self._cl = _zipf(len(self.last), 50, 0.8)
        self._cc = _zipf(len(self.concept), 3, 1.0)
        self._tables = {k: ([v for v, _w in t], _zipf_weights(t)) for k, t in
                        (("type", TYPES), ("base", BASES), ("version", VERSIONS))}

    def _pick(self, rng: random.Random, kind: str) -> str:
        values, cum = self._tables[kind]
        return rng.choices(values, cum_weights=cum)[0]

    def name(self, rng: random.Random) -> str:
        kind = rng.random()
        if kind < 0.65:  # a person, as people write them
            first = rng.choices(self.first, cum_weights=self._cf)[0]
            last = rng.choices(self.last, cum_weights=self._cl)[0]
            form = rng.random()
            if form < 0.70:
                core = f"{first.title()} {last.title()}"
            elif form < 0.80:
                core = f"{last.title()} {first.title()}"
            elif form < 0.90:
                core = f"{first}_{last}"
            elif form < 0.95:
                core = f"{first.title()}{last.title()}"
            else:
                core = f"{first.title()} {last[:1].upper()}."
            if rng.random() < 0.15:
                core += " " + rng.choice(DESCRIPTORS)
        else:  # a style or concept
            words = [rng.choices(self.concept, cum_weights=self._cc)[0] for _ in range(rng.randint(1, 3))]
            core = " ".join(w.title() for w in words) + rng.choice([" Style", " Style", " Concept", "", ""])
        parts = [p for p in (self._pick(rng, "type"), self._pick(rng, "base"), self._pick(rng, "version")) if p]
        if rng.random() < 0.03:
            parts.append(f"-0000{rng.choice([10, 12, 15, 20])}")
        sep = rng.choice([" ", " ", " ", " - ", "_", " | "])
        name = core + (sep + sep.join(parts) if parts else "")
        if rng.random() < 0.05:
            name = name.lower().replace(" ", rng.choice(["_", "-", " "]))
        return name


def _zipf_weights(table: list[tuple[str, int]]) -> list[float]:
    acc, out = 0.0, []
    for _v, w in table:
        acc += w
        out.append(acc)
    return out


_GEN: dict[int, NameGen] = {}


def invented_name(rng: random.Random, seed: int = 7) -> str:
    gen = _GEN.get(seed)
    if gen is None:
        gen = _GEN[seed] = NameGen(seed)
    return gen.name(rng)


def make_sheet(path: Path, n: int, seed: int = 7) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    samples = []
    with path.open("w", encoding="utf-8") as f:
        f.write("Model Name,Civitai URL,SHA256\n")
        for i in range(n):
            name = invented_name(rng)
            sha = hashlib.sha256(f"entry-{seed}-{i}".encode()).hexdigest()
            f.write(f"{name},https://civitai.com/models/{100000 + i}?modelVersionId={5000000 + i},{sha}\n")
            if i % max(1, n // 5000) == 0:
                samples.append((name, sha))
    return samples


def sheet_samples(path: Path, n: int) -> list[tuple[str, str]]:
    """The samples make_sheet(path, n) returned, read back from the sheet it wrote."""
    samples = []
    every = max(1, n // 5000)
    i = -1
    with path.open(encoding="utf-8") as f:
        next(f)
        for i, line in enumerate(f):
            if i % every == 0:
                name, _url, sha = line.rstrip("\n").rsplit(",", 2)
                samples.append((name, sha))
    if i + 1 != n:
        raise SystemExit(f"{path} has {i + 1} rows, not {n}: give the --entries/--import-rows it was made with")
    return samples


_NAME_INDEX_S = [0.0]  # seconds the direct fill spent building the name-token index (store/nameindex.py)


def direct_fill(db: Database, n: int, seed: int = 7) -> list[tuple[str, str]]:
    """The rows make_sheet would write, put straight into the database (bulk inserts, the name index
    built once at the end) instead of through the importer: for lookup figures on banks larger than
    the importer's memory allows (it holds every row of a sheet, about 3 GB per million rows)."""
    from datetime import datetime

    bank_id = create_bank(db, "bench").id
    rng = random.Random(seed)
    samples: list[tuple[str, str]] = []
    stamp = datetime(2026, 11, 1)

    def rows():
        for i in range(n):
            name = invented_name(rng)
            sha = hashlib.sha256(f"entry-{seed}-{i}".encode()).hexdigest()
            if i % max(1, n // 5000) == 0:
                samples.append((name, sha))
            yield ((i + 1, bank_id, f"v:{5000000 + i}", name, normalise_name(name),
                    f"https://civitai.com/models/{100000 + i}?modelVersionId={5000000 + i}", 100000 + i, 5000000 + i,
                    "direct.csv", i + 2, stamp, stamp), (i + 1, i + 1, "sha256", sha, "import:direct.csv", stamp))

    ecols = ("id, bank_id, key, name, name_norm, url, civitai_model_id, civitai_version_id, imported_from, row, "
             "created_at, updated_at")
    scols = "id, entry_id, form, value, origin, created_at"
    if db.is_sqlite:
        import sqlite3

        path = db.engine.url.database
        db.engine.dispose()
        con = sqlite3.connect(path)
        con.execute("PRAGMA synchronous=OFF")  # a benchmark fill, not the product's write path
        con.execute("PRAGMA cache_size=-400000")
        with con:
            con.execute("DROP TRIGGER entry_fts_ai")
            nameindex.bulk_begin(con)
            chunk: list = []
            for pair in rows():
                chunk.append(pair)
                if len(chunk) == 100_000:
                    con.executemany(f"INSERT INTO entry ({ecols}) VALUES ({','.join('?' * 12)})",
                                    [(*e[:10], str(e[10]), str(e[11])) for e, _ in chunk])
                    con.executemany(f"INSERT INTO entry_signal ({scols}) VALUES (?,?,?,?,?,?)",
                                    [(*sg[:5], str(sg[5])) for _, sg in chunk])
                    chunk = []
            if chunk:
                con.executemany(f"INSERT INTO entry ({ecols}) VALUES ({','.join('?' * 12)})",
                                [(*e[:10], str(e[10]), str(e[11])) for e, _ in chunk])
                con.executemany(f"INSERT INTO entry_signal ({scols}) VALUES (?,?,?,?,?,?)",
                                [(*sg[:5], str(sg[5])) for _, sg in chunk])
            con.execute("INSERT INTO entry_fts(entry_fts) VALUES ('rebuild')")
            from mirrorwatch.store.fts import INSERT_TRIGGER

            con.execute(INSERT_TRIGGER)
            t = time.perf_counter()
            nameindex.bulk_end(con, 1)
            _NAME_INDEX_S[0] = time.perf_counter() - t
        con.execute("ANALYZE")
        con.close()
        return samples
    from sqlalchemy import text

    with db.engine.begin() as conn:
        conn.execute(text("DROP INDEX IF EXISTS ix_entry_name_trgm"))
        nameindex.pg_bulk_begin(conn)
        raw = conn.connection.driver_connection
        signals: list = []
        with raw.cursor() as cur, cur.copy(f"COPY entry ({ecols}) FROM STDIN") as copy:
            for e, sg in rows():
                copy.write_row(e)
                signals.append(sg)
        with raw.cursor() as cur, cur.copy(f"COPY entry_signal ({scols}) FROM STDIN") as copy:
            for sg in signals:
                copy.write_row(sg)
        del signals
        conn.execute(text("CREATE INDEX ix_entry_name_trgm ON entry USING gin (name_norm gin_trgm_ops)"))
        t = time.perf_counter()
        nameindex.pg_bulk_end(conn)
        _NAME_INDEX_S[0] = time.perf_counter() - t
        for t in ("entry", "entry_signal"):
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), {n + 1}, false)"))
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE entry, entry_signal, name_vocab"))
    return samples


def typo(rng: random.Random, text: str) -> str:
    """One real edit (substitution, deletion, insertion or swap of neighbours) in one word of at least
    four letters, as a journalist retyping a name makes it; the rest of the name as it was."""
    spans = [m.span() for m in re.finditer(r"[A-Za-z]{4,}", text)]
    if not spans:
        return text
    a, b = rng.choice(spans)
    word = text[a:b]
    i = rng.randrange(len(word))
    kind = rng.randrange(4)
    if kind == 0:
        word = word[:i] + rng.choice([c for c in "aeiourstnl" if c != word[i].lower()]) + word[i + 1:]
    elif kind == 1:
        word = word[:i] + word[i + 1:]
    elif kind == 2:
        word = word[:i] + rng.choice("aeiourstnl") + word[i:]
    else:
        i = min(i, len(word) - 2)
        word = word[:i] + word[i + 1] + word[i] + word[i + 2:]
    return text[:a] + word + text[b:]


GENERIC_WORDS = {"lora", "lycoris", "locon", "loha", "embedding", "sdxl", "pony", "flux", "sd1", "5", "0", "xl",
                 "illustrious", "style", "concept", "v1", "v2", "v3", "v4", "000010", "000012", "000015",
                 "000020", "actress", "singer", "cosplayer", "model", "streamer", "athlete", "youtuber"}
COMMON_QUERIES = ["lora", "sdxl lora", "style", "v2", "pony", "anime style", "flux lora v1", "watercolor"]


def partial(rng: random.Random, name: str) -> str:
    """A word or two of a longer name: the person's or concept's own words, without the suffixes."""
    own = [w for w in normalise_name(name).split() if w not in GENERIC_WORDS]
    if not own:
        return name
    if len(own) >= 2 and rng.random() < 0.5:
        return " ".join(own[:2])
    word = max(own, key=len)
    has_lora = "lora" in normalise_name(name).split()
    return word + (" lora" if has_lora and rng.random() < 0.5 else "")


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def _rss_mb(pid: int | str = "self") -> float:
    """Resident memory of a process (VmRSS, MB); NaN when it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _samples_of(db: Database, n: int) -> list[tuple[str, str]]:
    """The samples direct_fill drew (every n // 5000-th entry), read back from a kept bank."""
    from sqlalchemy import text

    step = max(1, n // 5000)
    with db.engine.connect() as conn:
        return [(name, sha) for name, sha in conn.execute(text(
            "SELECT e.name, s.value FROM entry e JOIN entry_signal s ON s.entry_id = e.id "
            "WHERE (e.id - 1) % :step = 0 AND s.form = 'sha256' ORDER BY e.id"), {"step": step})]


def _open(backend: str, work: Path, pg_url: str | None, *, reuse: bool = False) -> Database:
    if reuse:
        return Database.open(str(work / "bench.db") if backend == "sqlite" else pg_url)
    if backend == "sqlite":
        dbfile = work / "bench.db"
        for p in (dbfile, Path(f"{dbfile}-wal"), Path(f"{dbfile}-shm")):
            p.unlink(missing_ok=True)
        return Database.open(str(dbfile))
    from sqlalchemy import create_engine, text

    engine = create_engine(pg_url)
    with engine.begin() as conn:  # a fresh schema: the benchmark owns this database
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return Database.open(pg_url)


def _size_mb(db: Database, work: Path) -> float:
    from sqlalchemy import text

    if db.is_sqlite:
        with db.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return sum(p.stat().st_size for p in work.glob("bench.db*")) / 1e6
    with db.engine.connect() as conn:
        return conn.execute(text("SELECT pg_database_size(current_database())")).scalar() / 1e6


def _pg_backends_hwm(pg_url: str, peak: dict[int, float], cpu: dict[int, float], stop) -> None:
    """Sample the peak RSS (VmHWM, MB) and CPU seconds of this database's other server backends until
    stop is set."""
    import os

    from sqlalchemy import create_engine, text

    engine = create_engine(pg_url)
    with engine.connect() as conn:
        while not stop.is_set():
            pids = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                     "AND pid <> pg_backend_pid()")).scalars().all()
            conn.rollback()
            for pid in pids:
                try:
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmHWM:"):
                            peak[pid] = max(peak.get(pid, 0.0), int(line.split()[1]) / 1024)
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    cpu[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
                except (OSError, IndexError, ValueError):
                    pass
            stop.wait(0.5)
    engine.dispose()


def cli_import(db: Database, sheet: Path, pg_url: str | None) -> dict[str, float]:
    """`mirrorwatch --db URL bank import SHEET --bank bench` as a process: wall time, its peak RSS, and
    (PostgreSQL) the peak RSS of the server backends serving it."""
    import json
    import os
    import subprocess
    import sys
    import threading

    db.engine.dispose()
    peak: dict[int, float] = {}
    cpu: dict[int, float] = {}
    stop = threading.Event()
    watcher = None
    if pg_url:
        watcher = threading.Thread(target=_pg_backends_hwm, args=(pg_url, peak, cpu, stop), daemon=True)
        watcher.start()
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "mirrorwatch.cli.main", "--db", db.url, "bank", "import",
                             str(sheet), "--bank", "bench", "--json"], stdout=subprocess.PIPE)
    out = proc.stdout.read() if proc.stdout else b""
    _pid, status, usage = os.wait4(proc.pid, 0)
    import_s = time.perf_counter() - t
    stop.set()
    if watcher is not None:
        watcher.join()
    if status != 0:
        raise SystemExit(f"the import failed (status {status})")
    summary = json.loads(out)
    got = {"import s": import_s, "import rows/s": summary["rows"] / import_s,
           "import CPU s (the CLI process)": usage.ru_utime + usage.ru_stime,
           "importer peak RSS MB": usage.ru_maxrss / 1024, "added": summary["added"]}
    if peak:
        got["import CPU s (PG backends, sampled)"] = sum(cpu.values())
        got["PG backend peak RSS MB (import)"] = max(peak.values())
    return got


def _name_index_mb(db: Database) -> float:
    """Size of the name-token index (store/nameindex.py): its tables, and on PostgreSQL its GIN index."""
    from sqlalchemy import text

    with db.engine.connect() as conn:
        if db.is_sqlite:
            try:
                return conn.execute(text("SELECT sum(pgsize) FROM dbstat WHERE name IN ('name_vocab', 'name_typo')"
                                         )).scalar() / 1e6
            except Exception:  # SQLite built without dbstat
                return float("nan")
        return conn.execute(text(
            "SELECT pg_total_relation_size('name_vocab') + pg_relation_size('ix_entry_name_tokens')")).scalar() / 1e6


def run_backend(backend: str, sheet: Path | None, samples: list[tuple[str, str]], entries: int, queries: int,
                work: Path, pg_url: str | None, via_cli: bool = False) -> dict[str, float]:
    """Import the sheet into a fresh database of this backend and time the lookups (in a child process,
    so that each backend's memory is its own)."""
    import os
    import resource

    reuse = sheet is None and os.environ.get("MW_BENCH_REUSE") == "1"  # --reuse: the bank a --direct run left
    db = _open(backend, work, pg_url, reuse=reuse)
    t = time.perf_counter()
    out: dict[str, float] = {}
    if reuse:
        samples = _samples_of(db, entries)
    elif sheet is None:  # --direct: bulk fill, not the importer
        samples = direct_fill(db, entries)
        fill_s = time.perf_counter() - t
        db = Database.open(db.url)
        out = {"direct fill s (not the importer)": fill_s}
    elif via_cli:
        create_bank(db, "bench")
        out = cli_import(db, sheet, pg_url)
        assert out.pop("added") == entries, out
        db = Database.open(db.url)
        if not db.is_sqlite:
            with db.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE entry, entry_signal")
    else:
        create_bank(db, "bench")
        summary = import_file(db, "bench", sheet)
        import_s = time.perf_counter() - t
        assert summary.added == entries, summary.to_dict()
        if not db.is_sqlite:
            with db.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE entry, entry_signal")
        out = {"import s": import_s, "import rows/s": entries / import_s,
               "import peak RSS MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}

    rng = random.Random(1)
    # first queries after opening: the database's own page cache is empty (the OS cache holds what the
    # import or fill just wrote): one pass of hash lookups measured on their own
    cold = []
    for _name, sha in rng.sample(samples, min(len(samples), max(200, queries // 4))):
        t = time.perf_counter()
        lookup(db, sha)
        cold.append((time.perf_counter() - t) * 1000)
    out["hash (64 hex SHA256), first queries p99 ms"] = pct(cold, 99)
    lookup(db, samples[0][1])  # warm caches as a long-running server would be
    lookup(db, "warm up query")
    hash_lat, forms_lat, name_lat, typo_lat, json_hash, json_name = [], [], [], [], [], []
    hash_cpu = []  # CPU time of this process per lookup: the lookup's own cost, without waiting for a CPU
    hits = 0
    for _ in range(queries):
        name, sha = rng.choice(samples)
        t = time.perf_counter()
        c = time.thread_time()
        r = lookup(db, sha)
        hash_lat.append((time.perf_counter() - t) * 1000)
        hash_cpu.append((time.thread_time() - c) * 1000)
        hits += bool(r.results)
        t = time.perf_counter()
        to_json_bytes(r)  # what GET /api/lookup writes
        json_hash.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        lookup(db, sha[:10])
        forms_lat.append((time.perf_counter() - t) * 1000)
    name_hits = typo_hits = partial_hits = 0
    partial_lat, common_lat = [], []
    for _ in range(max(200, queries // 5)):
        name, _sha = rng.choice(samples)
        t = time.perf_counter()
        r = lookup(db, name)
        name_lat.append((time.perf_counter() - t) * 1000)
        name_hits += any(v.name == name for v in r.results)
        t = time.perf_counter()
        to_json_bytes(r)
        json_name.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        r = lookup(db, typo(rng, name))
        typo_lat.append((time.perf_counter() - t) * 1000)
        typo_hits += any(v.name == name for v in r.results)
        q = partial(rng, name)
        t = time.perf_counter()
        r = lookup(db, q)
        partial_lat.append((time.perf_counter() - t) * 1000)
        # a hit: the first answer holds every word asked for (a common surname has many right answers)
        partial_hits += bool(r.results) and set(normalise_name(q).split()) <= set(normalise_name(r.results[0].name).split())
        t = time.perf_counter()
        lookup(db, rng.choice(COMMON_QUERIES))
        common_lat.append((time.perf_counter() - t) * 1000)
    for label, lat in [("hash (64 hex SHA256)", hash_lat), ("hash (10 hex AutoV2)", forms_lat),
                       ("name (exact)", name_lat), ("name (one typo)", typo_lat), ("name (partial)", partial_lat),
                       ("name (common words)", common_lat),
                       ("API JSON of a hash result", json_hash), ("API JSON of a name result", json_name)]:
        out[f"{label} p50 ms"] = pct(lat, 50)
        out[f"{label} p99 ms"] = pct(lat, 99)
        out[f"{label} mean ms"] = statistics.mean(lat)
    out[f"hash (SHA256) p99 ms, CPU time{'' if db.is_sqlite else ' of the client'}"] = pct(hash_cpu, 99)
    out["hash hit rate"] = hits / len(hash_lat)
    out["exact-name top-20 hit rate"] = name_hits / len(name_lat)
    out["one-typo top-20 hit rate"] = typo_hits / len(typo_lat)
    out["partial-name top-1 hit rate"] = partial_hits / len(partial_lat)
    out["database size MB"] = _size_mb(db, work)
    out["name-token index MB"] = _name_index_mb(db)
    if _NAME_INDEX_S[0]:
        out["name-token index build s"] = _NAME_INDEX_S[0]
    out["process RSS MB (after queries)"] = _rss_mb()
    if not db.is_sqlite:
        from sqlalchemy import text

        with db.engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
            out["PostgreSQL backend RSS MB"] = _rss_mb(pid)
    out["hash p99 / 5 ms budget"] = pct(hash_lat, 99) / 5
    out["name p99 / 50 ms budget"] = max(pct(lat, 99) for lat in (name_lat, typo_lat, partial_lat, common_lat)) / 50
    db.engine.dispose()
    return out


def _child(q, *args) -> None:
    q.put(run_backend(*args))


def main() -> None:
    import multiprocessing as mp
    import os

    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--keep", type=Path, default=None, help="keep the sheet and the SQLite database in this folder")
    ap.add_argument("--postgres", nargs="?", const=os.environ.get("MIRRORWATCH_BENCH_PG", ""), default=None,
                    metavar="URL", help="also run on PostgreSQL (URL, else $MIRRORWATCH_BENCH_PG); its public "
                                        "schema is emptied first, so give it a database of its own")
    ap.add_argument("--only-postgres", action="store_true", help="with --postgres: skip the SQLite run")
    ap.add_argument("--import-rows", type=int, default=None, metavar="N",
                    help="generate an N-row sheet and import it with `mirrorwatch bank import` in its own process "
                         "(import time, importer and PostgreSQL backend peak RSS), then measure lookups")
    ap.add_argument("--sheet", type=Path, default=None,
                    help="import this sheet, written by an earlier run with the same --entries/--import-rows (kept "
                         "with --keep), instead of generating it again (95 s at 10M rows)")
    ap.add_argument("--direct", action="store_true",
                    help="fill the bank with bulk inserts instead of importing a sheet (lookup figures only)")
    ap.add_argument("--reuse", action="store_true",
                    help="with --direct and --keep: time the lookups on the bank a --direct run left there (and in "
                         "the --postgres database) instead of filling a new one")
    args = ap.parse_args()
    if args.import_rows:
        args.entries = args.import_rows
    if args.reuse:
        if not (args.direct and args.keep):
            raise SystemExit("--reuse needs --direct and --keep DIR")
        os.environ["MW_BENCH_REUSE"] = "1"
    if args.postgres == "":
        raise SystemExit("--postgres needs a URL (or MIRRORWATCH_BENCH_PG), e.g. "
                         "postgresql+psycopg://user:pw@127.0.0.1:5432/mw_bench")
    backends = ([] if args.only_postgres and args.postgres else ["sqlite"]) + (["postgres"] if args.postgres else [])
    work = args.keep or Path(tempfile.mkdtemp(prefix="mw-bench-lookup-"))
    work.mkdir(parents=True, exist_ok=True)
    sheet = work / "bank.csv"
    t = time.perf_counter()
    if args.sheet and not args.direct:
        sheet = args.sheet
        samples = sheet_samples(sheet, args.entries)
    else:
        samples = [] if args.direct else make_sheet(sheet, args.entries)
    gen_s = time.perf_counter() - t
    results: dict[str, dict[str, float]] = {}
    ctx = mp.get_context("spawn")
    for backend in backends:
        q = ctx.Queue()
        p = ctx.Process(target=_child, args=(q, backend, None if args.direct else sheet, samples, args.entries,
                                             args.queries, work,
                                             args.postgres, bool(args.import_rows)))
        p.start()
        results[backend] = q.get()
        p.join()

    made = "filled directly" if args.direct else (f"sheet {'read back' if args.sheet else 'generated'} in {gen_s:.1f} s, "
                                                 f"{sheet.stat().st_size / 1e6:.0f} MB")
    if args.import_rows:
        made += ", imported by `mirrorwatch bank import` (its own process)"
    print(f"entries: {args.entries:,}  ({made}); "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print("targets (issue 11, 10M entries): import < 600 s; hash lookup p99 < 5 ms; name search p99 < 50 ms")
    print(f"{'':40}" + "".join(f"{b:>14}" for b in backends))
    keys = list(dict.fromkeys(k for r in results.values() for k in r))
    for k in keys:
        cells = "".join(f"{results[b][k]:>14.{0 if 'rows/s' in k or 'MB' in k or k == 'import s' else 2}f}"
                        if k in results[b]
                        else f"{'-':>14}" for b in backends)
        print(f"{k:40}{cells}")
    if args.keep is None:
        for p in work.iterdir():
            p.unlink()
        work.rmdir()


if __name__ == "__main__":
    main()
