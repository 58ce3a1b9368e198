"""The README's first command: a whole mirrorwatch flow on this machine, offline.

It builds a demo bank from a generated sheet of invented removed models, starts a local demo hub
(the test hub on 127.0.0.1) where some of those models were re-uploaded under generic names — by
one batch uploader among others, some exact copies, some altered — sweeps it, rechecks after one
re-upload is taken down, and serves the web app with a demo login printed on the terminal.

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


def build_demo(folder: Path, *, say: Callable[[str], None] = print, repos: int = 240) -> tuple[Any, Any, DemoResult]:
    """Set up the demo in `folder` (made anew); returns (db, running hub, result). Caller stops the hub."""
    import hashlib

    from mirrorwatch.hubs.huggingface.hub import HuggingFaceHub
    from mirrorwatch.services.banks import create_bank
    from mirrorwatch.services.imports import import_file
    from mirrorwatch.store.db import Database
    from mirrorwatch.sweep.recheck import recheck
    from mirrorwatch.sweep.runner import Sweep, SweepOptions
    from mirrorwatch.testhub import Hub, Repo, RepoFile, generate_repos, serve

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
    hub = Hub([*repo_list, gated])
    running = serve(hub)
    say(f"demo hub (a local Hugging Face API on {running.url}): {len(hub)} repos, some holding re-uploads")

    t1 = time.perf_counter()
    hf = HuggingFaceHub(running.url)
    sweep = Sweep(db, hf, SweepOptions(scope={"sort": "createdAt"}, concurrency=8, resume=False, deep=True)).run()
    timings["sweep"] = time.perf_counter() - t1
    c = sweep.counts
    say(f"sweep: {c['listed']} repos listed, {c['candidates']} with model files, {c['hashes']} sha256s from hub "
        f"metadata, {c['headers_read']} headers read by range requests, {c['fingerprinted']} LoRAs fingerprinted "
        f"(transient reads), {c['matches']} matches in {timings['sweep']:.1f}s")

    hub.remove("backup-user-7/test-model")  # a takedown happened
    rc = recheck(db, hf)
    say(f"recheck: {rc.repos} mirrors visited; " + ", ".join(f"{k} {v}" for k, v in sorted(rc.statuses.items())))
    timings["total"] = time.perf_counter() - t0
    result = DemoResult(folder=folder, db_url=db.url, hub_url=running.url, entries=summary.added,
                        sweep=sweep.to_dict(), recheck=rc.to_dict(), timings=timings)
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
                   "hashes": civitai_hashes(h.values)}],
    }


def demo_login(db) -> tuple[str, str]:
    from mirrorwatch.services.users import add_user

    password = secrets.token_urlsafe(12)
    add_user(db, "demo", "admin", password, actor="demo")
    return "demo", password
