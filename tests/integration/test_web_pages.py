"""Server-rendered pages: every page for every role, search by each input kind, model/repo/uploader
pages, queue decisions through forms, reports, and escaping of hostile data everywhere."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from mirrorwatch.bank.sheets import parse_sheet
from mirrorwatch.services.imports import import_sheet
from mirrorwatch.store.models import Audit, Decision, Entry, Match, Report
from webdata import add_mirror, csrf_from, fake_sha

pytest_plugins = ("webfixtures",)

PAGES = ["/", "/search", "/search?q=avery", "/queue", "/queue?state=&sort=newest", "/reports", "/banks", "/uploaders",
         "/scans", "/account", "/api-docs"]


def _state(world, mid):
    with world.db.session() as s:
        return s.get(Match, mid).state


def test_pages_render_for_every_role(world, client_as):
    objects = [f"/entries/{world.entries[0]}", f"/repos/{world.repos[0]}", "/uploaders/hf/archivist9",
               f"/banks/{world.bank_id}", f"/matches/{world.matches[0]}", f"/scans/{world.scan_run}"]
    for name in ("vic", "rex", "ada"):
        c, _ = client_as(name)
        for url in PAGES + objects:
            r = c.get(url)
            assert r.status_code == 200, (name, url, r.text[:300])
            assert "text/html" in r.headers["content-type"]
            assert "<script>alert" not in r.text
        admin_pages = [c.get("/admin/users").status_code, c.get("/admin/audit").status_code]
        assert admin_pages == ([200, 200] if name == "ada" else [403, 403])


def test_viewer_sees_no_decision_buttons(world, client_as):
    c, _ = client_as("vic")
    page = c.get("/queue").text
    assert '<button name="state" value="confirmed"' not in page
    assert f'value="{world.new_matches[0]}:confirmed"' not in page
    c2, _ = client_as("rex")
    assert f'value="{world.new_matches[0]}:confirmed"' in c2.get("/queue").text


# --- search ----------------------------------------------------------------------------------------

def _search(c, q):
    return c.get("/search", params={"q": q}, follow_redirects=False)


def test_search_by_each_hash_length_lands_on_the_model_page(world, client_as):
    c, _ = client_as("vic")
    rich = _entry_by_name(world, "Avery Madeup 100")
    sha = fake_sha("e100")
    cases = {
        "sha256 (64)": sha.upper(),
        "sha256: prefix": f"sha256:{sha}",
        "autov2 (10)": sha[:10],
        "autov3 (12)": fake_sha("v3100")[:12],
        "autov1 (8)": fake_sha("v1100")[:8],
        "crc32 (8)": fake_sha("crc100")[:8].upper(),
        "blake3 (64)": fake_sha("b3100"),
    }
    for label, q in cases.items():
        r = _search(c, q)
        assert r.status_code == 303, (label, r.status_code, r.text[:300])
        assert r.headers["location"] == f"/entries/{rich}", label
    page = c.get(f"/entries/{rich}").text
    for form in ("sha256", "autov1", "autov2", "autov3", "crc32", "blake3"):
        assert f"<th>{form}</th>" in page


def test_search_by_civitai_url_and_id(world, client_as):
    c, _ = client_as("vic")
    for q in ("https://civitai.com/models/500003/some-slug?modelVersionId=700003", "civitai.com/models/500003",
              "civitai:500003", "https://civitai.com/api/download/models/700003"):
        r = _search(c, q)
        assert r.status_code == 303, q
        assert r.headers["location"] == f"/entries/{world.entries[3]}"


def test_search_by_name_with_a_typo_lists_ranked_results_with_why(world, client_as):
    c, _ = client_as("vic")
    r = _search(c, "Coirn Placeholdr 002")
    assert r.status_code == 200
    first = re.search(r'<a href="/entries/(\d+)" class="rname">([^<]+)</a>', r.text)
    assert first and int(first.group(1)) == world.entries[2]
    assert "Corin Placeholder 002" in first.group(2)
    assert "name (" in r.text  # why it matched, with its score


def test_search_nothing_found_and_bad_input(world, client_as):
    c, _ = client_as("vic")
    r = _search(c, "0" * 64)
    assert r.status_code == 200 and "Nothing found" in r.text
    r = _search(c, "x" * 600)
    assert r.status_code == 400 and "too long" in r.text
    r = _search(c, "   ")
    assert r.status_code == 200 and "One box for everything" in r.text
    r = _search(c, "https://example.com/models/1")
    assert r.status_code == 400


def test_sql_injection_in_search_and_filters_is_inert(world, client_as):
    c, _ = client_as("vic")
    with world.db.session() as s:
        before = s.scalar(select(func.count()).select_from(Entry))
    for q in ("' OR '1'='1", "x'); DROP TABLE entry; --", '" OR 1=1 --', "NEAR(a b)", "a* OR b*", "%_%"):
        assert _search(c, q).status_code in (200, 400)
    assert c.get("/queue", params={"uploader": "' OR 1=1 --", "state": ""}).text.count("data-id=") == 0
    assert c.get(f"/banks/{world.bank_id}", params={"q": "%"}).status_code == 200
    assert "No entries." in c.get(f"/banks/{world.bank_id}", params={"q": "%' OR 1=1 --"}).text
    with world.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Entry)) == before


# --- model, repo, uploader pages ------------------------------------------------------------------

def test_model_page_shows_mirrors_with_status_uploader_evidence(world, client_as):
    c, _ = client_as("rex")
    page = c.get(f"/entries/{world.entries[0]}").text
    assert "Avery Placeholder 000 - LoRA" in page
    assert "archivist9/LORA-0" in page and 'href="/uploaders/hf/archivist9"' in page
    assert fake_sha("e0") in page
    assert f"SHA256: {fake_sha('e0')}" in page  # evidence line
    assert 'href="https://huggingface.co/archivist9/LORA-0/blob/main/lora_0.safetensors"' in page
    assert 'rel="noreferrer noopener"' in page
    assert "removed.csv, row 2" in page


def test_uploader_page_groups_a_batch(world, client_as):
    c, _ = client_as("vic")
    page = c.get("/uploaders/hf/archivist9").text
    assert page.count('href="/repos/') >= 12  # 6 matches + 6 repos
    assert "Review 6 new in the queue" in page
    assert c.get("/uploaders/hf/nobody").status_code == 404
    lst = c.get("/uploaders").text
    assert lst.index("archivist9") < lst.index("someuser")


def test_unknown_ids_are_404(world, client_as):
    c, _ = client_as("ada")
    for url in ("/entries/999999", "/repos/999999", "/matches/999999", "/banks/999999", "/reports/999999",
                "/scans/999999", "/entries/0", "/entries/-1", "/entries/abc", "/entries/99999999999999999999999"):
        r = c.get(url)
        assert r.status_code in (400, 404), (url, r.status_code)
        assert "Traceback" not in r.text


# --- decisions through the queue form --------------------------------------------------------------

def test_reviewer_confirms_one_row_from_the_queue(world, client_as):
    c, csrf = client_as("rex")
    mid = world.new_matches[0]
    r = c.post("/queue/decide", data={"csrf_token": csrf, "one": f"{mid}:confirmed", "note": "same sha256",
                                      "return_to": "/queue?state=new"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/queue?state=new"
    assert _state(world, mid) == "confirmed"
    page = c.get("/queue?state=new").text
    assert "1 match marked confirmed." in page
    assert f'data-id="{mid}"' not in page
    with world.db.session() as s:
        d = s.scalars(select(Decision).where(Decision.match_id == mid)).one()
    assert (d.user, d.note) == ("rex", "same sha256")


def test_bulk_decision_from_the_queue(world, client_as):
    c, csrf = client_as("rex")
    ids = world.new_matches[:6]
    r = c.post("/queue/decide", data={"csrf_token": csrf, "state": "dismissed", "match_id": [str(i) for i in ids]},
               follow_redirects=False)
    assert r.status_code == 303
    assert {_state(world, i) for i in ids} == {"dismissed"}


def test_decision_conflict_is_a_clear_409_page(world, client_as):
    c, csrf = client_as("rex")
    mid = world.extra["confirmed"][0]
    r = c.post("/queue/decide", data={"csrf_token": csrf, "one": f"{mid}:confirmed"})
    assert r.status_code == 409 and "cannot become confirmed" in r.text


def test_viewer_cannot_decide(world, client_as):
    c, csrf = client_as("vic")
    mid = world.new_matches[0]
    r = c.post("/queue/decide", data={"csrf_token": csrf, "one": f"{mid}:confirmed"})
    assert r.status_code == 403 and "reviewer" in r.text
    r = c.post(f"/matches/{mid}/decide", data={"csrf_token": csrf, "state": "confirmed"})
    assert r.status_code == 403
    assert _state(world, mid) == "new"


def test_match_page_decision_with_note(world, client_as):
    c, csrf = client_as("rex")
    mid = world.new_matches[7]
    r = c.post(f"/matches/{mid}/decide", data={"csrf_token": csrf, "state": "second_look", "note": "check header"},
               follow_redirects=True)
    assert r.status_code == 200 and "second look" in r.text and "check header" in r.text
    assert _state(world, mid) == "second_look"


# --- reports through pages -------------------------------------------------------------------------

def test_build_report_download_and_mark_sent(world, client_as):
    c, csrf = client_as("rex")
    ids = world.extra["confirmed"]
    page = c.get("/reports").text
    assert all(f'name="match_id" value="{i}"' in page for i in ids)
    r = c.post("/reports", data={"csrf_token": csrf, "match_id": [str(ids[0])], "title": "Batch <1>"},
               follow_redirects=False)
    assert r.status_code == 303
    rid = int(r.headers["location"].rsplit("/", 1)[1])
    page = c.get(f"/reports/{rid}").text
    assert "Batch &lt;1&gt;" in page and "Subject: Batch &lt;1&gt;" in page
    text = c.get(f"/reports/{rid}/download/text")
    assert text.status_code == 200 and "attachment" in text.headers["content-disposition"]
    assert text.text.startswith("Subject: Batch <1>")
    assert c.get(f"/reports/{rid}/download/csv").text.startswith("report_id,hub,")
    assert c.get(f"/reports/{rid}/download/json").json()["id"] == rid
    assert c.get(f"/reports/{rid}/download/pdf").status_code in (400, 404, 422)
    r = c.post(f"/reports/{rid}/sent", data={"csrf_token": csrf, "note": "ticket 5"}, follow_redirects=True)
    assert "Marked sent" in r.text
    assert _state(world, ids[0]) == "reported"
    r = c.post(f"/reports/{rid}/close", data={"csrf_token": csrf}, follow_redirects=True)
    assert r.status_code == 200
    with world.db.session() as s:
        assert s.get(Report, rid).state == "closed"


def test_viewer_cannot_build_reports(world, client_as):
    c, csrf = client_as("vic")
    r = c.post("/reports", data={"csrf_token": csrf, "match_id": [str(world.extra["confirmed"][0])]})
    assert r.status_code == 403
    with world.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Report)) == 0


# --- hostile data is shown, escaped, everywhere -----------------------------------------------------

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_hostile_names_paths_notes_are_escaped(world, client_as):
    db = world.db
    sheet = ("Model Name,Civitai URL,SHA256,Notes\n"
             f"\"{XSS.replace(chr(34), chr(34) * 2)}\",https://civitai.com/models/424242,{fake_sha('xss')},"
             f"\"<b>bold</b> ' OR 1=1 --\"\n").encode()
    import_sheet(db, "Second bank", parse_sheet(sheet, name="evil.csv"), "evil<i>.csv", user="setup")
    eid = _entry_by_name(world, XSS)
    mid, rid = add_mirror(db, eid, repo_id='evil/"><script>alert(2)</script>', author="<svg onload=alert(3)>",
                          path="<iframe src=javascript:alert(4)>.safetensors", sha256=fake_sha("xss"),
                          evidence=[{"kind": "header", "field": "ss_output_name", "value": "<script>alert(5)</script>"}])
    c, csrf = client_as("rex")
    c.post(f"/matches/{mid}/decide", data={"csrf_token": csrf, "state": "second_look", "note": "<script>alert(6)</script>"})
    ada, _ = client_as("ada")
    urls = [f"/entries/{eid}", f"/repos/{rid}", f"/matches/{mid}", "/queue?state=", "/search?q=" + "alert x",
            f"/banks/{world.bank2_id}", "/uploaders", "/", f"/queue?uploader={XSS}"]
    for url in urls:
        page = c.get(url).text
        assert "<script>alert" not in page, url
        assert "<img src=x" not in page and "<svg onload" not in page and "<iframe" not in page, url
    page = c.get(f"/entries/{eid}").text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page
    audit = ada.get("/admin/audit").text
    assert "<script>alert(6)" not in audit and "&lt;script&gt;alert(6)" in audit


def test_security_headers(world, client_as):
    c, _ = client_as("vic")
    r = c.get("/queue")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["cache-control"] == "no-store"
    assert c.get("/static/app.css").status_code == 200
    assert "cache-control" not in c.get("/static/app.css").headers or \
        c.get("/static/app.css").headers["cache-control"] != "no-store"


def test_no_images_and_no_external_assets(world, client_as):
    c, _ = client_as("ada")
    for url in PAGES + [f"/entries/{world.entries[0]}"]:
        page = c.get(url).text
        assert "<img" not in page, url
        for src in re.findall(r'(?:src|href)="([^"]+)"', page):
            if src.startswith(("http://", "https://", "//")):
                # the only outside links are to the removed model's old URL and to mirrors on the hub
                assert src.startswith(("https://civitai.com/", "https://huggingface.co/")), (url, src)
        for src in re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', page):
            assert src.startswith("/static/"), (url, src)


def _entry_by_name(world, name):
    with world.db.session() as s:
        return s.scalar(select(Entry.id).where(Entry.name == name))


def test_csrf_field_on_every_post_form(world, client_as):
    c, csrf = client_as("ada")
    for url in ["/queue", "/reports", "/banks", f"/banks/{world.bank_id}", "/account", "/admin/users",
                f"/matches/{world.new_matches[0]}", f"/entries/{world.entries[0]}"]:
        page = c.get(url).text
        forms = re.findall(r'<form method="post".*?</form>', page, flags=re.S)
        assert forms, url
        for f in forms:
            assert f'name="csrf_token" value="{csrf}"' in f, (url, f[:200])
    assert csrf_from(c.get("/").text) == csrf


def test_audit_page_lists_decisions(world, client_as):
    c, csrf = client_as("rex")
    c.post("/queue/decide", data={"csrf_token": csrf, "one": f"{world.new_matches[0]}:dismissed"})
    ada, _ = client_as("ada")
    page = ada.get("/admin/audit?action=match").text
    assert "match.decide" in page and "rex" in page
    with world.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Audit).where(Audit.action == "match.decide")) == 1
