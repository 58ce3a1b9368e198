"""Sign-in, sessions, API tokens, roles and CSRF: who gets in, and what a forged or stale request changes
(nothing)."""

from __future__ import annotations

import re
import time

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import func, select

from mirrorwatch.services import users
from mirrorwatch.store.models import Audit, Decision, Match
from mirrorwatch.web.app import create_app
from mirrorwatch.web.auth import SESSION_COOKIE
from webdata import PASSWORDS, SECRET, csrf_from, login

pytest_plugins = ("webfixtures",)

OPEN = {"/healthz", "/login"}


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path).replace("/1/1", "/hf/1") if path.startswith("/uploaders") or \
        path.startswith("/api/uploaders") else re.sub(r"\{fmt\}", "csv", re.sub(r"\{[^}]+_id\}", "1", path))


def _routes(app):
    from mirrorwatch.web.routes import ROUTERS

    for router in ROUTERS:
        for r in router.routes:
            if isinstance(r, APIRoute):
                for m in r.methods:
                    yield m, r.path


def test_every_route_but_health_and_login_needs_sign_in(app, anon):
    seen = 0
    for method, path in _routes(app):
        if path in OPEN:
            continue
        url = _concrete(path)
        r = anon.request(method, url, follow_redirects=False)
        seen += 1
        if path.startswith("/api/"):
            # GET: 401; writes: 403 (no session, so no CSRF secret) — refused before any route code
            assert r.status_code == (401 if method == "GET" else 403), (method, url, r.status_code)
            assert "error" in r.json()
        elif method == "GET":
            assert r.status_code == 303, (method, url, r.status_code)
            assert r.headers["location"].startswith("/login?next=")
        else:
            assert r.status_code == 403, (method, url, r.status_code)  # no session, no CSRF secret: refused
    assert seen > 50
    assert anon.get("/healthz").json() == {"status": "ok", "database": "ok"}
    assert anon.get("/login").status_code == 200
    assert anon.get("/static/app.css").status_code == 200
    assert anon.get("/api/openapi.json").status_code == 401


def test_api_without_token_is_401_json_even_for_posts(anon):
    r = anon.post("/api/decisions", json={"match_ids": [1], "state": "confirmed"}, headers={"Authorization": "Bearer x"})
    assert r.status_code == 401 and r.json() == {"error": "invalid or revoked API token"}
    assert r.headers["www-authenticate"] == "Bearer"
    r = anon.get("/api/matches", headers={"Authorization": "Basic Zm9vOmJhcg=="})
    assert r.status_code == 401 and "Bearer" in r.json()["error"]


def test_login_redirects_to_next_but_never_off_site(anon):
    page = anon.get("/login?next=/queue")
    csrf = csrf_from(page.text)
    for nxt, expect in (("/queue?state=new", "/queue?state=new"), ("//evil.example/x", "/"),
                        ("https://evil.example/", "/"), ("/\\evil.example", "/"), ("javascript:alert(1)", "/")):
        anon.cookies.clear()
        csrf = csrf_from(anon.get("/login").text)
        r = anon.post("/login", data={"name": "vic", "password": PASSWORDS["vic"], "csrf_token": csrf, "next": nxt},
                      follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == expect, nxt


def test_wrong_password_is_refused_and_audited(world, anon):
    csrf = csrf_from(anon.get("/login").text)
    r = anon.post("/login", data={"name": "vic", "password": "nope-nope", "csrf_token": csrf})
    assert r.status_code == 401 and "Wrong name or password" in r.text
    r = anon.post("/login", data={"name": "nobody", "password": "nope-nope", "csrf_token": csrf})
    assert r.status_code == 401
    assert anon.get("/", follow_redirects=False).status_code == 303
    with world.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Audit).where(Audit.action == "auth.login_failed")) == 2


def test_login_throttle(world, anon):
    csrf = csrf_from(anon.get("/login").text)
    codes = [anon.post("/login", data={"name": "rex", "password": f"guess-{i}", "csrf_token": csrf}).status_code
             for i in range(11)]
    assert codes[:10] == [401] * 10 and codes[10] == 429
    r = anon.post("/login", data={"name": "rex", "password": PASSWORDS["rex"], "csrf_token": csrf})
    assert r.status_code == 429  # even the right password waits out the window


def test_login_form_needs_its_csrf_token(world, anon):
    anon.get("/login")
    r = anon.post("/login", data={"name": "vic", "password": PASSWORDS["vic"], "csrf_token": "forged"})
    assert r.status_code == 403
    fresh = TestClient(anon.app)
    r = fresh.post("/login", data={"name": "vic", "password": PASSWORDS["vic"]})
    assert r.status_code == 403


def test_session_cookie_flags_http_and_https(app):
    for base, secure in (("http://testserver", False), ("https://testserver", True)):
        with TestClient(app, base_url=base) as c:
            csrf = csrf_from(c.get("/login").text)
            r = c.post("/login", data={"name": "vic", "password": PASSWORDS["vic"], "csrf_token": csrf},
                       follow_redirects=False)
            cookie = [h for h in r.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE + "=")][0]
            low = cookie.lower()
            assert "httponly" in low and "samesite=lax" in low and "max-age=43200" in low and "path=/" in low
            assert ("secure" in low.split("; ")) == secure


def test_forged_or_missing_csrf_changes_nothing(world, client_as):
    c, csrf = client_as("rex")
    mid = world.new_matches[0]
    for data in ({"one": f"{mid}:confirmed"}, {"one": f"{mid}:confirmed", "csrf_token": "x" * len(csrf)},
                 {"one": f"{mid}:confirmed", "csrf_token": ""}):
        r = c.post("/queue/decide", data=data)
        assert r.status_code == 403 and "CSRF" in r.text
    # a valid token of another session does not work either
    other, other_csrf = client_as("ada")
    r = c.post("/queue/decide", data={"one": f"{mid}:confirmed", "csrf_token": other_csrf})
    assert r.status_code == 403
    # JSON API with the session cookie needs the header
    r = c.post("/api/decisions", json={"match_ids": [mid], "state": "confirmed"})
    assert r.status_code == 403
    r = c.post("/api/decisions", json={"match_ids": [mid], "state": "confirmed"}, headers={"X-CSRF-Token": "nope"})
    assert r.status_code == 403
    with world.db.session() as s:
        assert s.get(Match, mid).state == "new"
        assert s.scalar(select(func.count()).select_from(Decision)) == 0
    r = c.post("/api/decisions", json={"match_ids": [mid], "state": "confirmed"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200


def test_expired_session_redirects_to_sign_in(world, app, monkeypatch):
    signer = URLSafeTimedSerializer(SECRET, salt="mirrorwatch.session")
    u = users.get_user(world.db, "rex")
    import itsdangerous.timed as timed

    real = time.time
    monkeypatch.setattr(timed, "time", type("T", (), {"time": staticmethod(lambda: real() - 13 * 3600)}))
    old = signer.dumps({"u": u.id, "c": "csrf-old", "t": u.session_tag})
    monkeypatch.undo()
    with TestClient(app) as c:
        c.cookies.set(SESSION_COOKIE, old)
        r = c.get("/queue", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=%2Fqueue")
        page = c.get(r.headers["location"]).text
        assert "session has expired" in page
        r = c.post("/queue/decide", data={"one": f"{world.new_matches[0]}:confirmed", "csrf_token": "csrf-old"})
        assert r.status_code == 403
    with world.db.session() as s:
        assert s.get(Match, world.new_matches[0]).state == "new"


def test_tampered_cookie_is_ignored(world, app):
    with TestClient(app) as c:
        login(c, "vic")
        value = c.cookies.get(SESSION_COOKIE)
        c.cookies.clear()
        c.cookies.set(SESSION_COOKIE, value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
        assert c.get("/", follow_redirects=False).status_code == 303
        forged = URLSafeTimedSerializer("another-secret", salt="mirrorwatch.session").dumps(
            {"u": world.users["ada"], "c": "x", "t": ""})
        c.cookies.clear()
        c.cookies.set(SESSION_COOKIE, forged)
        assert c.get("/admin/users", follow_redirects=False).status_code == 303


def test_logout_ends_the_session(client_as):
    c, csrf = client_as("vic")
    r = c.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert c.get("/", follow_redirects=False).status_code == 303


def test_password_change_ends_other_sessions(world, client_as):
    c1, csrf1 = client_as("vic")
    c2, _ = client_as("vic")
    r = c1.post("/account/password", data={"csrf_token": csrf1, "current": PASSWORDS["vic"], "new": "a-new-password",
                                           "again": "a-new-password"}, follow_redirects=True)
    assert r.status_code == 200 and "Password changed" in r.text
    assert c1.get("/", follow_redirects=False).status_code == 200  # this session carries on
    assert c2.get("/", follow_redirects=False).status_code == 303  # the other one is over
    r = c1.post("/account/password", data={"csrf_token": csrf_from(c1.get("/account").text), "current": "wrong-one",
                                           "new": "x" * 10, "again": "x" * 10})
    assert r.status_code == 403


def test_role_change_and_disable_apply_at_once(world, client_as):
    c, csrf = client_as("rex")
    assert c.get("/queue").text.count(":confirmed") > 0
    users.set_role(world.db, "rex", "viewer", actor="ada")
    r = c.post("/queue/decide", data={"csrf_token": csrf, "one": f"{world.new_matches[0]}:confirmed"})
    assert r.status_code == 403
    users.set_disabled(world.db, "rex", True, actor="ada")
    assert c.get("/", follow_redirects=False).status_code == 303
    api = TestClient(c.app, headers={"Authorization": f"Bearer {world.tokens['rex']}"})
    assert api.get("/api/me").status_code == 401


def test_api_token_auth_and_revocation(world, api):
    c = api("rex")
    me = c.get("/api/me").json()
    assert me["user"]["name"] == "rex" and me["via"] == "token" and me["csrf_token"] is None
    tid = [t for t in c.get("/api/tokens").json() if t["name"] == "rex-tests"][0]["id"]
    # token requests need no CSRF and carry no cookies
    r = c.post("/api/decisions", json={"match_ids": [world.new_matches[0]], "state": "second_look"})
    assert r.status_code == 200 and "set-cookie" not in r.headers
    assert c.delete(f"/api/tokens/{tid}").json()["revoked_at"]
    assert c.get("/api/me").status_code == 401


@pytest.mark.parametrize("who", ["vic", "rex"])
def test_tokens_of_others_look_absent(world, api, who):
    c = api(who)
    ada_token = [t for t in api("ada").get("/api/tokens").json() if t["name"] == "ada-tests"][0]["id"]
    r = c.delete(f"/api/tokens/{ada_token}")
    assert r.status_code == 404 and r.json() == {"error": f"no token with id {ada_token}"}
    assert c.delete("/api/tokens/99999").json() == {"error": "no token with id 99999"}
    assert api("ada").get("/api/me").status_code == 200
    assert c.get("/api/tokens?all=true").status_code == 403


def test_each_app_gets_a_random_key_without_configuration(world, monkeypatch):
    monkeypatch.delenv("MIRRORWATCH_SECRET_KEY", raising=False)
    a1, a2 = create_app(world.db), create_app(world.db)
    with TestClient(a1) as c1:
        login(c1, "vic")
        cookie = c1.cookies.get(SESSION_COOKIE)
    with TestClient(a2) as c2:
        c2.cookies.set(SESSION_COOKIE, cookie)
        assert c2.get("/", follow_redirects=False).status_code == 303
    monkeypatch.setenv("MIRRORWATCH_SECRET_KEY", "shared-key")
    b1, b2 = create_app(world.db), create_app(world.db)
    with TestClient(b1) as c1:
        login(c1, "vic")
        cookie = c1.cookies.get(SESSION_COOKIE)
    with TestClient(b2) as c2:
        c2.cookies.set(SESSION_COOKIE, cookie)
        assert c2.get("/", follow_redirects=False).status_code == 200


def test_login_throttle_counts_every_spelling_of_a_name_as_one(world, anon):
    """Issue 13 defect 5: the throttle keyed on name.lower() but sign-in on name.strip(), so " rex"
    kept guessing after "rex" was refused."""
    csrf = csrf_from(anon.get("/login").text)
    for i in range(10):
        r = anon.post("/login", data={"name": "rex", "password": f"guess-{i}", "csrf_token": csrf})
        assert r.status_code == 401
    for spelling in (" rex", "rex ", "\trex", "ｒｅｘ"):
        r = anon.post("/login", data={"name": spelling, "password": PASSWORDS["rex"], "csrf_token": csrf})
        assert r.status_code == 429, spelling


def test_login_throttle_does_not_lock_the_real_user_out_from_elsewhere(world, app):
    """Ten failures from one address no longer lock the account for everyone: the real user, from
    another address, still signs in; a distributed flood hits the per-account cap."""
    auth = app.state.auth
    for _i in range(10):
        auth.throttle.failed("rex", "203.0.113.9")
    with pytest.raises(Exception, match="too many failed sign-ins"):
        auth.throttle.check("rex", "203.0.113.9")
    auth.throttle.check("rex", "198.51.100.7")  # someone else: not locked
    with TestClient(app) as c:  # the test client's own address
        login(c, "rex")
    for i in range(100):
        auth.throttle.failed("rex", f"192.0.2.{i}")
    with pytest.raises(Exception, match="too many failed sign-ins"):
        auth.throttle.check(" rex", "198.51.100.7")


def test_user_names_are_normalised_alike_on_creation_and_sign_in(world):
    u = users.add_user(world.db, " ｎｅｗｂｉｅ ", "viewer", "newbie-password")
    assert u.name == "newbie"
    assert users.authenticate(world.db, "newbie ", "newbie-password").id == u.id


@pytest.mark.parametrize("header", ["Basic Zm9vOmJhcg==", "Digest username=x", "Negotiate abc", "junk"])
def test_pages_ignore_a_non_bearer_authorization_header(world, app, header):
    """Issue 13 defect 12: a Basic header (from a proxy in front) made every page redirect to
    /login?next=... forever. Pages ignore other schemes and use the session; the API says 401."""
    with TestClient(app, headers={"Authorization": header}) as c:
        r = c.get("/", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        r = c.get(r.headers["location"], follow_redirects=False)
        assert r.status_code == 200 and "csrf_token" in r.text  # the sign-in form, not another redirect
        login(c, "vic")
        assert c.get("/", follow_redirects=False).status_code == 200
        r = c.get("/api/me")
        assert r.status_code == 401 and "Bearer" in r.json()["error"]


def test_a_stale_bearer_token_on_the_sign_in_page_does_not_loop(world, app):
    with TestClient(app, headers={"Authorization": "Bearer mw_not-a-real-token"}) as c:
        r = c.get("/login", follow_redirects=False)
        assert r.status_code == 200


def test_a_basic_header_does_not_exempt_a_form_from_csrf(world, client_as):
    """Browsers attach a proxy's Basic credentials to forged cross-site posts on their own."""
    c, _csrf = client_as("rex")
    mid = world.new_matches[0]
    r = c.post("/queue/decide", data={"one": f"{mid}:confirmed"}, headers={"Authorization": "Basic Zm9vOmJhcg=="})
    assert r.status_code == 403
    with world.db.session() as s:
        assert s.get(Match, mid).state == "new"


def test_a_cookie_copied_before_sign_out_is_dead_after_it(world, app, client_as):
    """Issue 13 defect 6: sign-out only deleted the cookie in the browser; a copy worked for 12 h."""
    c, csrf = client_as("vic")
    copied = c.cookies.get(SESSION_COOKIE)
    assert c.post("/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    with TestClient(app) as thief:
        thief.cookies.set(SESSION_COOKIE, copied)
        assert thief.get("/", follow_redirects=False).status_code == 303
        assert thief.get("/api/me").status_code == 401
    with world.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Audit).where(Audit.action == "auth.logout")) == 1
    login(c, "vic")  # signing in again works
    assert c.get("/", follow_redirects=False).status_code == 200


def test_admin_ends_a_users_sessions_from_the_page_and_the_api(world, app, client_as, api):
    vic, _ = client_as("vic")
    admin, csrf = client_as("ada")
    assert "End sessions" in admin.get("/admin/users").text
    r = admin.post(f"/admin/users/{world.users['vic']}", data={"csrf_token": csrf, "action": "logout"})
    assert r.status_code == 200 and "Every session of vic has ended" in r.text
    assert vic.get("/", follow_redirects=False).status_code == 303
    assert api("vic").get("/api/me").status_code == 200  # API tokens are not sessions
    login(vic, "vic")
    assert api("vic").delete(f"/api/users/{world.users['vic']}/sessions").status_code == 403
    r = api("ada").delete(f"/api/users/{world.users['vic']}/sessions")
    assert r.status_code == 200 and r.json()["name"] == "vic"
    assert vic.get("/", follow_redirects=False).status_code == 303
    # an admin ending their own sessions keeps the browser they did it from
    r = admin.post(f"/admin/users/{world.users['ada']}", data={"csrf_token": csrf_from(admin.get("/admin/users").text),
                                                               "action": "logout"})
    assert r.status_code == 200 and admin.get("/", follow_redirects=False).status_code == 200
    with world.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Audit).where(Audit.action == "user.sessions_end")) == 3


def test_a_session_ended_by_another_process_stops_within_the_cache_time(world, app, client_as):
    """The per-process auth cache must not keep a revoked session alive: another process (the CLI, a
    second web worker) moves the epoch in the database; this process notices within the cache TTL."""
    from sqlalchemy import update

    from mirrorwatch.store.models import User

    c, _ = client_as("vic")
    assert c.get("/", follow_redirects=False).status_code == 200
    with world.db.session() as s:  # what another process does: no cache clearing here
        s.execute(update(User).where(User.name == "vic").values(session_epoch=User.session_epoch + 1))
    time.sleep(users.AUTH_CACHE_SECONDS + 0.1)
    assert c.get("/", follow_redirects=False).status_code == 303


def test_re_enabling_an_account_does_not_revive_its_old_sessions(world, client_as):
    c, _ = client_as("vic")
    users.set_disabled(world.db, "vic", True, actor="ada")
    users.set_disabled(world.db, "vic", False, actor="ada")
    assert c.get("/", follow_redirects=False).status_code == 303
    assert users.get_user(world.db, " vic ").name == "vic"  # one normalisation for look-ups too


def test_an_exchange_token_opens_nothing_but_its_feed(app, anon, world):
    """A partner's token scoped to one bank's exchange feed, even one an admin made for themself: every
    other route of the app refuses it (403), whatever the method; its own feed answers."""
    token = users.create_token(world.db, "ada", "partner", scope={"exchange_read": [1]})[1]
    auth = {"Authorization": f"Bearer {token}"}
    feed = "/api/exchange/banks/{bank_id}/signals"
    seen = 0
    for method, path in _routes(app):
        if path in OPEN or path == feed:
            continue
        r = anon.request(method, _concrete(path), headers=auth, follow_redirects=False)
        seen += 1
        if path == "/logout":  # signing out ends web sessions only; a token changes nothing there
            assert r.status_code == 303
            continue
        assert r.status_code == 403, (method, path, r.status_code)
    assert seen > 50
    assert anon.get(feed.format(bank_id=1), headers=auth).status_code == 200
    assert anon.get(feed.format(bank_id=2), headers=auth).status_code == 403
