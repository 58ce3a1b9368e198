"""`mirrorwatch report build|list|show|render|mark-sent|close` end to end through the console script, on
a world swept from the local test hub; editable templates (user override, sandbox)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import select

from mirrorwatch.services import review
from mirrorwatch.services.matches import list_matches
from mirrorwatch.store.models import Audit
from mirrorwatch.testhub import Hub, generate_repos
from pytest_testhub import hf_env, testhub  # noqa: F401
from sweepfixtures import make_bank, planted


@pytest.fixture
def swept(db, cli, testhub):  # noqa: F811
    """6 re-uploads found on the test hub (3 per uploader), all confirmed by a reviewer; accounts
    rex (reviewer) and vera (viewer)."""
    make_bank(db, 8)
    running = testhub(Hub(generate_repos(30, seed=12, planted=planted(6, uploaders=2))))
    out = cli("scan", "hf", "--endpoint", running.url, "--json")
    assert out.returncode == 0, out.stderr
    ids = [m.id for m in list_matches(db)]
    assert len(ids) == 6
    review.decide(db, ids, "confirmed", None, "rex")
    for name, role in (("rex", "reviewer"), ("vera", "viewer")):
        assert cli("user", "add", name, "--role", role, "--no-password").returncode == 0
    return db


def _audit(db) -> list[tuple[str, str, str | None]]:
    with db.session() as s:
        return [(a.user, a.action, a.object_id) for a in
                s.scalars(select(Audit).where(Audit.action.like("report.%")).order_by(Audit.id))]


def test_build_render_send_close(swept, cli, tmp_path):
    db = swept
    # Who acts: nobody named, a viewer, then a reviewer.
    nobody = cli("report", "build", "--state", "confirmed", env={"USER": "no-such-account", "LOGNAME": "x"})
    assert nobody.returncode == 5 and "no mirrorwatch account" in nobody.stderr and "Traceback" not in nobody.stderr
    viewer = cli("report", "build", "--state", "confirmed", "--as", "vera")
    assert viewer.returncode == 5 and "needs the reviewer role" in viewer.stderr
    assert _audit(db) == []

    built = cli("report", "build", "--state", "confirmed", "--uploader", "reuploader-0", "--as", "rex", "--json")
    assert built.returncode == 0, built.stderr
    (rep,) = json.loads(built.stdout)
    assert rep["hub"] == "hf" and rep["state"] == "draft" and rep["created_by"] == "rex"
    assert {it["match"]["author"] for it in rep["items"]} == {"reuploader-0"} and len(rep["items"]) == 3
    rid = rep["id"]

    # The rest by id, acting through MIRRORWATCH_USER.
    rest = [m.id for m in list_matches(db, author="reuploader-1")]
    other = cli("report", "build", "--match", str(rest[0]), "--match", str(rest[1]), "--title", "Two more",
                env={"MIRRORWATCH_USER": "rex"})
    assert other.returncode == 0, other.stderr
    assert "2 mirrors on Hugging Face — Two more" in other.stdout

    listed = cli("report", "list", "--as", "vera")
    assert listed.returncode == 0 and "Two more" in listed.stdout and "3 confirmed" in listed.stdout
    rows = json.loads(cli("report", "list", "--json", "--as", "vera").stdout)
    assert [r["id"] for r in rows] == [rid + 1, rid] and rows[1]["items"] == 3

    shown = cli("report", "show", str(rid), "--as", "vera")
    assert shown.returncode == 0 and f"Report #{rid}" in shown.stdout and "reuploader-0/lora-0" in shown.stdout
    assert json.loads(cli("report", "show", str(rid), "--json", "--as", "vera").stdout)["outcome"] == {"confirmed": 3}

    # Renderings: the hub's policy clause and reporting route, one evidence block per mirror.
    text = cli("report", "render", str(rid), "--as", "vera")
    assert text.returncode == 0, text.stderr
    body = text.stdout
    assert body.startswith("Subject: 3 re-uploads of removed models on Hugging Face\n")
    assert "Hugging Face Content Policy (https://huggingface.co/content-guidelines)" in body
    assert '"Report the repository"' in body
    for repo in ("reuploader-0/lora-0", "reuploader-0/lora-2", "reuploader-0/lora-4"):
        assert f"Repository: {repo} (uploaded by reuploader-0)" in body
    assert body.count("SHA256: ") >= 3

    md_path = tmp_path / "out" / "report.md"
    md_path.parent.mkdir()
    md = cli("report", "render", str(rid), "--format", "markdown", "-o", str(md_path), "--as", "vera")
    assert md.returncode == 0, md.stderr
    doc = md_path.read_text()
    assert doc.startswith("# 3 re-uploads of removed models on Hugging Face\n")
    assert "**Where to report:**" in doc and "## 1. reuploader-0/lora-" in doc and "## 3. reuploader-0/lora-" in doc
    assert doc.count("- File: lora.safetensors, ") == 3
    assert sorted(p.name for p in md_path.parent.iterdir()) == ["report.md"]  # no temporary file left

    table = list(csv.DictReader(io.StringIO(cli("report", "render", str(rid), "-f", "csv", "--as", "vera").stdout)))
    assert len(table) == 3 and {r["uploader"] for r in table} == {"reuploader-0"}
    js = json.loads(cli("report", "render", str(rid), "-f", "json", "--as", "vera").stdout)
    assert js["report_policy"].startswith("the Hugging Face Content Policy") and len(js["items"]) == 3

    # Lifecycle: only a reviewer sends and closes; a draft cannot be closed.
    assert cli("report", "mark-sent", str(rid), "--as", "vera").returncode == 5
    early = cli("report", "close", str(rid), "--as", "rex")
    assert early.returncode == 4 and "only sent reports can be closed" in early.stderr
    sent = cli("report", "mark-sent", str(rid), "--note", "ticket 42", "--as", "rex", "--json")
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout)["outcome"] == {"reported": 3}
    again = cli("report", "mark-sent", str(rid), "--as", "rex")
    assert again.returncode == 4 and "already sent" in again.stderr
    closed = cli("report", "close", str(rid), "--as", "rex")
    assert closed.returncode == 0 and "closed" in closed.stdout
    assert {m.state for m in list_matches(db, author="reuploader-0")} == {"reported"}
    assert json.loads(cli("report", "show", str(rid), "--json", "--as", "rex").stdout)["state"] == "closed"

    # Audited as the web audits: the acting account, the action, the report.
    assert _audit(db) == [("rex", "report.create", str(rid)), ("rex", "report.create", str(rid + 1)),
                          ("rex", "report.sent", str(rid)), ("rex", "report.close", str(rid))]


def test_bad_ids_states_and_formats(swept, cli, tmp_path):
    missing = cli("report", "show", "999", "--as", "vera")
    assert missing.returncode == 3 and "no report with id 999" in missing.stderr
    unknown = cli("report", "build", "--match", "999999", "--as", "rex")
    assert unknown.returncode == 3 and "no match with id 999999" in unknown.stderr
    wrong = cli("report", "build", "--state", "new", "--as", "rex")
    assert wrong.returncode != 0 and "--state must be confirmed" in wrong.stderr
    both = cli("report", "build", "--state", "confirmed", "--match", "1", "--as", "rex")
    assert both.returncode != 0 and "either --match" in both.stderr
    empty = cli("report", "build", "--state", "confirmed", "--bank", "no-such-bank", "--as", "rex")
    assert empty.returncode == 3 and "no confirmed mirror" in empty.stderr
    fmt = cli("report", "render", "1", "--format", "pdf", "--as", "vera")
    assert fmt.returncode != 0 and "--format must be one of" in fmt.stderr
    bad_state = cli("report", "list", "--state", "lost", "--as", "vera")
    assert bad_state.returncode != 0 and "--state must be one of" in bad_state.stderr
    for out in (missing, unknown, wrong, both, empty, fmt, bad_state):
        assert "Traceback" not in out.stderr


def test_user_templates_override_the_shipped_ones(swept, cli, tmp_path):
    rid = json.loads(cli("report", "build", "--state", "confirmed", "--as", "rex", "--json").stdout)[0]["id"]
    mine = tmp_path / "templates"
    mine.mkdir()
    (mine / "report.txt.j2").write_text("Team template for #{{ report.id }}: {{ items | length }} files\n"
                                        "{% for it in items %}{{ it.repo_id }}\n{% endfor %}")
    env = {"MIRRORWATCH_REPORT_TEMPLATES": str(mine)}
    out = cli("report", "render", str(rid), "--as", "vera", env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"Team template for #{rid}: 6 files\n") and "reuploader-1/lora-5" in out.stdout
    # Markdown was not overridden: the shipped template still serves it.
    md = cli("report", "render", str(rid), "-f", "markdown", "--as", "vera", env=env)
    assert md.returncode == 0 and md.stdout.startswith("# ")
    # A per-hub template wins over the folder-wide one.
    (mine / "hf").mkdir()
    (mine / "hf" / "report.txt.j2").write_text("Only for {{ report.hub_name }}: {{ route is not none }}\n")
    assert cli("report", "render", str(rid), "--as", "vera", env=env).stdout == "Only for Hugging Face: True\n"
    gone = cli("report", "render", str(rid), "--as", "vera", env={"MIRRORWATCH_REPORT_TEMPLATES": str(tmp_path / "x")})
    assert gone.returncode != 0 and "not a folder" in gone.stderr


HOSTILE = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ report.__class__ }}",
    "{% for it in items %}{{ it.why.append('x') }}{% endfor %}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ no_such_variable }}",
    "{% if %}",
]


def test_a_template_reaching_for_internals_fails_safely(swept, cli, tmp_path):
    rid = json.loads(cli("report", "build", "--state", "confirmed", "--as", "rex", "--json").stdout)[0]["id"]
    mine = tmp_path / "templates"
    mine.mkdir()
    target = tmp_path / "report.txt"
    for hostile in HOSTILE:
        (mine / "report.txt.j2").write_text(f"before\n{hostile}\nafter\n")
        out = cli("report", "render", str(rid), "-o", str(target), "--as", "vera",
                  env={"MIRRORWATCH_REPORT_TEMPLATES": str(mine)})
        assert out.returncode == 1, (hostile, out.stdout + out.stderr)
        assert "report template report.txt.j2" in out.stderr and "failed" in out.stderr, hostile
        assert "Traceback" not in out.stderr and "<class" not in out.stderr + out.stdout, hostile
        assert not target.exists() and list(tmp_path.glob(".report.txt.*")) == [], hostile
