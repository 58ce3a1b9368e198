"""The web app and its services on PostgreSQL (the larger-deployment database): every API read, the
main pages, a decision, a report and an import, through the same code as on SQLite.

Needs MIRRORWATCH_TEST_PG (as tests/integration/test_postgres.py; `./dev test` starts Debian's PostgreSQL and
sets it). In CI a missing server is a failure, not a skip."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from mirrorwatch.web.app import create_app
from pgdb import fresh_pg
from webdata import SECRET, build_world, login, sheet_csv


@pytest.fixture
def pg_world():
    db = fresh_pg()
    yield build_world(db)
    db.engine.dispose()


def test_web_app_on_postgres(pg_world):
    w = pg_world
    app = create_app(w.db, secret_key=SECRET)
    with TestClient(app, headers={"Authorization": f"Bearer {w.tokens['ada']}"}) as api:
        reads = ["/api/lookup?q=avery", f"/api/lookup?q={w.entry_sha(0)}", f"/api/entries/{w.entries[0]}", "/api/repos",
                 f"/api/repos/{w.repos[0]}", "/api/uploaders", "/api/uploaders/hf/archivist9", "/api/dashboard",
                 "/api/matches?state=all", f"/api/matches/{w.matches[0]}", "/api/reports/candidates", "/api/banks",
                 f"/api/banks/{w.bank_id}", f"/api/banks/{w.bank_id}/entries?q=brook&found=true",
                 f"/api/banks/{w.bank_id}/imports", "/api/users", "/api/tokens?all=true", "/api/audit?action=user",
                 "/api/scans", f"/api/scans/{w.scan_run}", "/api/me", "/api/matches/export?format=json",
                 f"/api/banks/{w.bank_id}/export?format=csv"]
        for url in reads:
            r = api.get(url)
            assert r.status_code == 200, (url, r.text[:300])
        assert api.get("/api/matches").json()["total"] == 8
        assert api.get("/api/uploaders").json()["items"][0]["author"] == "archivist9"
        assert api.get(f"/api/banks/{w.bank_id}").json()["coverage"]["found"] == 10
        # the bank's name filter without FTS5 (word-prefix LIKE), capped count and keyset pages as on SQLite
        brook = api.get(f"/api/banks/{w.bank_id}/entries", params={"q": "brook"}).json()
        assert (brook["total"], brook["total_capped"]) == (3, False)
        assert all("Brook" in e["name"] for e in brook["items"])
        first = api.get(f"/api/banks/{w.bank_id}/entries", params={"limit": 5}).json()
        second = api.get(f"/api/banks/{w.bank_id}/entries", params={"limit": 5, "after": first["next_after"]}).json()
        assert second["items"][0]["id"] > first["items"][-1]["id"] and second["prev_before"] == second["items"][0]["id"]
        r = api.post("/api/decisions", json={"match_ids": w.new_matches[:2], "state": "confirmed"})
        assert r.status_code == 200
        made = api.post("/api/reports", json={"match_ids": w.new_matches[:2]}).json()
        assert api.post(f"/api/reports/{made[0]['id']}/sent").json()["outcome"] == {"reported": 2}
        r = api.post(f"/api/banks/{w.bank2_id}/import", files={"file": ("pg.csv", sheet_csv(3, start=700), "text/csv")},
                     data={"dry_run": "false"})
        assert r.status_code == 200 and r.json()["added"] == 3
    with TestClient(app) as page:
        login(page, "vic")
        for url in ("/", "/queue?state=", f"/entries/{w.entries[0]}", f"/repos/{w.repos[0]}", "/uploaders",
                    f"/banks/{w.bank_id}", "/reports", "/scans", f"/search?q={w.entry_sha(1)}"):
            assert page.get(url).status_code == 200, url
