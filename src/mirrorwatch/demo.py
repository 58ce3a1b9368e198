"""The README's first command: a whole mirrorwatch flow on this machine, offline.

It builds a demo bank from a generated sheet of invented removed models, starts a local demo hub
(the test hub on 127.0.0.1) where some of those models were re-uploaded under generic names — by
one batch uploader among others, some exact copies, some altered, one inside a zip in a dataset
repo of previews and captions, one in a Space beside its app — and a local Civitai API where one
came back under a new name; sweeps both (every repo type), rechecks after one re-upload is taken
down, and serves the web app with a demo login printed on the terminal.

Every name is invented; the model files are generated LoRA-shaped tensors held in memory by the
demo hub only (mirrorwatch itself never stores model files)."""

from __future__ import annotations

import csv
import json
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEMO_PEOPLE = [
    "Mira Quellfeld", "Tavio Brenn", "Lusa Okonkwe-Varr", "Dane Hollowmere", "Ysolde Prank", "Kito Marrowby",
    "Zéphine Arlo", "Bram Oudekerk", "Nell Saffire", "Orrin Vatche", "Pema Lindqvarr", "Ruthe Calloway-Ness",
]


@dataclass
class DemoResult:
    folder: Path
    db_url: str
    hub_url: str
    entries: int
    sweep: dict[str, Any]
    recheck: dict[str, Any]
    login: tuple[str, str] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    civitai_sweep: dict[str, Any] = field(default_factory=dict)
    civitai_url: str = ""
    matches: list[dict[str, Any]] = field(default_factory=list)
    stop: list[Callable[[], None]] = field(default_factory=list)  # what to stop when the demo ends


def _loras(n: int) -> list[tuple[bytes, dict[str, str]]]:
    """n small SD1.5-shaped LoRA files (bytes) with kohya metadata naming invented people; each
    embeds its real AutoV3 as `sshs_model_hash`, as kohya's trainer does."""
    import tempfile

    from mirrorwatch.corpus.generate import generate_lora
    from mirrorwatch.corpus.transforms import write_safetensors
    from mirrorwatch.hashing.engine import hash_file

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            lf = generate_lora("sd15", seed=9000 + i, rank=4)
            slug = DEMO_PEOPLE[i].lower().replace(" ", "_")
            lf.metadata.update({"ss_output_name": slug, "modelspec.title": DEMO_PEOPLE[i]})
            lf.metadata["ss_tag_frequency"] = json.dumps({f"10_{slug} person": {slug: 40}})
            p = write_safetensors(Path(tmp) / f"{i}.safetensors", lf.tensors, lf.metadata, "fp16")
            lf.metadata["sshs_model_hash"] = hash_file(p).autov3_full
            p = write_safetensors(p, lf.tensors, lf.metadata, "fp16")
            out.append((p.read_bytes(), lf.metadata))
    return out


def _rewrite_header(data: bytes, change) -> bytes:
    """The same tensor bytes under a header changed by `change(header_dict)`: SHA256 changes,
    the tensor bytes (AutoV3) do not."""
    import struct

    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + n])
    change(header)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + data[8 + n :]


def _edit_metadata(data: bytes, changes: dict[str, str]) -> bytes:
    """Edited metadata (a re-upload script renaming the model); the embedded sshs_model_hash stays."""
    return _rewrite_header(data, lambda h: h.setdefault("__metadata__", {}).update(changes))


def _resave_without_metadata(data: bytes) -> bytes:
    """Metadata stripped (what archivists' scripts often do)."""
    return _rewrite_header(data, lambda h: h.pop("__metadata__", None))


def _converted(data: bytes) -> bytes:
    """Metadata stripped, keys converted to diffusers/PEFT and weights to bf16: no hash survives."""
    import tempfile

    from mirrorwatch.corpus.generate import LoraFile
    from mirrorwatch.corpus.transforms import convert_dtype, kohya_to_peft, strip_metadata
    from mirrorwatch.match.fingerprint.tensors import open_tensors

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.safetensors"
        src.write_bytes(data)
        with open_tensors(src) as st:
            tensors = {k: st[k] for k in st}
        lf = LoraFile(tensors, {}, "fp16", "sd15", "kohya")
        out = convert_dtype(kohya_to_peft(strip_metadata(lf)), "bf16").write(Path(tmp) / "out.safetensors")
        return out.read_bytes()


def _zip_of(members: list[tuple[str, bytes]]) -> bytes:
    """A zip archive (Python's own zipfile writer, members stored) of the given files."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        for name, data in members:
            z.writestr(zipfile.ZipInfo(name, date_time=(2024, 3, 1, 12, 0, 0)), data)
    return buf.getvalue()


def _archive_dataset(files: list[tuple[bytes, dict[str, str]]]) -> Any:
    """A dataset repo like an archivist's bulk upload: 1,200 preview and caption files (more than one
    file list is trusted for: its tree is paged) and a zip of removed LoRAs."""
    from mirrorwatch.testhub import Repo, RepoFile

    zipped = _zip_of([(f"loras/{DEMO_PEOPLE[10].split()[0].lower()}_v1.safetensors", files[10][0]),
                      ("loras/README.txt", b"saved before the takedown\n")])
    previews = [RepoFile(f"previews/{i:04d}.png", size=48_000 + i) for i in range(600)]
    captions = [RepoFile(f"captions/{i:04d}.txt", size=120 + i % 50) for i in range(600)]
    return Repo("lora-vault/removed-loras-2024", repo_type="dataset",
                files=[RepoFile("README.md", content=b"# archive\n"), *previews, *captions,
                       RepoFile("archives/removed-loras.zip", content=zipped)])


def _lora_space(files: list[tuple[bytes, dict[str, str]]]) -> Any:
    """A Space shipping a LoRA beside its app (in LFS: its sha256 is known to the hub)."""
    from mirrorwatch.testhub import Repo, RepoFile

    return Repo("pixel-playground/style-tryout", repo_type="space", files=[
        RepoFile("app.py", content=b"import gradio as gr\n"), RepoFile("requirements.txt", content=b"gradio\n"),
        RepoFile("loras/style.safetensors", content=files[3][0], lfs=True)])


def _civitai_models(files: list[tuple[bytes, dict[str, str]]], shas: list[str]) -> list[Any]:
    """A local Civitai: invented models, and one banked model re-uploaded under a new name and ids."""
    from datetime import datetime

    from mirrorwatch.testhub.civitai import CFile, CModel, CVersion, generate_models

    reupload = CModel(912_345, "Soft Portrait Style", "style-collector", [CVersion(
        998_877, "v1.0", datetime(2026, 11, 2, 9, 0), [CFile("soft_portrait.safetensors", sha256=shas[1],
                                                            size_kb=round(len(files[1][0]) / 1024, 2), id=1_776_655)])])
    return [*generate_models(30, seed=11, start_id=600_000), reupload]


def build_demo(folder: Path, *, say: Callable[[str], None] = print, repos: int = 240) -> tuple[Any, Any, DemoResult]:
    """Set up the demo in `folder` (made anew); returns (db, running hub, result). Caller stops the hub
    (and whatever `result.stop` holds)."""
    import hashlib

    from mirrorwatch.formats.archives import ARCHIVE_EXTENSIONS
    from mirrorwatch.hubs.base import WEIGHT_EXTENSIONS
    from mirrorwatch.hubs.civitai.hub import CivitaiHub
    from mirrorwatch.hubs.huggingface.hub import HuggingFaceHub
    from mirrorwatch.services.banks import create_bank
    from mirrorwatch.services.imports import import_file
    from mirrorwatch.services.matches import list_matches
    from mirrorwatch.store.db import Database
    from mirrorwatch.sweep.recheck import recheck
    from mirrorwatch.sweep.runner import Sweep, SweepOptions
    from mirrorwatch.testhub import Hub, Repo, RepoFile, generate_repos, serve
    from mirrorwatch.testhub.civitai import CivitaiApi, serve_civitai

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    db = Database.open(str(folder / "mirrorwatch.db"))

    files = _loras(len(DEMO_PEOPLE))
    shas = [hashlib.sha256(b).hexdigest() for b, _ in files]
    sheet = folder / "removed-models.csv"
    with sheet.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["Model Name", "Civitai URL", "SHA256"])
        for i, person in enumerate(DEMO_PEOPLE):
            url = f"https://civitai.com/models/{700100 + i}/{person.lower().replace(' ', '-')}?modelVersionId={800100 + i}"
            sha = shas[i].upper() if i % 3 == 0 else shas[i]
            w.writerow([f"{person} - LoRA", url, "" if i == len(DEMO_PEOPLE) - 1 else sha])
    create_bank(db, "demo-removed", description="Invented removed models for the demo", source=str(sheet.name))
    summary = import_file(db, "demo-removed", sheet, user="demo")
    # Civitai's API JSON for two of them adds the forms a sheet lacks (AutoV3 among them)
    civitai = folder / "civitai-versions.json"
    civitai.write_text(json.dumps([_civitai_version(i, files[i][0]) for i in (9, 10)], indent=1))
    import_file(db, "demo-removed", civitai, user="demo")
    timings["bank"] = time.perf_counter() - t0
    say(f"bank 'demo-removed': {summary.added} removed models imported from {sheet}")

    # The demo hub: generated repos plus re-uploads of banked models.
    planted: dict[str, list[RepoFile]] = {}
    for i in range(5):  # one account re-uploading in bulk under generic names
        planted[f"lora-archive-bot/LORA-{i + 1}"] = [RepoFile("model.safetensors", content=files[i][0])]
    planted["backup-user-7/test-model"] = [RepoFile("lora.safetensors", content=files[5][0])]
    planted["someone-else/misc"] = [RepoFile(f"loras/{DEMO_PEOPLE[6].split()[0].lower()}.safetensors",
                                             content=files[6][0])]
    # altered copies: exact hashes will not find these (robust matching will)
    planted["reupload-hub/sdxl-and-more"] = [RepoFile("pytorch_lora_weights.safetensors",
                                                      content=_resave_without_metadata(files[7][0]))]
    planted["mirror-mirror/archive"] = [RepoFile("lora_v1.safetensors", content=files[7][0])]
    # altered re-uploads the robust tiers catch: metadata edited (header evidence), and stripped and
    # converted to diffusers keys in bf16 (weight fingerprint, learned from the exact copy above)
    planted["renamer-22/LORA"] = [RepoFile("LORA.safetensors", content=_edit_metadata(
        files[9][0], {"ss_output_name": "LORA", "modelspec.title": "Test model"}))]
    planted["converter-9/diffusers-loras"] = [RepoFile("pytorch_lora_weights.safetensors",
                                                       content=_converted(files[7][0]))]
    repo_list = generate_repos(repos, seed=7, planted=planted)
    gated = Repo("quiet-archive/gated-copy", files=[RepoFile("model.safetensors", content=files[8][0])], gated="auto")
    hub = Hub([*repo_list, gated, _archive_dataset(files), _lora_space(files)])
    running = serve(hub)
    say(f"demo hub (a local Hugging Face API on {running.url}): {len(hub)} repos (models, a dataset archive, "
        f"a Space), some holding re-uploads")

    t1 = time.perf_counter()
    exts = WEIGHT_EXTENSIONS + ARCHIVE_EXTENSIONS
    hf = HuggingFaceHub(running.url, extensions=exts)
    sweep = Sweep(db, hf, SweepOptions(scope={"sort": "createdAt"}, extensions=exts, concurrency=8, resume=False,
                                       deep=True)).run()
    timings["sweep"] = time.perf_counter() - t1
    c = sweep.counts
    say(f"sweep (models, datasets, Spaces): {c['listed']} repos listed, {c['candidates']} with model files, "
        f"{c['hashes']} sha256s from hub metadata, {c['headers_read']} headers read by range requests, "
        f"{c['fingerprinted']} LoRAs fingerprinted (transient reads), {c['matches']} matches in "
        f"{timings['sweep']:.1f}s")

    stop: list[Callable[[], None]] = [running.stop]
    civitai_cm = serve_civitai(CivitaiApi(_civitai_models(files, shas)))
    civitai = civitai_cm.__enter__()
    stop.append(lambda: civitai_cm.__exit__(None, None, None))
    t2 = time.perf_counter()
    cv = Sweep(db, CivitaiHub(civitai.url, interval_s=0.0), SweepOptions(scope={"sort": "createdAt"}, concurrency=4,
                                                                        resume=False)).run()
    timings["civitai_sweep"] = time.perf_counter() - t2
    say(f"Civitai sweep (a local Civitai API on {civitai.url}): {cv.counts['listed']} models listed, "
        f"{cv.counts['hashes']} files by the listing's hashes, {cv.counts['matches']} matches")

    hub.remove("backup-user-7/test-model")  # a takedown happened
    rc = recheck(db, hf)
    say(f"recheck: {rc.repos} mirrors visited; " + ", ".join(f"{k} {v}" for k, v in sorted(rc.statuses.items())))
    timings["total"] = time.perf_counter() - t0
    found = [{"id": m.id, "entry": m.entry_name, "hub": m.hub, "repo_type": m.repo_type, "repo_id": m.repo_id,
              "path": m.path, "tier": m.tier, "tier_name": m.tier_name, "state": m.state,
              "why": m.why[0] if m.why else ""} for m in list_matches(db)]
    say(f"\n{len(found)} matches found:")
    for m in found:
        where = m["repo_id"] if m["repo_type"] in ("model", "folder") else f"{m['repo_type']}s/{m['repo_id']}"
        say(f"  #{m['id']} {m['entry']} <- {m['hub']} {where} {m['path']} ({m['tier_name']}, {m['state']}): "
            f"{m['why']}")
    result = DemoResult(folder=folder, db_url=db.url, hub_url=running.url, entries=summary.added,
                        sweep=sweep.to_dict(), recheck=rc.to_dict(), timings=timings, civitai_sweep=cv.to_dict(),
                        civitai_url=civitai.url, matches=found, stop=stop)
    return db, running, result


def _civitai_version(i: int, data: bytes) -> dict[str, Any]:
    """A Civitai model-version answer for demo model i (the shape of shared/samples)."""
    from mirrorwatch.hashing.engine import hash_bytes
    from mirrorwatch.hashing.forms import civitai_hashes

    h = hash_bytes(data)
    return {
        "id": 800100 + i, "modelId": 700100 + i, "name": "v1", "baseModel": "SD 1.5",
        "model": {"name": f"{DEMO_PEOPLE[i]} - LoRA", "type": "LORA", "poi": True},
        "trainedWords": [DEMO_PEOPLE[i].split()[0].lower()],
        "files": [{"name": f"{DEMO_PEOPLE[i].split()[0].lower()}.safetensors", "type": "Model", "primary": True,
                   "sizeKB": round(len(data) / 1024, 2), "hashes": civitai_hashes(h.values)}],
    }


def demo_login(db) -> tuple[str, str]:
    from mirrorwatch.services.users import add_user

    password = secrets.token_urlsafe(12)
    add_user(db, "demo", "admin", password, actor="demo")
    return "demo", password
