"""Name searches under load (issue 13, defect 3): every query has a bounded cost, whatever its words,
and name searches never starve hash lookups of the web app's threads."""

from __future__ import annotations

import random
import threading
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from mirrorwatch.bank import search as bank_search
from mirrorwatch.bank.importer import import_sheet
from mirrorwatch.bank.search import search_names as real_search
from mirrorwatch.bank.sheets import parse_sheet
from mirrorwatch.services.banks import create_bank
from mirrorwatch.web import pools
from mirrorwatch.web.app import create_app
from webdata import SECRET, fake_sha

pytest_plugins = ("webfixtures",)

SYLL = ["ka", "ri", "to", "mo", "na", "el", "ve", "sa", "lin", "dor", "mi", "zo", "qui", "bel", "ar", "os"]


def _sheet(rng: random.Random, start: int, n: int) -> bytes:
    lines = ["Model Name,SHA256"]
    for i in range(start, start + n):
        first = "".join(rng.choice(SYLL) for _ in range(3)).title()
        last = "".join(rng.choice(SYLL) for _ in range(4)).title()
        lines.append(f"{first} {last} LoRA model person,{fake_sha(f'load{i}')}")
    return ("\n".join(lines) + "\n").encode()


def _sqlite_steps(db, fn) -> int:
    """SQLite virtual-machine steps (in thousands) spent by fn: the database work a query does."""
    steps = [0]

    def tick() -> int:
        steps[0] += 1
        return 0

    def on_checkout(dbapi_con, _rec, _proxy):
        dbapi_con.set_progress_handler(tick, 1000)

    event.listen(db.engine, "checkout", on_checkout)
    try:
        fn()
    finally:
        event.remove(db.engine, "checkout", on_checkout)
    return steps[0]


@pytest.mark.slow
def test_common_word_queries_cost_the_same_on_a_bank_four_times_larger(db):
    """Before: "lora" ranked every name holding it (0.65 s on 300,000 names); the cost grew with the bank."""
    rng = random.Random(5)
    bank = create_bank(db, "load", user="t")
    import_sheet(db, bank.name, parse_sheet(_sheet(rng, 0, 3000), name="a.csv"), "a.csv", user="t")
    queries = ["lora", "model person", "lora model person", "LoRA"]
    for q in queries:
        bank_search.search_names(db, q)  # warm the vocabulary cache
    small = {q: _sqlite_steps(db, lambda q=q: bank_search.search_names(db, q)) for q in queries}
    import_sheet(db, bank.name, parse_sheet(_sheet(rng, 3000, 9000), name="b.csv"), "b.csv", user="t")
    for q in queries:
        bank_search.search_names(db, q)
    large = {q: _sqlite_steps(db, lambda q=q: bank_search.search_names(db, q)) for q in queries}
    for q in queries:
        ids, _scores = bank_search.search_names(db, q)
        assert ids, q  # still answered
        assert large[q] <= 1.5 * small[q] + 50, (q, small[q], large[q])


def test_rare_word_candidates_are_ranked_within_a_budget(db, monkeypatch):
    """FTS5 ranks at most RANK_BUDGET names: the most frequent of the rare words are left out of the
    candidate query (they still count in the ranking)."""
    rng = random.Random(6)
    bank = create_bank(db, "load", user="t")
    sheet = _sheet(rng, 0, 400)
    import_sheet(db, bank.name, parse_sheet(sheet, name="a.csv"), "a.csv", user="t")
    a, b = (line.split()[0].lower() for line in sheet.decode().splitlines()[1:3])
    matches: list[str] = []

    def capture(conn, cursor, statement, params, context, executemany):
        if "MATCH" in statement:
            matches.append(str(params))

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        bank_search.search_names(db, f"{a} {b}")
        assert f'"{a}"' in matches[-1] and f'"{b}"' in matches[-1]
        monkeypatch.setattr(bank_search, "RANK_BUDGET", 1)
        bank_search.search_names(db, f"{a} {b}")
        assert (f'"{a}"' in matches[-1]) != (f'"{b}"' in matches[-1])  # only the rarer one
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)


def test_name_searches_do_not_hold_the_threads_hash_lookups_need(world, monkeypatch):
    """Eight slow name searches at once: hash lookups still answer at once (they used to queue behind
    them in the one thread pool)."""
    release = threading.Event()
    real = bank_search.search_names

    def slow(db, query, **kw):
        release.wait(30)
        return real(db, query, **kw)

    monkeypatch.setattr(pools, "search_names", slow)
    monkeypatch.setattr("mirrorwatch.services.lookup.search_names", slow)
    monkeypatch.setattr(pools.NAME_POOL, "processes", 0)
    app = create_app(world.db, secret_key=SECRET)
    h = {"Authorization": f"Bearer {world.tokens['vic']}"}
    sha = fake_sha("e3")
    with TestClient(app, headers=h) as c:
        results: list[int] = []
        threads = [threading.Thread(target=lambda: results.append(c.get("/api/lookup?q=Avery+Example").status_code))
                   for _ in range(8)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        done = threading.Event()
        got: list[int] = []

        def hash_lookup():
            got.append(c.get(f"/api/lookup?q={sha}").status_code)
            got.append(c.get("/entries/1").status_code)
            done.set()

        threading.Thread(target=hash_lookup, daemon=True).start()
        answered = done.wait(10)
        release.set()
        for t in threads:
            t.join(30)
        assert answered, "a hash lookup waited behind name searches"
        assert got[0] == 200 and results == [200] * 8


def test_name_searches_past_the_queue_bound_get_503(world, monkeypatch):
    release = threading.Event()
    real = bank_search.search_names

    def slow(db, query, **kw):
        release.wait(30)
        return real(db, query, **kw)

    monkeypatch.setattr(pools, "search_names", slow)
    monkeypatch.setattr(pools.NAME_POOL, "processes", 0)
    monkeypatch.setattr(pools.NAME_POOL, "queue", 2)
    app = create_app(world.db, secret_key=SECRET)
    with TestClient(app, headers={"Authorization": f"Bearer {world.tokens['vic']}"}) as c:
        results: list[int] = []
        threads = [threading.Thread(target=lambda: results.append(c.get("/api/lookup?q=Brook").status_code))
                   for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        r = c.get("/api/lookup?q=Corin")
        assert r.status_code == 503 and r.headers["retry-after"] == "1" and "try again" in r.json()["error"]
        release.set()
        for t in threads:
            t.join(30)
        assert results == [200, 200]


@pytest.mark.slow
def test_name_search_in_the_helper_process_gives_the_same_answer(world, api, monkeypatch):
    """Name queries run whole in a lower-priority helper process by default (none of their work in the
    server's interpreter): same results as in-process."""

    def not_here(*_a, **_k):
        raise AssertionError("a name search ran in the server process")

    monkeypatch.setattr(pools, "search_names", not_here)
    monkeypatch.setattr("mirrorwatch.services.lookup.search_names", not_here)
    c = api("vic")
    for q in ("Avery Example", "Dana Placeholdr", "lora"):
        r = c.get("/api/lookup", params={"q": q})
        assert r.status_code == 200
        ids, _scores = real_search(world.db, q, limit=60)
        assert [e["id"] for e in r.json()["results"]] == [i for i in ids if i in {e["id"] for e in r.json()["results"]}]
        assert r.json()["results"], q
