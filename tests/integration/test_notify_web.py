"""Notification settings in the app: admins add a webhook or mailbox to a bank, "send test" delivers a
test event now (to a real receiver on 127.0.0.1) and shows the result, the delivery log, and the
JSON twins; viewers and reviewers can neither see nor change channels or secrets."""

from __future__ import annotations

import re

import pytest

from webdata import csrf_from
from webhook_receiver import Receiver, free_port

pytest_plugins = ("webfixtures",)


@pytest.fixture
def receiver():
    with Receiver("", free_port()) as rec:
        yield rec


def _err(r, status: int) -> str:
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert isinstance(r.json().get("error"), str)
    return r.json()["error"]


def test_api_add_list_test_log_remove(world, api, receiver):
    ada = api("ada")
    r = ada.post("/api/notify/channels", json={"bank": world.bank_id, "target": receiver.url,
                                               "kinds": ["match.new", "mirror.gone"]})
    assert r.status_code == 201, r.text
    made = r.json()
    secret = made["secret"]
    assert secret.startswith("whsec_") and made["channel"]["kinds"] == ["match.new", "mirror.gone"]
    assert made["channel"]["include_names"] is False and made["channel"]["digest_s"] is None
    receiver.secret = secret
    cid = made["channel"]["id"]
    listed = ada.get("/api/notify/channels", params={"bank": world.bank_id})
    assert [c["id"] for c in listed.json()] == [cid] and secret not in listed.text
    assert secret not in ada.get(f"/api/notify/channels/{cid}").text
    # send test: delivered now, signed with the channel's secret, shown in the answer and the log
    t = ada.post(f"/api/notify/channels/{cid}/test")
    assert t.status_code == 200 and t.json()["status"] == "delivered" and t.json()["kind"] == "test"
    assert [e["kind"] for e in receiver.events()] == ["test"] and receiver.rejected == []
    assert "names" not in receiver.events()[0]  # not even the admin's name without include_names
    log = ada.get("/api/notify/deliveries", params={"channel": cid}).json()
    assert log["total"] == 1 and log["items"][0]["id"] == t.json()["id"]
    assert ada.get(f"/api/notify/deliveries/{t.json()['id']}").json()["status"] == "delivered"
    # change it, then remove it
    p = ada.patch(f"/api/notify/channels/{cid}", json={"digest": "1h", "include_names": True})
    assert p.json()["digest_s"] == 3600 and p.json()["include_names"] is True
    assert ada.patch(f"/api/notify/channels/{cid}", json={"digest": "0"}).json()["digest_s"] is None
    assert ada.delete(f"/api/notify/channels/{cid}").status_code == 200
    _err(ada.get(f"/api/notify/channels/{cid}"), 404)


def test_api_test_to_a_receiver_that_is_down_shows_the_error(world, api):
    ada = api("ada")
    cid = ada.post("/api/notify/channels", json={"bank": world.bank_id,
                                                 "target": f"http://127.0.0.1:{free_port()}/hook"}).json()["channel"]["id"]
    t = ada.post(f"/api/notify/channels/{cid}/test").json()
    assert t["status"] == "failed" and "ConnectError" in t["last_error"]


@pytest.mark.parametrize("body, message", [
    ({"target": "ftp://example.org/x"}, "webhook URL or an email address"),
    ({"target": "http://example.org:99999999/x"}, "not a usable webhook URL"),
    ({"target": "not an address"}, "webhook URL or an email address"),
    ({"target": "team@example.org", "kinds": ["match.new", "everything"]}, "unknown event kind"),
    ({"target": "team@example.org", "digest": "5s"}, "digest interval"),
    ({"target": "team@example.org", "digest": "soon"}, "digest interval"),
])
def test_api_refuses_bad_channels(world, api, body, message):
    assert message in _err(api("ada").post("/api/notify/channels", json={"bank": world.bank_id, **body}), 400)


def test_api_unknown_bank_is_404(api):
    _err(api("ada").post("/api/notify/channels", json={"bank": 999, "target": "team@example.org"}), 404)


def test_viewers_and_reviewers_cannot_see_or_edit_channels(world, api, client_as):
    made = api("ada").post("/api/notify/channels", json={"bank": world.bank_id, "target": "team@example.org"}).json()
    cid = made["channel"]["id"]
    for name in ("vic", "rex"):
        c = api(name)
        _err(c.get("/api/notify/channels"), 403)
        _err(c.get(f"/api/notify/channels/{cid}"), 403)
        _err(c.post("/api/notify/channels", json={"bank": world.bank_id, "target": "x@example.org"}), 403)
        _err(c.patch(f"/api/notify/channels/{cid}", json={"active": False}), 403)
        _err(c.delete(f"/api/notify/channels/{cid}"), 403)
        _err(c.post(f"/api/notify/channels/{cid}/test"), 403)
        _err(c.get("/api/notify/deliveries"), 403)
        web, csrf = client_as(name)
        assert web.get("/admin/notify").status_code == 403
        assert web.get("/admin/notify/log").status_code == 403
        r = web.post(f"/admin/notify/{cid}", data={"csrf_token": csrf, "action": "remove"})
        assert r.status_code == 403
        assert "/admin/notify" not in web.get("/banks").text  # no link in the menu
        assert "/admin/notify" not in web.get(f"/banks/{world.bank_id}").text  # nor on the bank's page
    assert api("ada").get(f"/api/notify/channels/{cid}").json()["active"] is True


def test_admin_pages_add_send_test_and_log(world, client_as, receiver):
    web, csrf = client_as("ada")
    assert f'href="/admin/notify?bank={world.bank_id}"' in web.get(f"/banks/{world.bank_id}").text
    page = web.get(f"/admin/notify?bank={world.bank_id}")
    assert page.status_code == 200 and "No channels." in page.text
    r = web.post("/admin/notify", data={"csrf_token": csrf, "bank": str(world.bank_id), "target": receiver.url,
                                        "kinds": ["match.new", "match.state"], "digest": ""})
    assert r.status_code == 200
    secret = re.search(r'<code class="secret">(whsec_[^<]+)</code>', r.text).group(1)
    receiver.secret = secret
    page = web.get(f"/admin/notify?bank={world.bank_id}")
    assert receiver.url in page.text and secret not in page.text  # shown once
    cid = re.search(r'action="/admin/notify/(\d+)"', page.text).group(1)
    r = web.post(f"/admin/notify/{cid}", data={"csrf_token": csrf_from(page.text), "action": "test",
                                               "bank": str(world.bank_id)})
    assert r.status_code == 200 and 'id="test-result"' in r.text and "<strong>delivered</strong>" in r.text
    assert [e["kind"] for e in receiver.events()] == ["test"]
    log = web.get(f"/admin/notify/log?channel={cid}")
    assert log.status_code == 200 and "delivered" in log.text and "1 deliveries" in log.text
    r = web.post(f"/admin/notify/{cid}", data={"csrf_token": csrf, "action": "pause", "bank": str(world.bank_id)},
                 follow_redirects=False)
    assert r.status_code == 303
    assert "paused" in web.get(f"/admin/notify?bank={world.bank_id}").text
