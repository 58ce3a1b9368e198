"""Recheck: known mirrors re-visited; repo and file statuses recorded over time, matches follow."""

from __future__ import annotations

from sqlalchemy import select

from mirrorwatch.services.matches import list_matches
from mirrorwatch.store.models import StatusEvent
from mirrorwatch.sweep.recheck import recheck
from mirrorwatch.testhub import Hub, Repo, RepoFile
from pytest_testhub import hf_env, testhub  # noqa: F401
from sweepfixtures import bank_sha, hf, make_bank, planted, sweep


def states(db) -> dict[str, tuple[str, str, str]]:
    return {r.repo_id: (r.state, r.repo_status, r.file_status) for r in list_matches(db)}


def test_recheck_records_status_over_time(db, testhub):  # noqa: F811
    make_bank(db, 6)
    hub = Hub([Repo(rid, files=files) for rid, files in planted(6, extra_files=False).items()])
    running = testhub(hub)
    sweep(db, hf(running))
    assert all(v == ("new", "live", "present") for v in states(db).values())

    hub.remove("reuploader-0/lora-0")
    hub.set_disabled("reuploader-1/lora-1")
    hub.set_gated("reuploader-2/lora-2", "manual")
    hub.update_files("reuploader-0/lora-3", [RepoFile("other.safetensors", size=10, sha256="ab" * 32)])
    hub.update_files("reuploader-1/lora-4", [RepoFile("lora.safetensors", size=10, sha256="cd" * 32)])
    summary = recheck(db, hf(running))
    assert summary.repos == 6 and summary.errors == 0
    st = states(db)
    assert st["reuploader-0/lora-0"] == ("gone", "removed", "present")
    assert st["reuploader-1/lora-1"] == ("gone", "disabled", "present")
    assert st["reuploader-2/lora-2"] == ("new", "gated", "present")
    assert st["reuploader-0/lora-3"] == ("gone", "live", "gone")
    assert st["reuploader-1/lora-4"] == ("gone", "live", "changed")
    assert st["reuploader-2/lora-5"] == ("new", "live", "present")

    # the re-upload comes back: the match reopens
    hub.update_files("reuploader-0/lora-3", [RepoFile("lora.safetensors", size=10, sha256=bank_sha(3))])
    recheck(db, hf(running))
    assert states(db)["reuploader-0/lora-3"] == ("new", "live", "present")
    with db.session() as s:
        history = [(e.status, e.detail) for e in s.scalars(select(StatusEvent).order_by(StatusEvent.id))]
    assert ("removed", "repository not found (deleted or made private)") in history
    assert any(h[0] == "gone" for h in history) and any(h[0] == "changed" for h in history)
    assert any(h[0] == "present" for h in history)
