"""The web app in a real browser: Playwright driving Debian's Chromium against uvicorn serving a real
SQLite file. Sign in, search by every input kind, open a model page, confirm a match from the queue
with the keyboard, build and send a report, and the access rules (viewers cannot confirm; signed-out
requests are refused)."""

from __future__ import annotations

import shutil
import socket
import threading
import time

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import select

from mirrorwatch.store.db import Database
from mirrorwatch.store.models import Entry, Match, Report
from mirrorwatch.web.app import create_app
from webdata import PASSWORDS, SECRET, fake_sha

pytest_plugins = ("webfixtures",)
pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(db, secret_key=SECRET), host="127.0.0.1", port=self.port,
                                log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Browser:
    assert shutil.which(CHROMIUM) or __import__("os").path.exists(CHROMIUM), \
        "Debian's chromium is needed: apt-get install chromium (./dev test does it)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def live(world):
    with LiveServer(world.db) as server:
        yield server


@pytest.fixture
def page_as(browser, live):
    contexts = []

    def make(name: str | None) -> Page:
        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        ctx.set_default_timeout(15_000)
        contexts.append(ctx)
        page = ctx.new_page()
        if name:
            sign_in(page, live.url, name)
        return page

    yield make
    for c in contexts:
        c.close()


def sign_in(page: Page, base: str, name: str) -> None:
    page.goto(base + "/")
    expect(page).to_have_url(f"{base}/login?next=%2F")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORDS[name])
    page.click("button[type=submit]")
    expect(page).to_have_url(base + "/")
    expect(page.locator("header .me")).to_contain_text(name)


def _state(db, mid):
    with db.session() as s:
        return s.get(Match, mid).state


def _entry(db, name):
    with db.session() as s:
        return s.scalar(select(Entry.id).where(Entry.name == name))


def test_signed_out_requests_are_refused(live, page_as):
    page = page_as(None)
    for path in ("/", "/queue", "/entries/1", "/admin/users"):
        page.goto(live.url + path)
        assert page.url.startswith(live.url + "/login?next=")
        expect(page.locator("input[name=password]")).to_be_visible()
    r = page.request.get(live.url + "/api/matches")
    assert r.status == 401 and r.json() == {"error": "sign in to continue"}
    r = page.request.post(live.url + "/queue/decide", form={"one": "1:confirmed"})
    assert r.status == 403
    assert page.request.get(live.url + "/healthz").json()["status"] == "ok"


def test_wrong_password_stays_signed_out(live, page_as):
    page = page_as(None)
    page.goto(live.url + "/login")
    page.fill("input[name=name]", "rex")
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    expect(page.locator(".flash.err")).to_have_text("Wrong name or password.")
    page.goto(live.url + "/queue")
    assert "/login" in page.url


def test_search_by_each_input_kind_and_open_the_model_page(world, live, page_as):
    page = page_as("rex")
    rich = _entry(world.db, "Avery Madeup 100")
    sha = fake_sha("e100")
    for q in (sha, sha[:10], fake_sha("v3100")[:12], fake_sha("crc100")[:8], fake_sha("v1100")[:8].upper(),
              fake_sha("b3100"), "https://civitai.com/models/500100/avery?modelVersionId=1"):
        page.goto(live.url + "/")
        page.fill("form.bigsearch input[name=q]", q)
        page.press("form.bigsearch input[name=q]", "Enter")
        expect(page).to_have_url(f"{live.url}/entries/{rich}")
        expect(page.locator("h1")).to_have_text("Avery Madeup 100")
    # a name with typos: a ranked list that says why, then the model page with its mirrors
    page.fill("header form.search input[name=q]", "Ellis Placeholdr 04")
    page.press("header form.search input[name=q]", "Enter")
    first = page.locator("ol.results li").first
    expect(first.locator("a.rname")).to_have_text("Ellis Placeholder 004 - LoRA")
    expect(first.locator(".why")).to_contain_text("name (")
    first.locator("a.rname").click()
    expect(page).to_have_url(f"{live.url}/entries/{world.entries[4]}")
    mirrors = page.locator("section", has=page.locator("h2", has_text="Mirrors"))
    expect(mirrors).to_contain_text("archivist9/LORA-4")
    expect(mirrors).to_contain_text(f"SHA256: {fake_sha('e4')}")
    expect(page.locator("table.kvt")).to_contain_text(fake_sha("e4"))
    assert page.locator("img").count() == 0


def test_confirm_a_match_from_the_queue_with_the_keyboard(world, live, page_as):
    page = page_as("rex")
    page.goto(live.url + "/queue")
    rows = page.locator("table.queue tbody tr[data-id]")
    expect(rows).to_have_count(8)
    expect(rows.nth(0)).to_have_class("current")
    page.keyboard.press("j")
    expect(rows.nth(1)).to_have_class("current")
    target = int(rows.nth(1).get_attribute("data-id"))
    page.keyboard.press("k")
    page.keyboard.press("j")
    page.keyboard.press("c")
    expect(page.locator(".flash")).to_have_text("1 match marked confirmed.")
    assert _state(world.db, target) == "confirmed"
    expect(rows).to_have_count(7)
    assert page.locator(f'tr[data-id="{target}"]').count() == 0
    # the cursor stays where it was: the next row is now under it; d dismisses it
    nxt = int(page.locator("table.queue tr.current").get_attribute("data-id"))
    page.keyboard.press("d")
    expect(page.locator(".flash")).to_have_text("1 match marked dismissed.")
    assert _state(world.db, nxt) == "dismissed"
    # keys typed into the note field are text, not commands
    page.keyboard.press("n")
    page.keyboard.type("cdsjk")
    expect(page.locator("#note")).to_have_value("cdsjk")
    assert _state(world.db, int(page.locator("table.queue tr.current").get_attribute("data-id"))) == "new"


def test_bulk_decision_without_javascript(world, live, browser):
    ctx = browser.new_context(java_script_enabled=False)
    try:
        page = ctx.new_page()
        sign_in(page, live.url, "rex")
        page.goto(live.url + "/queue?uploader=archivist9")
        boxes = page.locator("input[name=match_id]")
        expect(boxes).to_have_count(6)
        for i in range(3):
            boxes.nth(i).check()
        page.fill("#note", "batch by one uploader")
        page.click(".bulk button[value=second_look]")
        expect(page.locator(".flash")).to_have_text("3 matches marked second look.")
        with world.db.session() as s:
            states = s.scalars(select(Match.state).where(Match.id.in_(world.new_matches[:6]))).all()
        assert sorted(states).count("second_look") == 3
    finally:
        ctx.close()


def test_build_a_report_and_mark_it_sent(world, live, page_as):
    page = page_as("rex")
    page.goto(live.url + "/reports")
    boxes = page.locator("#build-form input[name=match_id]")
    expect(boxes).to_have_count(2)
    boxes.nth(1).uncheck()  # only the Hugging Face mirror
    page.fill("#build-form input[name=title]", "Re-upload of a removed model")
    page.click("#build-form button[type=submit]")
    expect(page.locator("h1")).to_contain_text("Re-upload of a removed model")
    text = page.locator("textarea.report-text").input_value()
    assert "To the Hugging Face trust and safety team" in text and "old/keep" in text
    assert f"SHA256: {fake_sha('e8')}" in text
    with page.expect_download() as dl:
        page.click("text=Download text")
    assert dl.value.suggested_filename.endswith(".txt")
    page.fill("form[action$='/sent'] input[name=note]", "submitted via the form")
    page.click("#mark-sent")
    expect(page.locator(".flash")).to_contain_text("Marked sent")
    with world.db.session() as s:
        rep = s.scalars(select(Report)).one()
        assert rep.state == "sent" and rep.note == "submitted via the form"
    assert _state(world.db, world.extra["confirmed"][0]) == "reported"
    assert _state(world.db, world.extra["confirmed"][1]) == "confirmed"


def test_viewer_cannot_confirm(world, live, page_as):
    page = page_as("vic")
    page.goto(live.url + "/queue")
    rows = page.locator("table.queue tbody tr[data-id]")
    expect(rows).to_have_count(8)
    assert page.locator("button[name=one]").count() == 0
    mid = int(rows.nth(0).get_attribute("data-id"))
    page.keyboard.press("c")
    page.wait_for_timeout(300)
    assert _state(world.db, mid) == "new"
    # even a hand-made request with this session's CSRF token is refused
    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    r = page.request.post(live.url + "/queue/decide", form={"csrf_token": csrf, "one": f"{mid}:confirmed"})
    assert r.status == 403
    r = page.request.post(live.url + "/api/decisions", data={"match_ids": [mid], "state": "confirmed"},
                          headers={"X-CSRF-Token": csrf})
    assert r.status == 403 and "reviewer" in r.json()["error"]
    page.goto(live.url + f"/matches/{mid}")
    assert page.locator("form[action$='/decide']").count() == 0
    assert _state(world.db, mid) == "new"
    page.goto(live.url + "/admin/users")
    expect(page.locator("h1")).to_contain_text("403")
