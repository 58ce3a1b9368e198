"""The JSON API, endpoint by endpoint: answers, roles, pagination, errors as {"error": ...}."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import func, select

from mirrorwatch.store.models import Audit, Entry, Match
from webdata import fake_sha, sheet_csv

pytest_plugins = ("webfixtures",)


def _err(r, status):
    assert r.status_code == status, (r.status_code, r.text[:300])
    body = r.json()
    assert isinstance(body.get("error"), str) and body["error"]
    return body["error"]


def test_healthz(anon):
    assert anon.get("/healthz").json() == {"status": "ok", "database": "ok"}


def test_lookup_each_kind(world, api):
    c = api("vic")
    r = c.get("/api/lookup", params={"q": fake_sha("e0")}).json()
    assert r["kind"] == "hash" and [x["id"] for x in r["results"]] == [world.entries[0]]
    res = r["results"][0]
    assert res["hashes"]["sha256"] == [fake_sha("e0")]
    assert res["mirrors"][0]["repo_id"] == "archivist9/LORA-0" and res["mirrors"][0]["first_seen"].endswith("Z")
    r = c.get("/api/lookup", params={"q": "https://civitai.com/models/500001"}).json()
    assert r["kind"] == "url" and r["results"][0]["id"] == world.entries[1]
    r = c.get("/api/lookup", params={"q": "Ellis Placeholdr"}).json()
    assert r["kind"] == "name" and r["results"][0]["id"] == world.entries[4]
    assert _err(c.get("/api/lookup", params={"q": "x" * 501}), 422)
    assert _err(c.get("/api/lookup", params={"q": "https://example.com/x"}), 400)
    assert _err(c.get("/api/lookup"), 422)


def test_entries_repos_uploaders(world, api):
    c = api("vic")
    e = c.get(f"/api/entries/{world.entries[0]}").json()
    assert e["name"] == "Avery Placeholder 000 - LoRA" and e["matches"][0]["why"] == [
        f"SHA256: {fake_sha('e0')}", f"AutoV2: {fake_sha('e0')[:10]}"]
    _err(c.get("/api/entries/999999"), 404)
    _err(c.get("/api/entries/0"), 422)
    repos = c.get("/api/repos").json()
    assert repos["total"] == 10 and all(r["matches"] >= 1 for r in repos["items"])
    assert c.get("/api/repos", params={"author": "archivist9"}).json()["total"] == 6
    rp = c.get(f"/api/repos/{world.repos[0]}").json()
    assert rp["repo"]["repo_id"] == "archivist9/LORA-0" and rp["files"][0]["matches"] == 1
    assert rp["repo"]["url"] == "https://huggingface.co/archivist9/LORA-0"
    ups = c.get("/api/uploaders").json()
    assert ups["items"][0]["author"] == "archivist9" and ups["items"][0]["matches"] == 6
    assert ups["items"][0]["by_state"] == {"new": 6}
    u = c.get("/api/uploaders/hf/archivist9", params={"limit": 4}).json()
    assert u["summary"]["repos"] == 6 and len(u["matches"]["items"]) == 4 and u["matches"]["total"] == 6
    _err(c.get("/api/uploaders/hf/nobody"), 404)


def test_matches_filters_pagination_and_detail(world, api):
    c = api("vic")
    page = c.get("/api/matches", params={"limit": 3}).json()
    assert page["total"] == 8 and len(page["items"]) == 3 and page["limit"] == 3 and page["offset"] == 0
    rest = c.get("/api/matches", params={"limit": 3, "offset": 3}).json()
    assert not {m["id"] for m in page["items"]} & {m["id"] for m in rest["items"]}
    assert c.get("/api/matches", params={"state": "all"}).json()["total"] == 10
    assert c.get("/api/matches", params={"tier": 2}).json()["total"] == 1
    assert c.get("/api/matches", params={"uploader": "archivist9", "sort": "newest"}).json()["total"] == 6
    assert c.get("/api/matches", params={"bank_id": world.bank2_id}).json()["total"] == 0
    _err(c.get("/api/matches", params={"limit": 501}), 422)
    _err(c.get("/api/matches", params={"state": "bogus"}), 422)
    d = c.get(f"/api/matches/{world.new_matches[0]}").json()
    assert d["match"]["evidence"][0]["form"] == "sha256" and d["decisions"] == [] and "confirmed" in d["allowed"]
    _err(c.get("/api/matches/424242"), 404)


def test_decisions_roles_and_conflicts(world, api):
    ids = world.new_matches[:3]
    _err(api("vic").post("/api/decisions", json={"match_ids": ids, "state": "confirmed"}), 403)
    r = api("rex").post("/api/decisions", json={"match_ids": ids, "state": "confirmed", "note": "same file"})
    assert r.status_code == 200 and r.json() == {"state": "confirmed", "decided": ids, "confirmed": ids}
    err = _err(api("rex").post("/api/decisions", json={"match_ids": ids, "state": "confirmed"}), 409)
    assert "nothing was changed" in err
    _err(api("rex").post("/api/decisions", json={"match_ids": [999999], "state": "dismissed"}), 404)
    _err(api("rex").post("/api/decisions", json={"match_ids": [], "state": "dismissed"}), 422)
    _err(api("rex").post("/api/decisions", json={"match_ids": ids, "state": "reported"}), 422)
    _err(api("rex").post("/api/decisions", content=b"{not json", headers={"content-type": "application/json"}), 422)
    hist = api("vic").get(f"/api/matches/{ids[0]}").json()["decisions"]
    assert [(h["user"], h["state"], h["note"]) for h in hist] == [("rex", "confirmed", "same file")]


def test_reports_lifecycle(world, api):
    rex, vic = api("rex"), api("vic")
    cands = vic.get("/api/reports/candidates").json()
    assert {m["id"] for m in cands["items"]} == set(world.extra["confirmed"])
    _err(vic.post("/api/reports", json={"match_ids": world.extra["confirmed"]}), 403)
    made = rex.post("/api/reports", json={"match_ids": world.extra["confirmed"], "title": "Two hubs"})
    assert made.status_code == 201
    reps = made.json()
    assert [r["hub"] for r in reps] == ["hf", "local"] and all(r["state"] == "draft" for r in reps)
    rid = reps[0]["id"]
    assert vic.get("/api/reports").json()["total"] == 2
    assert vic.get("/api/reports", params={"state": "sent"}).json()["total"] == 0
    full = vic.get(f"/api/reports/{rid}").json()
    assert full["items"][0]["match"]["state"] == "confirmed"
    txt = vic.get(f"/api/reports/{rid}/export", params={"format": "text"})
    assert txt.headers["content-type"].startswith("text/plain") and "Subject: Two hubs" in txt.text
    rows = list(csv.DictReader(io.StringIO(vic.get(f"/api/reports/{rid}/export", params={"format": "csv"}).text)))
    assert rows[0]["repo_id"] == "old/keep"
    assert json.loads(vic.get(f"/api/reports/{rid}/export", params={"format": "json"}).text)["id"] == rid
    _err(vic.get(f"/api/reports/{rid}/export", params={"format": "docx"}), 422)
    _err(vic.post(f"/api/reports/{rid}/sent"), 403)
    sent = rex.post(f"/api/reports/{rid}/sent", json={"note": "form submitted"}).json()
    assert sent["state"] == "sent" and sent["outcome"] == {"reported": 1}
    _err(rex.post(f"/api/reports/{rid}/sent"), 409)
    assert rex.post(f"/api/reports/{rid}/close").json()["state"] == "closed"
    other = reps[1]["id"]
    after = rex.delete(f"/api/reports/{other}/items/{world.extra['confirmed'][1]}").json()
    assert after["items"] == []
    _err(rex.delete(f"/api/reports/{other}/items/{world.extra['confirmed'][1]}"), 404)
    _err(vic.get("/api/reports/999999"), 404)


def test_banks_create_and_read(world, api):
    banks = api("vic").get("/api/banks").json()
    assert {b["name"]: b["entries"] for b in banks} == {"Synthetic removed models": 30, "Second bank": 3}
    _err(api("rex").post("/api/banks", json={"name": "New"}), 403)
    r = api("ada").post("/api/banks", json={"name": "New <bank>", "description": "d"})
    assert r.status_code == 201 and r.json()["name"] == "New <bank>"
    _err(api("ada").post("/api/banks", json={"name": "New <bank>"}), 409)
    _err(api("ada").post("/api/banks", json={"name": ""}), 422)
    b = api("vic").get(f"/api/banks/{world.bank_id}").json()
    assert b["coverage"]["entries"] == 30 and b["coverage"]["found"] == 10 and b["coverage"]["by_hub"] == {"hf": 9, "local": 1}
    assert b["imports"][0]["filename"] == "removed.csv"
    ents = api("vic").get(f"/api/banks/{world.bank_id}/entries", params={"limit": 5, "offset": 5}).json()
    assert ents["total"] == 30 and [e["id"] for e in ents["items"]] == world.entries[5:10]
    assert api("vic").get(f"/api/banks/{world.bank_id}/entries", params={"found": True}).json()["total"] == 10
    assert api("vic").get(f"/api/banks/{world.bank_id}/entries", params={"q": "brook"}).json()["total"] == 3
    assert len(api("vic").get(f"/api/banks/{world.bank_id}/imports").json()) == 1
    _err(api("vic").get("/api/banks/999999"), 404)
    _err(api("vic").get("/api/banks/999999/entries"), 404)


def test_bank_export_csv_and_json_and_audit(world, api):
    c = api("vic")
    r = c.get(f"/api/banks/{world.bank_id}/export", params={"format": "csv"})
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 30 and rows[0]["sha256"] == fake_sha("e0") and rows[0]["civitai_version_id"] == "700000"
    doc = c.get(f"/api/banks/{world.bank2_id}/export", params={"format": "json"}).json()
    assert len(doc) == 3 and doc[0]["crc32"] and doc[0]["blake3"]
    m = c.get("/api/matches/export", params={"format": "json", "state": "all"}).json()
    assert len(m) == 10 and m[0]["evidence"]
    rows = list(csv.DictReader(io.StringIO(c.get("/api/matches/export", params={"uploader": "archivist9"}).text)))
    assert len(rows) == 6
    with world.db.session() as s:
        actions = s.scalars(select(Audit.action).where(Audit.user == "vic")).all()
    assert actions.count("export.bank") == 2 and actions.count("export.matches") == 2


def test_import_preview_then_commit(world, api):
    ada = api("ada")
    data = sheet_csv(5, start=200, bad_rows=2)
    r = ada.post(f"/api/banks/{world.bank2_id}/import", files={"file": ("new.csv", data, "text/csv")})
    prev = r.json()
    assert r.status_code == 200 and prev["committed"] is False and prev["added"] == 5 and prev["rejected"] == 2
    assert [x["row"] for x in prev["rejected_rows"]] == [7, 8]
    with world.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Entry).where(Entry.bank_id == world.bank2_id)) == 3
    r = ada.post(f"/api/banks/{world.bank2_id}/import", files={"file": ("new.csv", data, "text/csv")},
                 data={"dry_run": "false"})
    assert r.status_code == 422 and "nothing was imported" in r.json()["error"]
    assert r.json()["summary"]["rejected"] == 2
    r = ada.post(f"/api/banks/{world.bank2_id}/import", files={"file": ("new.csv", data, "text/csv")},
                 data={"dry_run": "false", "skip_bad": "true"})
    assert r.status_code == 200 and r.json()["committed"] and r.json()["added"] == 5
    with world.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Entry).where(Entry.bank_id == world.bank2_id)) == 8
        audit = s.scalars(select(Audit).where(Audit.action == "bank.import", Audit.user == "ada")).one()
    assert audit.detail["file"] == "new.csv"
    _err(api("rex").post(f"/api/banks/{world.bank2_id}/import", files={"file": ("x.csv", data, "text/csv")}), 403)


@pytest.mark.parametrize(("name", "data", "status", "words"), [
    ("model.safetensors", b"\x00" * 100, 415, "not a sheet"),
    ("picture.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, 415, "not a sheet"),
    ("sheet.csv", b"\x00\x01\x02binary" * 10, 400, "binary"),
    ("sheet.xlsx", b"PK\x03\x04 not really a zip", 400, "XLSX"),
    ("sheet.json", b"{broken json", 400, "malformed JSON"),
    ("empty.csv", b"   \n", 400, "empty"),
    ("cols.csv", b"foo,bar\n1,2\n", 400, "no usable column"),
])
def test_import_refuses_wrong_formats(world, api, name, data, status, words):
    err = _err(api("ada").post(f"/api/banks/{world.bank2_id}/import", files={"file": (name, data, "text/csv")}), status)
    assert words in err


def test_import_refuses_oversized_uploads(world, api):
    big = b"a,b\n" + b"x" * (51 * 1024 * 1024)
    err = _err(api("ada").post(f"/api/banks/{world.bank2_id}/import", files={"file": ("big.csv", big, "text/csv")}), 413)
    assert "50 MB" in err
    err = _err(api("ada").post("/api/decisions", content=b"[" + b"1," * 600_000 + b"1]",
                               headers={"content-type": "application/json"}), 413)
    assert "too large" in err
    with world.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Entry).where(Entry.bank_id == world.bank2_id)) == 3


def test_import_path_tricks_in_file_names(world, api, tmp_path):
    ada = api("ada")
    for trick in ("../../../../tmp/evil.csv", "..\\..\\windows\\evil.csv", "/etc/passwd.csv", "a\x00b.csv",
                  "x/../../" + "n" * 300 + ".csv"):
        r = ada.post(f"/api/banks/{world.bank2_id}/import", files={"file": (trick, sheet_csv(1, start=300), "text/csv")},
                     data={"dry_run": "false"})
        assert r.status_code == 200, (trick, r.text)
        label = r.json()["file"]
        assert "/" not in label and "\\" not in label and "\x00" not in label and ".." not in label[:2]
        assert len(label) <= 120 and label.endswith(".csv")
    assert not (tmp_path.parent / "evil.csv").exists()


def test_users_and_tokens_admin_only(world, api):
    ada, rex = api("ada"), api("rex")
    _err(rex.get("/api/users"), 403)
    _err(rex.post("/api/users", json={"name": "newbie", "role": "admin", "password": "p" * 10}), 403)
    r = ada.post("/api/users", json={"name": "newbie", "role": "viewer", "password": "newbie-pass"})
    assert r.status_code == 201 and r.json()["role"] == "viewer"
    uid = r.json()["id"]
    _err(ada.post("/api/users", json={"name": "newbie", "password": "newbie-pass"}), 409)
    _err(ada.post("/api/users", json={"name": "bad name!", "password": "newbie-pass"}), 400)
    _err(ada.post("/api/users", json={"name": "x", "role": "god"}), 422)
    assert ada.patch(f"/api/users/{uid}", json={"role": "reviewer"}).json()["role"] == "reviewer"
    assert ada.patch(f"/api/users/{uid}", json={"disabled": True}).json()["disabled"] is True
    assert ada.get(f"/api/users/{uid}").json()["name"] == "newbie"
    _err(ada.get("/api/users/999999"), 404)
    _err(ada.patch(f"/api/users/{world.users['ada']}", json={"role": "viewer"}), 409)  # last admin
    names = [u["name"] for u in ada.get("/api/users").json()]
    assert names == sorted(names) and "newbie" in names
    made = rex.post("/api/tokens", json={"name": "script"})
    assert made.status_code == 201 and made.json()["secret"].startswith("mw_")
    assert made.json()["token"]["prefix"] == made.json()["secret"][:11]
    assert all("secret" not in t for t in rex.get("/api/tokens").json())
    _err(rex.post("/api/tokens", json={"user": "vic"}), 403)
    assert ada.post("/api/tokens", json={"user": "vic", "name": "for vic"}).json()["token"]["user"] == "vic"
    assert len(ada.get("/api/tokens", params={"all": True}).json()) == 5
    with world.db.session() as s:
        acts = s.scalars(select(Audit.action).where(Audit.user == "ada")).all()
    assert {"user.add", "user.role", "user.disable", "token.create"} <= set(acts)


def test_audit_and_scans(world, api):
    _err(api("rex").get("/api/audit"), 403)
    api("rex").post("/api/decisions", json={"match_ids": world.new_matches[:1], "state": "dismissed"})
    a = api("ada").get("/api/audit", params={"action": "match.decide"}).json()
    assert a["total"] == 1 and a["items"][0]["user"] == "rex" and a["items"][0]["detail"] == {"old": "new", "new": "dismissed"}
    assert api("ada").get("/api/audit", params={"user": "setup"}).json()["total"] > 3
    scans = api("vic").get("/api/scans").json()
    assert scans["items"][0]["quota"] == {"api remaining": 417, "api quota": 500, "api reset_in_s": 120.0,
                                         "throttled": 0} and scans["items"][0]["errors"] == 1
    run = api("vic").get(f"/api/scans/{world.scan_run}").json()
    assert run["errors"]["items"][0]["repo_id"] == "someone/broken"
    _err(api("vic").get("/api/scans/999"), 404)


def test_dashboard_and_me(world, api):
    d = api("vic").get("/api/dashboard", params={"days": 14}).json()
    assert d["totals"]["matches"] == 10 and d["totals"]["to_review"] == 8 and len(d["over_time"]) == 14
    assert {b["label"]: b["value"] for b in d["by_state"]}["confirmed"] == 2
    assert d["by_uploader"][0] == {"label": "archivist9", "value": 6, "link": None}
    assert api("vic").get("/api/me").json()["user"]["role"] == "viewer"


def test_openapi_schema_documents_the_api(world, api):
    schema = api("vic").get("/api/openapi.json").json()
    paths = schema["paths"]
    assert "/api/lookup" in paths and "/api/decisions" in paths and "/api/banks/{bank_id}/import" in paths
    assert not any(p.startswith(("/queue", "/login", "/entries")) for p in paths)  # pages are not API
    assert paths["/api/lookup"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert "ErrorOut" in json.dumps(paths["/api/matches"]["get"]["responses"])


def test_unknown_api_path_and_method(api):
    _err(api("vic").get("/api/nothing-here"), 404)
    r = api("vic").put("/api/lookup", params={"q": "a"})
    assert r.status_code == 405 and "error" in r.json()


def test_guessed_ids_do_not_leak(world, api):
    vic = api("vic")
    for url in ("/api/users/1", "/api/users/99999"):
        assert _err(vic.get(url), 403) == "this needs the admin role (you are viewer)"
    for url in ("/api/entries/99999", "/api/repos/99999", "/api/matches/99999", "/api/reports/99999"):
        assert "99999" in _err(vic.get(url), 404)


def test_state_stays_consistent_after_refused_requests(world, api):
    with world.db.session() as s:
        before = dict(s.execute(select(Match.id, Match.state)).all())
    api("vic").post("/api/decisions", json={"match_ids": world.new_matches, "state": "confirmed"})
    api("rex").post("/api/decisions", json={"match_ids": world.new_matches + world.extra["confirmed"],
                                            "state": "confirmed"})
    api("rex").post("/api/reports", json={"match_ids": world.new_matches})
    with world.db.session() as s:
        assert dict(s.execute(select(Match.id, Match.state)).all()) == before
