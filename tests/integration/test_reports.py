"""Takedown reports: built per hub from confirmed mirrors, rendered as text/CSV/JSON, sent, closed."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import select

from mirrorwatch.errors import Conflict, InvalidInput, NotFound
from mirrorwatch.services import reports, review
from mirrorwatch.store.models import Audit, Decision, HubFile, Match, StatusEvent, utcnow
from webdata import add_mirror

pytest_plugins = ("webfixtures",)


def _confirm(world, ids):
    review.decide(world.db, ids, "confirmed", None, "rex")


def test_candidates_are_confirmed_and_unreported(world):
    page = reports.candidates(world.db)
    assert {m.id for m in page.items} == set(world.extra["confirmed"])
    _confirm(world, world.new_matches[:2])
    assert reports.candidates(world.db).total == 4
    assert reports.candidates(world.db, hub="local").total == 1


def test_build_one_report_per_hub(world):
    _confirm(world, world.new_matches[:3])
    ids = world.new_matches[:3] + world.extra["confirmed"]
    made = reports.build_reports(world.db, ids, "rex")
    assert [r.hub for r in made] == ["hf", "local"]
    hf, local = made
    assert {it.match.id for it in hf.items} == set(ids) - {world.extra["confirmed"][1]}
    assert [it.match.id for it in local.items] == [world.extra["confirmed"][1]]
    assert hf.state == "draft" and hf.created_by == "rex"
    assert hf.title == "4 re-uploads of removed models on Hugging Face"
    assert reports.candidates(world.db).total == 0
    with world.db.session() as s:
        assert s.scalars(select(Audit.action).where(Audit.action == "report.create")).all() == ["report.create"] * 2


def test_build_refuses_unconfirmed_reported_twice_and_unknown(world):
    with pytest.raises(Conflict, match="not confirmed"):
        reports.build_reports(world.db, world.new_matches[:1], "rex")
    reports.build_reports(world.db, world.extra["confirmed"][:1], "rex")
    with pytest.raises(Conflict, match="already in report"):
        reports.build_reports(world.db, world.extra["confirmed"][:1], "rex")
    with pytest.raises(NotFound):
        reports.build_reports(world.db, [555555], "rex")
    with pytest.raises(InvalidInput):
        reports.build_reports(world.db, [], "rex")
    with pytest.raises(InvalidInput):
        reports.build_reports(world.db, world.extra["confirmed"][1:], "rex", title="t" * 301)


def test_text_rendering_has_evidence_per_mirror(world):
    _confirm(world, world.new_matches[:2])
    rep = reports.build_reports(world.db, world.new_matches[:2], "rex", title="Batch by archivist9")[0]
    text = reports.render_text(rep)
    assert text.startswith("Subject: Batch by archivist9\n")
    assert "To the Hugging Face trust and safety team" in text
    assert "2 files below, in 2 repositories" in text
    for it in rep.items:
        m = it.match
        assert f"https://huggingface.co/{m.repo_id}/blob/main/{m.path}" in text
        assert f"SHA256: {m.sha256}" in text
        assert m.entry_name in text
        assert f"SHA256: {m.sha256}" in "\n".join(m.why) or m.why[0] in text
    assert "uploaded by archivist9" in text
    assert f"Report #{rep.id}, prepared by rex" in text


def test_csv_and_json_exports(world):
    _confirm(world, world.new_matches[:2])
    rep = reports.build_reports(world.db, world.new_matches[:2], "rex")[0]
    body, media, name = reports.export_report(world.db, rep.id, "csv")
    assert media.startswith("text/csv") and name == f"mirrorwatch-report-{rep.id}.csv"
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [int(r["match_id"]) for r in rows] == sorted(world.new_matches[:2])
    assert rows[0]["uploader"] == "archivist9" and rows[0]["url"].startswith("https://huggingface.co/")
    body, media, _ = reports.export_report(world.db, rep.id, "json")
    doc = json.loads(body)
    assert doc["id"] == rep.id and doc["state"] == "draft" and len(doc["items"]) == 2
    assert doc["items"][0]["evidence"][0]["form"] == "sha256"
    body, media, _ = reports.export_report(world.db, rep.id, "text")
    assert media.startswith("text/plain") and "Subject:" in body
    with pytest.raises(InvalidInput):
        reports.export_report(world.db, rep.id, "pdf")


def test_csv_cells_cannot_run_as_formulas(world):
    mid, _ = add_mirror(world.db, world.entries[25], repo_id="evil/=HYPERLINK(\"x\")", author="=cmd|'/c calc'!A1",
                        path="@SUM(1+1).safetensors", sha256="ab" * 32, state="confirmed")
    rep = reports.build_reports(world.db, [mid], "rex")[0]
    rows = list(csv.DictReader(io.StringIO(reports.render_csv(rep))))
    assert rows[0]["uploader"].startswith("'=")
    assert rows[0]["path"].startswith("'@")


def test_mark_sent_reports_matches_and_outcomes_follow_rechecks(world):
    ids = world.extra["confirmed"][:1]
    rep = reports.build_reports(world.db, ids, "rex")[0]
    with pytest.raises(Conflict):
        reports.close_report(world.db, rep.id, "rex")
    sent = reports.mark_sent(world.db, rep.id, "rex", note="ticket 77")
    assert sent.state == "sent" and sent.sent_at is not None and sent.note == "ticket 77"
    assert sent.outcome == {"reported": 1}
    with world.db.session() as s:
        assert s.get(Match, ids[0]).state == "reported"
        d = s.scalars(select(Decision).where(Decision.match_id == ids[0])).one()
        assert (d.state, d.note) == ("reported", f"report #{rep.id}")
    with pytest.raises(Conflict):
        reports.mark_sent(world.db, rep.id, "rex")
    with pytest.raises(Conflict):
        reports.remove_item(world.db, rep.id, ids[0], "rex")
    # A later recheck finds the file removed: the report's outcome shows it without any edit.
    with world.db.session() as s:
        m = s.get(Match, ids[0])
        f = s.get(HubFile, m.hub_file_id)
        m.state = "gone"
        f.status = "gone"
        s.add(StatusEvent(repo_pk=f.repo_pk, hub_file_id=f.id, at=utcnow(), status="file gone"))
    again = reports.get_report(world.db, rep.id)
    assert again.outcome == {"gone": 1}
    assert again.items[0].last_status == "file gone"
    closed = reports.close_report(world.db, rep.id, "rex", note="hub removed it")
    assert closed.state == "closed"
    summary = reports.list_reports(world.db).items[0]
    assert (summary.id, summary.items, summary.outcome) == (rep.id, 1, {"gone": 1})


def test_remove_item_from_draft(world):
    ids = world.extra["confirmed"][:1]
    rep = reports.build_reports(world.db, ids, "rex")[0]
    with pytest.raises(NotFound):
        reports.remove_item(world.db, rep.id, 31337, "rex")
    after = reports.remove_item(world.db, rep.id, ids[0], "rex")
    assert after.items == []
    with pytest.raises(Conflict, match="no mirrors"):
        reports.mark_sent(world.db, rep.id, "rex")
    assert reports.candidates(world.db).total == 2  # back among the candidates


def test_unknown_report(world):
    for fn in (reports.get_report, lambda db, i: reports.mark_sent(db, i, "x"),
               lambda db, i: reports.close_report(db, i, "x")):
        with pytest.raises(NotFound):
            fn(world.db, 999)


def test_hub_controlled_text_is_made_safe_in_text_and_markdown(world):
    mid, _ = add_mirror(world.db, world.entries[26], repo_id="evil/name\x1b]8;;http://x\x07", author="up\u202eloader",
                        path="[click](http://phish.example)\x1b[2J.safetensors", sha256="cd" * 32, state="confirmed")
    rep = reports.build_reports(world.db, [mid], "rex", title="T \x1b[31mred")[0]
    for body in (reports.render_text(rep), reports.render_markdown(rep)):
        assert "\x1b" not in body and "\x07" not in body and "\u202e" not in body
        assert "\\x1b" in body and "\\u202e" in body
    md = reports.render_markdown(rep)
    assert "[click](http" not in md and "\\[click\\]\\(http://phish.example\\)" in md
    # The Markdown download is served like the others.
    body, media, name = reports.export_report(world.db, rep.id, "markdown")
    assert media.startswith("text/markdown") and name.endswith(".md") and body == md


def test_report_text_names_each_hubs_policy_and_route(world):
    from mirrorwatch.hubs.registry import report_policy, report_route

    rows = {hub: add_mirror(world.db, world.entries[27 + i], hub=hub, repo_id=f"{hub}-repo", author="someone",
                            path="m.safetensors", sha256=f"{i}e" * 32, state="confirmed")[0]
            for i, hub in enumerate(("hf", "civitai", "dir"))}
    made = {r.hub: r for r in reports.build_reports(world.db, list(rows.values()), "rex")}
    hf = reports.render_text(made["hf"])
    assert f"Relevant policy: {report_policy('hf')}." in hf and f"Where to report: {report_route('hf')}" in hf
    assert "https://huggingface.co/content-guidelines" in hf and '"Report the repository"' in hf
    civ = reports.render_text(made["civitai"])
    assert "To the Civitai trust and safety team" in civ and "Civitai Terms of Service" in civ
    local = reports.render_text(made["dir"])
    assert "no outside hub" in local and "internal review" in local and "Relevant policy" not in local


def test_candidates_filter_by_bank_and_uploader(world):
    _confirm(world, world.new_matches[:3])
    everyone = reports.candidates(world.db)
    assert everyone.total == 5
    by_bank = reports.candidates(world.db, bank="Synthetic removed models")
    assert by_bank.total == len(by_bank.items) and {m.bank for m in by_bank.items} == {"Synthetic removed models"}
    assert reports.candidates(world.db, bank="no such bank").total == 0
    mine = reports.candidates(world.db, uploader="archivist9")
    assert mine.total >= 1 and {m.author for m in mine.items} == {"archivist9"}
    assert reports.candidates(world.db, uploader="archivist9", hub="local").total == 0
