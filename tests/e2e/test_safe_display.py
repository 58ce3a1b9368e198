"""Hostile names on screen (issue 13, defect 8 and the link items): hub file names, repo ids and
uploader names with terminal escapes, Rich markup and right-to-left overrides are shown as visible
escapes in the CLI and on web pages; uploader links work for names holding "/"; the 413 page's Back
link works under the app's own CSP."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import run_cli
from mirrorwatch.display import safe_text
from webdata import add_mirror, fake_sha

pytest_plugins = ("webfixtures",)

RLO = "\u202e"
EVIL_PATH = f"cute_{RLO}gnp.safetensors\x1b[2K\x1b]8;;http://evil.example/\x07click\x1b]8;;\x07"
EVIL_AUTHOR = "[link=http://evil.example/]trusted[/link]\x1b[8m"
EVIL_REPO = f"hostile/re{RLO}po[bold]x[/bold]"


@pytest.mark.parametrize("raw, shown", [
    ("plain name v2", "plain name v2"),
    ("\x1b[31mred", "\\x1b[31mred"),
    (f"evil{RLO}gnp.exe", "evil\\u202egnp.exe"),
    ("a\u2066b\u2069c\u200fd\u061ce", "a\\u2066b\\u2069c\\u200fd\\u061ce"),
    ("zero\u200bwidth\ufeff", "zero\\u200bwidth\\ufeff"),
    ("tab\tnew\nline\x7f\x85", "tab\\tnew\\nline\\x7f\\x85"),
    ("Zoë 北京 👩\u200d💻", "Zoë 北京 👩\u200d💻"),  # letters, scripts and emoji joiners untouched
])
def test_safe_text(raw, shown):
    assert safe_text(raw) == shown


def test_safe_text_keeps_newlines_when_asked():
    assert safe_text("a\nb\tc\x1b", keep_newlines=True) == "a\nb\tc\\x1b"


@pytest.fixture
def hostile(world):
    mid, rid = add_mirror(world.db, world.entries[11], repo_id=EVIL_REPO, author=EVIL_AUTHOR, path=EVIL_PATH,
                          sha256=fake_sha("e11"))
    slash_mid, _ = add_mirror(world.db, world.entries[12], hub="dir", repo_id="/srv/share", author="team/alice",
                              path="a.safetensors", sha256=fake_sha("e12"))
    return mid, rid, slash_mid


def _no_raw_controls(text: str) -> None:
    bad = [c for c in text if c in (RLO, "\x1b", "\x07", "\u2066", "\u2069")]
    assert not bad, bad


def test_pages_show_control_and_bidi_characters_as_escapes(world, hostile, client_as):
    mid, rid, _ = hostile
    c, _ = client_as("vic")
    for url in (f"/matches/{mid}", f"/repos/{rid}", "/uploaders", f"/entries/{world.entries[11]}", "/", "/reports"):
        page = c.get(url)
        assert page.status_code == 200, url
        _no_raw_controls(page.text)
    page = c.get(f"/matches/{mid}").text
    assert "cute_\\u202egnp.safetensors\\x1b[2K" in page
    assert "hostile/re\\u202epo[bold]x[/bold]" in page
    assert "&lt;" not in EVIL_AUTHOR and "[link=http://evil.example/]trusted[/link]\\x1b[8m" in page
    rc, _ = client_as("rex")
    _no_raw_controls(rc.get("/queue").text)


def test_the_api_keeps_names_as_they_are(world, hostile, api):
    mid, _, _ = hostile
    m = api("vic").get(f"/api/matches/{mid}").json()["match"]
    assert m["path"] == EVIL_PATH and m["author"] == EVIL_AUTHOR  # data is data; JSON escapes it itself


def test_uploader_links_work_for_names_with_a_slash(world, hostile, client_as, api):
    _, _, slash_mid = hostile
    c, _ = client_as("vic")
    page = c.get(f"/matches/{slash_mid}").text
    href = re.search(r'href="(/uploaders/dir/[^"]+)"', page).group(1)
    assert href == "/uploaders/dir/team%2Falice"
    r = c.get(href)
    assert r.status_code == 200 and "team/alice" in r.text
    r = api("vic").get("/api/uploaders/dir/team%2Falice")
    assert r.status_code == 200 and r.json()["summary"]["author"] == "team/alice"


def _db_file(world) -> Path:
    return Path(world.db.url.split("///", 1)[1])


def test_cli_shows_hostile_names_as_text_not_markup_or_escapes(world, hostile):
    """`matches` and `lookup` print hub names through Rich: markup must not become a link, ESC must
    not reach the terminal."""
    world.db.engine.dispose()
    env = {"COLUMNS": "400", "TERM": "xterm-256color", "FORCE_COLOR": "1"}
    for args in (["matches", "--state", "new"], ["lookup", fake_sha("e11")]):
        r = run_cli(*args, db=_db_file(world), env=env)
        assert r.returncode == 0, r.stderr
        out = r.stdout
        assert "\x1b]8;" not in out, args  # no OSC 8 hyperlink made from hub text
        assert "evil.example" in out  # shown, as text
        assert RLO not in out and "\\u202e" in out, args
        # the only ESC sequences left are Rich's own colours (SGR "\x1b[...m"), never the hub's "\x1b[2K"/"\x1b[8m"
        assert "\x1b[2K" not in out and "\x1b[8m" not in out, args
        assert "\\x1b[2K" in out or "\\x1b[8m" in out, args


def test_cli_error_messages_escape_their_text(tmp_path):
    weird = tmp_path / "x[link=http://evil.example/]y\x1b[2J.csv"
    r = run_cli("bank", "import", "nobank", str(weird), db=tmp_path / "w.db", env={"FORCE_COLOR": "1"})
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "\x1b[2J" not in r.stderr and "\x1b]8;" not in r.stderr


def test_413_page_back_link_is_a_plain_link(world, client_as):
    """The middleware's own 413 (a body past the limit, refused before the route runs)."""
    c, csrf = client_as("ada")
    big = b"a,b\n" + b"x" * (52 * 1024 * 1024)
    r = c.post(f"/banks/{world.bank2_id}/import", data={"csrf_token": csrf}, files={"file": ("big.csv", big, "text/csv")})
    assert r.status_code == 413 and "50 MB" in r.text
    assert "javascript:" not in r.text
    assert f'<a href="/banks/{world.bank2_id}">Back</a>' in r.text


def test_hub_file_links_percent_encode_hash_and_question_mark(world, client_as):
    """A file named "a#b?c d.safetensors" must link to that file, not to "a" with a fragment."""
    mid, rid = add_mirror(world.db, world.entries[13], repo_id="plain/repo", author="plain",
                          path="dir/a#b?c d.safetensors", sha256=fake_sha("e13"))
    c, _ = client_as("rex")
    for url in (f"/matches/{mid}", f"/repos/{rid}", "/queue"):
        page = c.get(url).text
        hrefs = re.findall(r'href="(https?://[^"]*/plain/repo/[^"]*)"', page)
        assert hrefs, url
        for h in hrefs:
            assert h.endswith("/plain/repo/blob/main/dir/a%23b%3Fc%20d.safetensors"), h


@pytest.mark.parametrize("url, expected", [
    ("https://hub.example/u/r/blob/main/a#b?.safetensors", "https://hub.example/u/r/blob/main/a%23b%3F.safetensors"),
    ("https://hub.example/u/r/blob/main/a%23b.safetensors", "https://hub.example/u/r/blob/main/a%23b.safetensors"),
    ("javascript:alert(1)", ""),
    ("", ""),
])
def test_hub_href(url, expected):
    from mirrorwatch.web.render import hub_href

    assert hub_href(url) == expected


def test_entry_links_only_to_http_urls(world, client_as):
    from mirrorwatch.store.models import Entry

    with world.db.session() as s:
        s.get(Entry, world.entries[14]).url = "javascript:alert(document.cookie)"
        s.get(Entry, world.entries[15]).url = "https://civitai.com/models/1?modelVersionId=2"
    c, _ = client_as("vic")
    page = c.get(f"/entries/{world.entries[14]}").text
    assert 'href="javascript:' not in page and "javascript:alert(document.cookie)" in page
    page = c.get(f"/entries/{world.entries[15]}").text
    assert 'href="https://civitai.com/models/1?modelVersionId=2"' in page
