"""Withdrawing an entry from the web: reviewers and admins (page form with CSRF, and the API),
never viewers; audited; the entry page then says it is withdrawn."""

from __future__ import annotations

from sqlalchemy import select

from mirrorwatch.store.models import Audit, Entry

pytest_plugins = ("webfixtures",)


def _status(world, entry_id: int) -> str:
    with world.db.session() as s:
        return s.scalar(select(Entry.status).where(Entry.id == entry_id))


def test_reviewer_withdraws_from_the_entry_page(world, client_as):
    eid = world.entries[0]
    viewer, vcsrf = client_as("vic")
    assert "Withdraw this entry" not in viewer.get(f"/entries/{eid}").text
    assert viewer.post(f"/entries/{eid}/withdraw", data={"csrf_token": vcsrf}, follow_redirects=False).status_code == 403
    rex, csrf = client_as("rex")
    assert "Withdraw this entry" in rex.get(f"/entries/{eid}").text
    assert rex.post(f"/entries/{eid}/withdraw", data={}, follow_redirects=False).status_code == 403  # no CSRF
    assert _status(world, eid) == "active"
    r = rex.post(f"/entries/{eid}/withdraw", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/entries/{eid}"
    assert _status(world, eid) == "withdrawn"
    page = rex.get(f"/entries/{eid}").text
    assert "withdrawn" in page and "Withdraw this entry" not in page
    with world.db.session() as s:
        assert s.scalar(select(Audit.user).where(Audit.action == "entry.withdraw", Audit.object_id == str(eid))) == "rex"


def test_withdraw_api_needs_reviewer(world, api):
    eid = world.entries[1]
    assert api("vic").post(f"/api/entries/{eid}/withdraw").status_code == 403
    r = api("ada").post(f"/api/entries/{eid}/withdraw")
    assert r.status_code == 200 and r.json()["changed"] is True
    assert api("ada").post(f"/api/entries/{eid}/withdraw").json()["changed"] is False
    assert api("ada").post("/api/entries/99999/withdraw").status_code == 404
