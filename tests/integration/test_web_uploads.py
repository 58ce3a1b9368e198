"""Sheet imports from the browser: upload, row report preview, commit or cancel; limits and tricks."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from mirrorwatch.store.models import Bank, Entry, ImportRun
from webdata import sheet_csv

pytest_plugins = ("webfixtures",)


def _count(world, bank_id):
    with world.db.session() as s:
        return s.scalar(select(func.count()).select_from(Entry).where(Entry.bank_id == bank_id))


def _stage(html):
    m = re.search(r'name="stage" value="([^"]+)"', html)
    assert m, html[:500]
    return m.group(1)


def test_upload_preview_then_commit(world, client_as):
    c, csrf = client_as("ada")
    data = sheet_csv(4, start=400, bad_rows=1)
    r = c.post(f"/banks/{world.bank2_id}/import", data={"csrf_token": csrf},
               files={"file": ("../../secret/new models.csv", data, "text/csv")})
    assert r.status_code == 200
    page = r.text
    assert "Preview: new models.csv" in page and "would be added" in page
    assert "<td>6</td>" in page  # the rejected row's number, with its reason
    assert _count(world, world.bank2_id) == 3  # nothing written by the preview
    stage = _stage(page)
    # committing without skipping the bad row writes nothing and says why
    r = c.post(f"/banks/{world.bank2_id}/import/commit", data={"csrf_token": csrf, "stage": stage})
    assert r.status_code == 422 and "nothing was imported" in r.text
    assert _count(world, world.bank2_id) == 3
    r = c.post(f"/banks/{world.bank2_id}/import/commit", data={"csrf_token": csrf, "stage": stage, "skip_bad": "1"},
               follow_redirects=True)
    assert r.status_code == 200 and "Imported new models.csv: 4 added" in r.text
    assert _count(world, world.bank2_id) == 7
    with world.db.session() as s:
        run = s.scalars(select(ImportRun).order_by(ImportRun.id.desc())).first()
    assert (run.filename, run.user, run.counts["added"], run.rejected[0]["row"]) == ("new models.csv", "ada", 4, 6)
    # the staged copy is gone after the commit
    r = c.post(f"/banks/{world.bank2_id}/import/commit", data={"csrf_token": csrf, "stage": stage, "skip_bad": "1"})
    assert r.status_code == 404 and "expired" in r.text
    assert _count(world, world.bank2_id) == 7


def test_cancel_and_tampered_stage_ids(world, client_as):
    c, csrf = client_as("ada")
    r = c.post(f"/banks/{world.bank2_id}/import", data={"csrf_token": csrf},
               files={"file": ("ok.csv", sheet_csv(2, start=500), "text/csv")})
    stage = _stage(r.text)
    for bad in ("../../etc/passwd", "x" * 10, stage + "/../x", "", stage[:-1] + "Z"):
        r = c.post(f"/banks/{world.bank2_id}/import/commit", data={"csrf_token": csrf, "stage": bad})
        assert r.status_code == 404, bad
    # the staged upload belongs to this bank and this user
    r = c.post(f"/banks/{world.bank_id}/import/commit", data={"csrf_token": csrf, "stage": stage})
    assert r.status_code == 404
    r = c.post(f"/banks/{world.bank2_id}/import/commit", data={"csrf_token": csrf, "stage": stage, "cancel": "1"},
               follow_redirects=True)
    assert "Import cancelled" in r.text
    r = c.post(f"/banks/{world.bank2_id}/import/commit", data={"csrf_token": csrf, "stage": stage})
    assert r.status_code == 404
    assert _count(world, world.bank2_id) == 3
    staged = list((world.db.sidecar / "uploads").iterdir())
    assert staged == []


def test_upload_limits_and_wrong_formats_on_pages(world, client_as):
    c, csrf = client_as("ada")
    big = b"a,b\n" + b"x" * (50 * 1024 * 1024 + 10)
    r = c.post(f"/banks/{world.bank2_id}/import", data={"csrf_token": csrf}, files={"file": ("big.csv", big, "text/csv")})
    assert r.status_code == 413 and "50 MB" in r.text
    r = c.post(f"/banks/{world.bank2_id}/import", data={"csrf_token": csrf},
               files={"file": ("weights.safetensors", b"\x08\x00" * 64, "application/octet-stream")})
    assert r.status_code == 415 and "not a sheet" in r.text
    r = c.post(f"/banks/{world.bank2_id}/import", data={"csrf_token": csrf},
               files={"file": ("sheet.csv", b"\xff\xfe\x00\x00garbage\x00", "text/csv")})
    assert r.status_code == 400
    r = c.post(f"/banks/{world.bank2_id}/import", data={"csrf_token": csrf})
    assert r.status_code == 400 and "choose a sheet" in r.text
    assert _count(world, world.bank2_id) == 3


def test_only_admins_import_or_create_banks(world, client_as):
    for who in ("vic", "rex"):
        c, csrf = client_as(who)
        r = c.post(f"/banks/{world.bank2_id}/import", data={"csrf_token": csrf},
                   files={"file": ("ok.csv", sheet_csv(2, start=600), "text/csv")})
        assert r.status_code == 403
        assert c.post("/banks", data={"csrf_token": csrf, "name": "Mine"}).status_code == 403
        assert "Import a sheet" not in c.get(f"/banks/{world.bank_id}").text
    ada, csrf = client_as("ada")
    r = ada.post("/banks", data={"csrf_token": csrf, "name": "Team list <b>", "description": "from the team"},
                 follow_redirects=True)
    assert r.status_code == 200 and "Team list &lt;b&gt;" in r.text
    r = ada.post("/banks", data={"csrf_token": csrf, "name": "Team list <b>"})
    assert r.status_code == 409
    with world.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Bank)) == 3


def test_bank_page_exports(world, client_as):
    c, _ = client_as("vic")
    r = c.get(f"/banks/{world.bank_id}/export/csv")
    assert r.status_code == 200 and r.text.startswith("id,name,url,") and r.text.count("\n") == 31
    assert c.get(f"/banks/{world.bank_id}/export/json").json()[0]["id"] == world.entries[0]
    assert c.get(f"/banks/{world.bank_id}/export/xml").status_code in (400, 404, 422)
