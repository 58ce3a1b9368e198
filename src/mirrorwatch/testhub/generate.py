"""Synthetic repositories that look like the re-upload landscape mirrorwatch sweeps.

Invented accounts ("archivist-42"), generic repo names ("lora-archive-17", "test-model", "LORA"),
LoRA and checkpoint files with plausible sizes and deterministic fake sha256s (declared only: the
hub holds no bytes for them), small real README/.gitattributes/config files, repos without weights,
and a few gated, disabled and private repos. Everything derives from `seed`; names are made of
syllables, never a real person's name. `planted` puts chosen files into chosen repos (how a test
places a "removed model" for the sweeper to find). 20,000 repos take about a second.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from .model import Repo, RepoFile

T = TypeVar("T")

GENERATED_START = datetime(2024, 1, 1, tzinfo=UTC)

_USER_STEMS = (
    "archivist", "lora-keeper", "pixelmonk", "backup", "mirror", "datahoarder", "quietfox", "nightowl",
    "sd-fan", "modelvault", "tensorcrate", "latentloop", "diffuser", "ckpt-saver", "noisyseed", "retrowave",
    "gpu-poor", "anon", "collector", "vaultkeeper", "stablemind", "promptsmith", "weightwatch", "loraforge",
)
_REPO_TEMPLATES = (
    "lora-archive-{k}", "test-model", "test-model-{k}", "sdxl-loras", "LORA", "loras", "my-loras-{k}",
    "flux-lora-{k}", "sd15-backup", "model-dump-{k}", "civit-backup-{k}", "checkpoints", "random-stuff",
    "style-lora-{k}", "character-pack-{k}", "Test_model", "reupload-{k}", "models", "lora-collection",
    "pony-loras-{k}", "backup-{k}", "archive", "sdxl-{word}", "{word}-lora", "{word}-v{k}",
)
_PLAIN_TEMPLATES = (
    "notes", "dataset-tools", "tiny-config-{k}", "prompt-lists", "space-assets-{k}", "docs", "scripts-{k}",
    "{word}-prompts", "eval-results-{k}",
)
_STYLE_WORDS = (
    "inkwash", "neoncity", "pastel", "cyber", "watercolor", "moody", "retroanime", "sketchy", "glossy", "clay",
    "vapor", "noir", "chibi", "lowpoly", "oilpaint", "papercut", "filmgrain", "isometric", "pixelart", "dreamy",
)
_SYLLABLES = ("ka", "ve", "lo", "mi", "ra", "su", "te", "no", "bi", "zo", "ri", "ka", "an", "el", "ys", "or",
              "qu", "fa", "do", "ne", "ti", "ma", "xu", "le")
_BASES = ("sdxl", "sd-1.5", "flux", "pony")
_LICENSES = ("openrail++", "creativeml-openrail-m", "other", "apache-2.0", "mit")

_GITATTRIBUTES = (
    b"*.bin filter=lfs diff=lfs merge=lfs -text\n*.ckpt filter=lfs diff=lfs merge=lfs -text\n"
    b"*.gguf filter=lfs diff=lfs merge=lfs -text\n*.pt filter=lfs diff=lfs merge=lfs -text\n"
    b"*.pth filter=lfs diff=lfs merge=lfs -text\n*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
)

MB = 1_000_000
GB = 1_000_000_000


class _Rand:
    """random.Random with cheaper choice/randint (generation of 20,000 repos is dominated by them)."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed).random

    def choice(self, seq: Sequence[T]) -> T:
        return seq[int(self.random() * len(seq))]

    def randint(self, a: int, b: int) -> int:
        return a + int(self.random() * (b - a + 1))

    def paretovariate(self, alpha: float) -> float:
        return 1.0 / (1.0 - self.random()) ** (1.0 / alpha)


def _invented_name(rng: _Rand) -> str:
    c = rng.choice
    return c(_SYLLABLES) + c(_SYLLABLES) + (c(_SYLLABLES) if rng.random() < 0.5 else "")


def fake_sha256(seed: int, repo_id: str, path: str) -> str:
    """The deterministic sha256 a generated declared file gets."""
    return hashlib.sha256(f"testhub:{seed}:{repo_id}:{path}".encode()).hexdigest()


def _weight_files(rng: _Rand, seed: int, repo_id: str) -> list[RepoFile]:
    r = rng.random()
    count = 1 if r < 0.5 else rng.randint(2, 5) if r < 0.85 else rng.randint(6, 40)
    folder = rng.choice(("loras/", "checkpoints/", "unet/")) if rng.random() < 0.15 else ""
    out: list[RepoFile] = []
    seen: set[str] = set()
    for i in range(count):
        kind = rng.random()
        name = _invented_name(rng)
        if kind < 0.62:  # a LoRA
            form = rng.random()
            if form < 0.2:
                stem = f"{name}_v{rng.randint(1, 5)}"
            elif form < 0.4:
                stem = f"{name}-lora"
            elif form < 0.6:
                stem = f"{name}-{rng.randint(1, 20):06d}"
            elif form < 0.8:
                stem = f"{rng.choice(_STYLE_WORDS)}_{name}"
            else:
                stem = name
            path = stem + ".safetensors"
            size = int(9 * MB * (230 / 9) ** rng.random())
        elif kind < 0.72:  # a full checkpoint
            path = f"{name}_{rng.choice(('fp16', 'pruned', 'v1', 'final'))}.{rng.choice(('safetensors', 'ckpt'))}"
            size = rng.randint(int(2.0 * GB), int(7.0 * GB))
        elif kind < 0.82:
            path = rng.choice(("pytorch_lora_weights.bin", f"{name}.bin", "adapter_model.bin"))
            size = rng.randint(3 * MB, 200 * MB)
        elif kind < 0.92:  # textual inversion embeddings: tiny .pt files, still LFS by extension
            path = f"{name}.pt"
            size = rng.randint(4_000, 200_000)
        elif kind < 0.97:
            path = f"{name}-{rng.choice(('Q4_K_M', 'Q8_0', 'F16'))}.gguf"
            size = rng.randint(1 * GB, 8 * GB)
        else:
            path = rng.choice(("model.safetensors", "diffusion_pytorch_model.safetensors"))
            size = rng.randint(50 * MB, 5 * GB)
        path = folder + path
        if path in seen:
            path = path.replace(".", f"-{i}.", 1) if "." in path else f"{path}-{i}"
        if path in seen:
            continue
        seen.add(path)
        out.append(RepoFile(path, size=size, sha256=fake_sha256(seed, repo_id, path)))
    return out


def _readme(repo_id: str, tags: list[str], license_: str) -> bytes:
    tag_lines = "".join(f"- {t}\n" for t in tags[:4])
    return (f"---\nlicense: {license_}\ntags:\n{tag_lines}---\n\n# {repo_id.split('/')[1]}\n\n"
            "Synthetic repository generated for mirrorwatch tests.\n").encode()


def _small_files(rng: _Rand, repo_id: str, tags: list[str], license_: str, *, weights: bool) -> list[RepoFile]:
    files = [RepoFile(".gitattributes", content=_GITATTRIBUTES)]
    if rng.random() < 0.9:
        files.append(RepoFile("README.md", content=_readme(repo_id, tags, license_)))
    if rng.random() < (0.3 if weights else 0.6):
        cfg = {"_class_name": "LoRA", "rank": rng.choice((4, 8, 16, 32, 64, 128)), "alpha": rng.choice((1, 8, 16, 32))}
        files.append(RepoFile("config.json", content=json.dumps(cfg, sort_keys=True).encode()))
    if not weights and rng.random() < 0.4:
        files.append(RepoFile("prompts.txt", content=f"{rng.choice(_STYLE_WORDS)}, masterpiece\n".encode()))
    if rng.random() < 0.2:
        files.append(RepoFile("sample.png", size=rng.randint(200_000, 3 * MB),
                              sha256=hashlib.sha256(f"png:{repo_id}".encode()).hexdigest()))
    return files


def generate_repos(
    n: int,
    *,
    seed: int = 0,
    weight_fraction: float = 0.6,
    start: datetime = GENERATED_START,
    planted: dict[str, list[RepoFile]] | None = None,
    gated_fraction: float = 0.02,
    disabled_fraction: float = 0.01,
    private_fraction: float = 0.02,
) -> list[Repo]:
    """`n` synthetic repos, created in order from `start` about every ten minutes.

    `planted` maps repo ids to files: a generated repo with that id gets those files (replacing same
    paths); an id not generated takes the place of a generated repo (spread evenly through the
    creation dates, public, not gated) so the result still has `n` repos (more only if more repos
    are planted than `n`).
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    if not 0.0 <= weight_fraction <= 1.0:
        raise ValueError("weight_fraction must be between 0 and 1")
    rng = _Rand(seed)
    start = start if start.tzinfo else start.replace(tzinfo=UTC)
    users = [f"{rng.choice(_USER_STEMS)}-{rng.randint(1, 999)}" if rng.random() < 0.7
             else f"{rng.choice(_USER_STEMS)}{rng.randint(1, 99)}" for _ in range(max(10, n // 6))]
    repos: list[Repo] = []
    ids: set[str] = set()
    flags_cut = (gated_fraction, gated_fraction + disabled_fraction,
                 gated_fraction + disabled_fraction + private_fraction)
    for i in range(n):
        has_weights = rng.random() < weight_fraction
        templates = _REPO_TEMPLATES if has_weights else _PLAIN_TEMPLATES
        name = rng.choice(templates).format(k=rng.randint(1, 99), word=rng.choice(_STYLE_WORDS))
        repo_id = f"{rng.choice(users)}/{name}"
        if repo_id in ids:
            repo_id = f"{repo_id}-{i}"
        ids.add(repo_id)
        created = start + timedelta(seconds=i * 600 + rng.randint(0, 599))
        modified = created if rng.random() < 0.6 else created + timedelta(minutes=rng.randint(1, 60 * 24 * 60))
        base = rng.choice(_BASES)
        license_ = rng.choice(_LICENSES)
        if has_weights:
            tags = ["lora", base, "text-to-image", "safetensors", f"license:{license_}"]
            library, pipeline = (rng.choice(("diffusers", None)), "text-to-image")
        else:
            tags = [f"license:{license_}"]
            library, pipeline = None, None
        files = _small_files(rng, repo_id, tags, license_, weights=has_weights)
        if has_weights:
            files += _weight_files(rng, seed, repo_id)
        roll = rng.random()
        downloads = int(rng.paretovariate(1.1) * 5) - 5
        repos.append(Repo(
            repo_id=repo_id,
            files=files,
            created_at=created,
            last_modified=modified,
            gated=rng.choice(("auto", "manual")) if roll < flags_cut[0] else False,
            disabled=flags_cut[0] <= roll < flags_cut[1],
            private=flags_cut[1] <= roll < flags_cut[2],
            tags=tags,
            downloads=downloads,
            likes=downloads // rng.randint(20, 200),
            library_name=library,
            pipeline_tag=pipeline,
            trending_score=rng.randint(0, 5) if rng.random() < 0.3 else 0,
        ))
    if planted:
        _plant(repos, planted, rng)
    return repos


def _plant(repos: list[Repo], planted: dict[str, list[RepoFile]], rng: _Rand) -> None:
    by_id = {r.repo_id: i for i, r in enumerate(repos)}
    new_ids = [rid for rid in planted if rid not in by_id]
    taken = set(by_id[rid] for rid in planted if rid in by_id)
    slots: list[int] = []
    n = len(repos)
    for j in range(len(new_ids)):
        slot = ((j + 1) * n) // (len(new_ids) + 1) if n else 0
        while slot < n and (slot in taken or slot in slots):
            slot += 1
        slots.append(slot)
    for rid, files in planted.items():
        files = list(files)
        if rid in by_id:
            old = repos[by_id[rid]]
            keep = [f for f in old.files if f.path not in {f.path for f in files}]
            repos[by_id[rid]] = Repo(
                repo_id=rid, files=keep + files, created_at=old.created_at, last_modified=old.last_modified,
                gated=old.gated, disabled=old.disabled, private=old.private, tags=old.tags,
                downloads=old.downloads, likes=old.likes, library_name=old.library_name,
                pipeline_tag=old.pipeline_tag, trending_score=old.trending_score)
            continue
        slot = slots[new_ids.index(rid)]
        template = repos[slot] if slot < n else None
        created = template.created_at if template else GENERATED_START
        base_files = [RepoFile(".gitattributes", content=_GITATTRIBUTES),
                      RepoFile("README.md", content=_readme(rid, ["lora"], "other"))]
        base_files = [f for f in base_files if f.path not in {f.path for f in files}]
        repo = Repo(repo_id=rid, files=base_files + files, created_at=created,
                    last_modified=created + timedelta(minutes=rng.randint(0, 120)),
                    tags=["lora", "text-to-image"], downloads=rng.randint(0, 300), likes=rng.randint(0, 10),
                    pipeline_tag="text-to-image")
        if template is not None:
            repos[slot] = repo
        else:
            repos.append(repo)
