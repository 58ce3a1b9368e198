"""Repo types through the pipeline: dataset and Space repos swept over HTTP with the real
huggingface_hub client (listing `/api/datasets`, `/api/spaces`; `dataset_info`/`space_info`; the tree
paged for big repos; resolvers under `/datasets/...`, `/spaces/...`), a model and a dataset sharing
an id kept apart, the incremental position kept per type, recheck by type, and the web links."""

from __future__ import annotations

import json
import urllib.request

import pytest
from sqlalchemy import select

from mirrorwatch.hubs.base import Hub as HubPort
from mirrorwatch.hubs.huggingface.hub import HuggingFaceHub
from mirrorwatch.services.matches import list_matches
from mirrorwatch.services.repos import list_repos
from mirrorwatch.services.scans import incremental_since
from mirrorwatch.services.where import where
from mirrorwatch.store.models import HubFile, HubRepo, ScanError, ScanRun
from mirrorwatch.sweep.recheck import recheck
from mirrorwatch.sweep.runner import Sweep, SweepOptions
from mirrorwatch.testhub import Hub, Repo, RepoFile, generate_repos
from pytest_testhub import hf_env, testhub  # noqa: F401
from sweepfixtures import bank_sha, hf, make_bank, sweep


def _space_lora() -> bytes:
    """A tiny safetensors file (an empty header): small enough to live in a Space's git, not LFS."""
    header = b"{}      "
    return len(header).to_bytes(8, "little") + header


def archive_dataset(n_other: int = 1500) -> Repo:
    """A dataset repo like a bulk archive: thousands of small files, some LoRAs (banked ones among them)."""
    files = [RepoFile(f"previews/{i:05d}.png", size=40_000 + i) for i in range(n_other)]
    files += [RepoFile(f"loras/person-{i}.safetensors", size=140_000_000 + i, sha256=bank_sha(i)) for i in (1, 2)]
    files += [RepoFile(f"loras/other-{i}.safetensors", size=9_000_000 + i) for i in range(8)]
    return Repo("archivist/removed-loras", repo_type="dataset", files=files)


def lora_space() -> Repo:
    """A Space shipping LoRAs beside its app: one in LFS (banked), one kept in git (no LFS, no sha256)."""
    return Repo("demo-maker/lora-studio", repo_type="space", files=[
        RepoFile("app.py", content=b"import gradio as gr\n"),
        RepoFile("requirements.txt", content=b"gradio\n"),
        RepoFile("weights/style.safetensors", size=72_000_000, sha256=bank_sha(3)),
        RepoFile("weights/tiny.safetensors", content=_space_lora(), lfs=False),
    ])


def test_dataset_and_space_sweep_over_http(db, testhub):  # noqa: F811
    make_bank(db, 4)
    running = testhub(Hub([*generate_repos(10, seed=4), archive_dataset(), lora_space()]), tree_page_size=100)
    out = sweep(db, hf(running))
    assert out["status"] == "finished", out
    stats = running.stats.by_endpoint
    assert stats["list_models"] == 1 and stats["list_datasets"] == 1 and stats["list_spaces"] == 1
    # the dataset's 1,510 files: never taken from one siblings answer, its tree paged (100 a page here)
    assert stats["tree"] == 16
    assert running.stats.by_repo["datasets/archivist/removed-loras"] >= 16

    found = {(m.repo_type, m.repo_id, m.path, m.entry_name) for m in list_matches(db)}
    assert found == {
        ("dataset", "archivist/removed-loras", "loras/person-1.safetensors", "Invented Person 1"),
        ("dataset", "archivist/removed-loras", "loras/person-2.safetensors", "Invented Person 2"),
        ("space", "demo-maker/lora-studio", "weights/style.safetensors", "Invented Person 3"),
    }
    with db.session() as s:
        repos = {(r.repo_type, r.repo_id): r for r in s.scalars(select(HubRepo))}
        assert ("dataset", "archivist/removed-loras") in repos and ("space", "demo-maker/lora-studio") in repos
        assert {r.repo_type for r in repos.values()} == {"model", "dataset", "space"}
        ds = repos[("dataset", "archivist/removed-loras")]
        assert s.query(HubFile).filter_by(repo_pk=ds.id).count() == 10  # weight files only, all of them
        # the Space's git-kept LoRA: recorded without a sha256, with the reason, named as a Space
        tiny = s.scalar(select(HubFile).where(HubFile.path == "weights/tiny.safetensors"))
        assert tiny is not None and tiny.sha256 is None
        errors = {(e.repo_id, e.path): e.reason for e in s.scalars(select(ScanError))}
    assert "kept in git, not LFS" in errors[("spaces/demo-maker/lora-studio", "weights/tiny.safetensors")]
    # every request about the dataset named it as a dataset (never the model route of the same id)
    assert "archivist/removed-loras" not in running.stats.by_repo


def test_a_model_and_a_dataset_with_one_id_are_kept_apart(db, testhub, monkeypatch):  # noqa: F811
    monkeypatch.setenv("MIRRORWATCH_HF_URL", "https://huggingface.co")
    make_bank(db, 2)
    running = testhub(Hub([
        Repo("twin/lora-pack", files=[RepoFile("a b.safetensors", size=150_000_000, sha256=bank_sha(0))]),
        Repo("twin/lora-pack", repo_type="dataset",
             files=[RepoFile("pack/a b.safetensors", size=150_000_001, sha256=bank_sha(1))]),
    ]))
    assert sweep(db, hf(running))["status"] == "finished"
    rows = sorted(list_matches(db), key=lambda m: m.repo_type)
    assert [(m.repo_type, m.repo_id, m.entry_name) for m in rows] == [
        ("dataset", "twin/lora-pack", "Invented Person 1"), ("model", "twin/lora-pack", "Invented Person 0")]
    assert rows[0].repo_pk != rows[1].repo_pk
    # links: the dataset under /datasets/, the file under blob/main, percent-encoded
    assert rows[0].url == "https://huggingface.co/datasets/twin/lora-pack/blob/main/pack/a%20b.safetensors"
    assert rows[1].url == "https://huggingface.co/twin/lora-pack/blob/main/a%20b.safetensors"
    urls = {r.repo_type: r.url for r in list_repos(db).items}
    assert urls == {"model": "https://huggingface.co/twin/lora-pack",
                    "dataset": "https://huggingface.co/datasets/twin/lora-pack"}
    # the reverse look-up names the real type
    assert [(f.repo_type, f.repo_id) for f in where(db, bank_sha(1)).files] == [("dataset", "twin/lora-pack")]
    # a second sweep: both unchanged (each compared with its own type's row)
    again = sweep(db, hf(running), full=True)
    assert again["counts"]["unchanged"] == 2 and again["counts"]["fetched"] == 0


class StopAtDatasets(HuggingFaceHub):
    """A sweep killed while it lists datasets (after the models' listing ran to its end)."""

    armed = True

    def list_pages(self, scope):
        if scope.get("repo_type") == "dataset" and StopAtDatasets.armed:
            StopAtDatasets.armed = False
            raise KeyboardInterrupt
        yield from super().list_pages(scope)


def test_the_sweep_keeps_its_position_per_repo_type(db, testhub):  # noqa: F811
    make_bank(db, 3)
    running = testhub(Hub([Repo("up/model-a", files=[RepoFile("m.safetensors", size=150_000_000, sha256=bank_sha(0))]),
                           archive_dataset(20), lora_space()]))
    opts = SweepOptions(scope={"sort": "createdAt"}, concurrency=4)
    with pytest.raises(KeyboardInterrupt):
        Sweep(db, StopAtDatasets(running.url), opts).run()
    with db.session() as s:
        run = s.scalar(select(ScanRun))
        assert run.status == "interrupted" and run.checkpoint["types"] == {"model": "listed"}
    assert incremental_since(db, "hf", "model") is not None  # models were listed to their end
    assert incremental_since(db, "hf", "dataset") is None and incremental_since(db, "hf", "space") is None

    before = running.stats.by_endpoint["list_models"]
    out = Sweep(db, hf(running), opts).run()
    assert out.resumed and out.status == "finished"
    assert running.stats.by_endpoint["list_models"] == before  # the models' listing was not asked again
    assert running.stats.by_endpoint["list_datasets"] == 1 and running.stats.by_endpoint["list_spaces"] == 1
    assert {(m.repo_type, m.entry_name) for m in list_matches(db)} == {
        ("model", "Invented Person 0"), ("dataset", "Invented Person 1"), ("dataset", "Invented Person 2")}
    with db.session() as s:
        assert s.scalar(select(ScanRun)).checkpoint["types"] == {"model": "listed", "dataset": "listed",
                                                                 "space": "listed"}
    # each type's next incremental start is the start of the sweep that listed it
    assert all(incremental_since(db, "hf", t) is not None for t in ("model", "dataset", "space"))


def test_a_sweep_of_one_repo_type_lists_only_it(db, testhub):  # noqa: F811
    make_bank(db, 4)
    running = testhub(Hub([*generate_repos(5, seed=2), archive_dataset(30), lora_space()]))
    out = sweep(db, hf(running), repo_types=["space"])
    assert out["status"] == "finished"
    assert running.stats.by_endpoint["list_spaces"] == 1
    assert running.stats.by_endpoint["list_models"] == 0 and running.stats.by_endpoint["list_datasets"] == 0
    assert {m.repo_type for m in list_matches(db)} == {"space"}
    assert incremental_since(db, "hf", "space") is not None and incremental_since(db, "hf", "model") is None
    # --repo with the hub's URL form picks the type
    out = sweep(db, hf(running), repos=["datasets/archivist/removed-loras"])
    assert out["status"] == "finished" and out["counts"]["fetched"] == 1
    assert {m.repo_type for m in list_matches(db)} == {"space", "dataset"}


def test_recheck_of_a_dataset_repo(db, testhub):  # noqa: F811
    make_bank(db, 3)
    running = testhub(Hub([archive_dataset(20),
                           Repo("archivist/removed-loras", files=[RepoFile("x.safetensors", size=150_000_000,
                                                                           sha256=bank_sha(0))])]))
    assert sweep(db, hf(running))["status"] == "finished"
    hub = running.hub
    key = "datasets/archivist/removed-loras"
    hub.update_files(key, [f for f in hub.get(key).files if f.path != "loras/person-1.safetensors"])
    summary = recheck(db, hf(running))
    assert summary.repos == 2 and summary.errors == 0
    gone = [e for e in summary.events if e.get("path") == "loras/person-1.safetensors"]
    assert gone == [{"repo_id": "archivist/removed-loras", "repo_type": "dataset",
                     "path": "loras/person-1.safetensors", "status": "gone", "was": "present"}]
    states = {(m.repo_type, m.path): m.state for m in list_matches(db)}
    assert states[("dataset", "loras/person-1.safetensors")] == "gone"
    assert states[("dataset", "loras/person-2.safetensors")] == "new"
    assert states[("model", "x.safetensors")] == "new"
    # the dataset removed: only it is; the model of the same id stays live
    hub.remove(key)
    summary = recheck(db, hf(running), repo_ids=["datasets/archivist/removed-loras"])
    assert summary.repos == 1 and summary.statuses == {"removed": 1}
    with db.session() as s:
        assert {(r.repo_type, r.status) for r in s.scalars(select(HubRepo))} == {("dataset", "removed"),
                                                                                 ("model", "live")}


def test_the_test_hub_speaks_datasets_and_spaces_to_the_real_client(testhub):  # noqa: F811
    running = testhub(Hub([archive_dataset(1200), lora_space()]), tree_page_size=500)
    api = running.hf_api()
    (ds,) = list(api.list_datasets(expand=["siblings", "sha", "gated"]))
    assert ds.id == "archivist/removed-loras" and len(ds.siblings) == 1210
    (sp,) = list(api.list_spaces(expand=["siblings", "sha"]))
    assert sp.id == "demo-maker/lora-studio"
    info = api.space_info("demo-maker/lora-studio", files_metadata=True)
    assert info.sdk == "gradio"
    with urllib.request.urlopen(f"{running.url}/api/spaces/demo-maker/lora-studio") as r:  # the raw answer
        raw = json.loads(r.read())
    assert "library_name" not in raw and "pipeline_tag" not in raw and "modelId" not in raw
    lfs = {s.rfilename: s.lfs for s in info.siblings}
    assert lfs["weights/tiny.safetensors"] is None and lfs["weights/style.safetensors"].sha256 == bank_sha(3)
    tree = list(api.list_repo_tree("archivist/removed-loras", repo_type="dataset", recursive=True))
    assert sum(1 for e in tree if hasattr(e, "lfs")) == 1210  # three pages of 500, followed by the client
    (entry,) = api.get_paths_info("archivist/removed-loras", ["loras/person-1.safetensors"], repo_type="dataset")
    assert entry.lfs.sha256 == bank_sha(1)
    # a resolver HEAD under /datasets/ gives the sha256 from X-Linked-Etag, like a model's
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    meta = get_hf_file_metadata(hf_hub_url("archivist/removed-loras", "loras/person-2.safetensors",
                                           repo_type="dataset", endpoint=running.url))
    assert meta.etag == bank_sha(2)


def test_the_hub_port_declares_repo_types():
    from mirrorwatch.hubs.registry import HUBS

    assert HUBS["hf"].repo_types == ("model", "dataset", "space") == HuggingFaceHub.repo_types
    assert HUBS["civitai"].repo_types == ("model",) and HUBS["dir"].repo_types == ("folder",)
    assert HubPort.repo_types == ("model",)


def test_a_big_repo_is_written_and_matched_in_parts(db, testhub, monkeypatch):  # noqa: F811
    from mirrorwatch.sweep import runner

    monkeypatch.setattr(runner, "PERSIST_PART", 4)  # (2,000 by default) the 10 LoRAs in three parts
    make_bank(db, 3)
    running = testhub(Hub([archive_dataset(20)]))
    out = sweep(db, hf(running))
    assert out["counts"]["files"] == 10 and out["counts"]["matches"] == 2
    with db.session() as s:
        assert s.query(HubFile).count() == 10
    key = "datasets/archivist/removed-loras"
    running.hub.update_files(key, [f for f in running.hub.get(key).files
                                   if f.path not in ("loras/person-1.safetensors", "loras/other-0.safetensors")])
    out = sweep(db, hf(running), full=True)
    assert out["counts"]["files"] == 8 and out["counts"]["matches"] == 0
    with db.session() as s:
        gone = {f.path for f in s.scalars(select(HubFile).where(HubFile.status == "gone"))}
    assert gone == {"loras/person-1.safetensors", "loras/other-0.safetensors"}
    assert {m.path: m.state for m in list_matches(db)} == {"loras/person-1.safetensors": "gone",
                                                          "loras/person-2.safetensors": "new"}


def test_a_siblings_list_cut_short_is_never_trusted(db, testhub):  # noqa: F811
    """The Hub may cut a long `siblings` list short (huggingface_hub PR #3565: "well before 50k files";
    issue #3059): the LoRAs past the cut are still found, from the paged tree."""
    make_bank(db, 3)
    ds = archive_dataset(1500)  # the LoRAs sort after the 1,500 previews: all past the cut
    running = testhub(Hub([ds]), siblings_cap=1000)
    api = running.hf_api()
    (listed,) = list(api.list_datasets(expand=["siblings"]))
    assert len(listed.siblings) == 1000 and not any(s.rfilename.startswith("loras/") for s in listed.siblings)
    out = sweep(db, hf(running))
    assert out["status"] == "finished" and out["counts"]["files"] == 10 and out["counts"]["matches"] == 2


def test_a_tree_whose_pages_loop_or_leave_the_hub_is_refused(testhub):  # noqa: F811
    from mirrorwatch.hubs.base import RepoListing, SkipRepo

    running = testhub(Hub([archive_dataset(5)]))
    path = "/api/datasets/archivist/removed-loras/tree/main"
    entry = b'[{"type":"file","oid":"' + b"a" * 40 + b'","size":5,"path":"x.safetensors"}]'
    big = RepoListing("archivist/removed-loras", repo_type="dataset", files_count=5000)
    running.replays[path] = (200, [("Content-Type", "application/json"),
                                   ("Link", f'<{running.url}{path}?cursor=again>; rel="next"')], entry)
    running.replays[path + "?cursor=again"] = running.replays[path]
    with pytest.raises(SkipRepo, match="repeats a page"):
        hf(running).fetch_files(big, None)
    running.replays[path] = (200, [("Content-Type", "application/json"),
                                   ("Link", '<http://elsewhere.invalid/next>; rel="next"')], entry)
    with pytest.raises(SkipRepo, match="leaves"):
        hf(running).fetch_files(big, None)


def test_reports_and_exports_name_the_repo_type(db, testhub, monkeypatch):  # noqa: F811
    import csv
    import io

    from mirrorwatch.services import reports
    from mirrorwatch.services.exports import export_matches
    from mirrorwatch.services.review import QueueFilter, decide

    monkeypatch.setenv("MIRRORWATCH_HF_URL", "https://huggingface.co")
    make_bank(db, 4)
    running = testhub(Hub([archive_dataset(20), lora_space()]))
    assert sweep(db, hf(running))["status"] == "finished"
    ids = [m.id for m in list_matches(db)]
    decide(db, ids, "confirmed", None, "rex")
    (rep,) = reports.build_reports(db, ids, "rex")
    text = reports.render_text(rep)
    assert "3 files below, in 2 repositories" in text
    assert "Repository: archivist/removed-loras (dataset repository)" in text
    assert "Repository: demo-maker/lora-studio (Space repository)" in text
    assert "https://huggingface.co/datasets/archivist/removed-loras/blob/main/loras/person-1.safetensors" in text
    assert "https://huggingface.co/spaces/demo-maker/lora-studio/blob/main/weights/style.safetensors" in text
    assert "(dataset repository)" in reports.render_markdown(rep)
    rows = list(csv.DictReader(io.StringIO(reports.render_csv(rep))))
    assert sorted(r["repo_type"] for r in rows) == ["dataset", "dataset", "space"]
    _, chunks = export_matches(db, QueueFilter(state=None), "csv")
    exported = list(csv.DictReader(io.StringIO("".join(chunks))))
    assert sorted(r["repo_type"] for r in exported) == ["dataset", "dataset", "space"]


def test_the_api_and_pages_show_the_repo_type(db, testhub, monkeypatch):  # noqa: F811
    from fastapi.testclient import TestClient

    from mirrorwatch.services import users
    from mirrorwatch.web.app import create_app

    monkeypatch.setenv("MIRRORWATCH_HF_URL", "https://huggingface.co")
    make_bank(db, 4)
    running = testhub(Hub([archive_dataset(20), lora_space(),
                           Repo("archivist/removed-loras", files=[RepoFile("m.safetensors", size=150_000_000,
                                                                           sha256=bank_sha(0))])]))
    assert sweep(db, hf(running))["status"] == "finished"
    users.add_user(db, "vic", "viewer", actor="test")
    token = users.create_token(db, "vic", "t", actor="test")[1]
    with TestClient(create_app(db, secret_key="k"), headers={"Authorization": f"Bearer {token}"}) as c:
        repos = c.get("/api/repos").json()["items"]
        assert sorted((r["repo_type"], r["repo_id"], r["url"]) for r in repos) == [
            ("dataset", "archivist/removed-loras", "https://huggingface.co/datasets/archivist/removed-loras"),
            ("model", "archivist/removed-loras", "https://huggingface.co/archivist/removed-loras"),
            ("space", "demo-maker/lora-studio", "https://huggingface.co/spaces/demo-maker/lora-studio")]
        matches = c.get("/api/matches", params={"state": "new"}).json()["items"]
        assert {m["repo_type"] for m in matches} == {"model", "dataset", "space"}
        files = c.get("/api/files", params={"sha256": bank_sha(3)}).json()["files"]
        assert [(f["repo_type"], f["repo_id"]) for f in files] == [("space", "demo-maker/lora-studio")]
        ds = next(r for r in repos if r["repo_type"] == "dataset")
        detail = c.get(f"/api/repos/{ds['id']}").json()
        assert detail["repo"]["repo_type"] == "dataset" and {m["repo_type"] for m in detail["matches"]} == {"dataset"}
