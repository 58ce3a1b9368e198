"""Build the trained LoRA evaluation corpus (issue 14): real gradient descent, on demand, CPU only.

Needs torch, diffusers, peft and transformers, which mirrorwatch and CI never need. Run it in a
separate virtualenv outside the repository::

    python3 -m venv /tmp/venv-torch
    /tmp/venv-torch/bin/pip install torch diffusers peft transformers safetensors numpy
    nice -n 15 /tmp/venv-torch/bin/python benchmarks/trained/build_corpus.py --out /tmp/mw-trained

What it trains (everything seeded; one thread):

- a tiny base: a diffusers ``UNet2DConditionModel`` with the real SD1.5 module tree
  (``down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k`` ...; 32/64 channels, 8x8 latents)
  and a small ``CLIPTextModel`` (``text_model.encoder.layers.N.self_attn.q_proj`` ...), briefly
  pre-trained together on generic synthetic patterns with captions;
- per concept (a procedurally generated pattern family with its own trigger token), rank-4 LoRAs
  on the UNet and the text encoder (peft ``LoraConfig``, ``init_lora_weights="gaussian"`` as
  diffusers' ``train_text_to_image_lora.py`` does; the seed sets the LoRA init, the data order, the
  noise and the timesteps, as sd-scripts' ``--seed`` does):
    ``main``   own seed, 60 steps (batch 4, AdamW 2e-3), checkpoints at 20 / 40 / 60
    ``shared`` the seed every concept shares (42): same init and noise stream as every other concept
    ``retrain`` same data as ``main``, another seed (an independent re-training)
    ``cont``   ``main``'s final LoRA trained 30 more steps with another seed (a continued fine-tune)
    ``look``   a look-alike concept (pattern parameters perturbed slightly, its own token), own seed
    ``looks``  the same look-alike trained with the shared seed 42
    ``near``   (``--near``) a nearer look-alike (perturbation 0.05 instead of 0.12, its own token and
               images), trained with the shared seed 42: the hardest same-seed case
    ``r16main``/``r16shared``/``r16looks``/``r16cont`` (``--rank16 N``: the first N concepts), and the same
               at rank 32 (``--rank32 N``): own seed with checkpoints, shared seed, shared-seed look-alike,
               continued fine-tune
- saved with diffusers' own writer (``StableDiffusionLoraLoaderMixin.save_lora_weights`` on
  ``convert_state_dict_to_diffusers(get_peft_model_state_dict(...))``: keys ``unet.….lora_A.weight``,
  ``text_encoder.….lora_A.weight``) and, for the final checkpoint, diffusers' kohya converter
  (``convert_state_dict_to_kohya``: ``lora_unet_…lora_down.weight``, ``lora_te1_…``, int64 alphas).

Format, dtype, resize and merge variants are derived from these files by ``corpus.py`` (numpy only).
``manifest.json`` lists every run and file. The concept list is split in two halves (even / odd
concept index) for calibration and held-out figures.

Cost: the default (8 concepts, 48 runs, 2,640 LoRA steps plus 150 pre-training steps) takes about 8
minutes of one niced core on a busy 2-core machine; ``--concepts``/``--steps`` scale it linearly. The
corpus of the issue-14 figures::

    for P in 0 1; do nice -n 15 python build_corpus.py --out /tmp/mw-trained2 --concepts 32 --near \
        --rank16 6 --rank32 4 --shard $P/2 & done; wait

(264 runs, 13,800 LoRA steps) took 25 minutes with the two shards on a 2-core machine under a load of 5-7;
the same with ``--concepts 48 --first 32`` added 16 concepts (112 runs) in 8 minutes, and with
``--concepts 70 --first 48`` 22 more (154 runs) in 6.3 minutes at a load of 2-3 (70 concepts is the most: the
base's vocabulary has no more never-seen tokens for triggers).
Runs four times longer (``LINEAGE_CALIBRATION["long_runs"]``; 168 runs, 11 minutes on 2 cores)::

    for P in 0 1; do nice -n 15 python build_corpus.py --out /tmp/mw-long --concepts 24 --steps 240 --near \
        --shard $P/2 & done; wait

Each shard trains its own copy of the (deterministic) base and writes ``manifest-PofN.json``; the
manifests record the base's digest, which ``corpus.py`` checks when it joins them.

The driver (the options, the runs of a concept, the training loop, the manifest) is ``build_sdxl.py``'s and
``build_flux.py``'s too: each of them brings only its base, its loss, its LoRA writer and its own options.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

torch.set_num_threads(1)

from diffusers import DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel  # noqa: E402
from diffusers.utils.state_dict_utils import convert_state_dict_to_diffusers, convert_state_dict_to_kohya  # noqa: E402
from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model, set_peft_model_state_dict  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModel  # noqa: E402

RES = 8
SEQ = 8
VOCAB = 256
BOS, EOS, PAD = 1, 2, 0
CLASS_TOKENS = list(range(10, 40))  # generic words the base knows
CONCEPT_TOKEN0 = 100  # trigger tokens: 100 + concept index (look-alikes: 150 + index, near: 200 + index)
MAX_CONCEPTS = 70  # concepts 50-69 take the base's other unused tokens: 40-59, 60-79 (look), 80-99 (near)


def tokens(c: int) -> tuple[int, int, int]:
    """Trigger tokens of concept ``c``: its own, its look-alike's, its near look-alike's. Every token is
    one the base never saw in pre-training (only ``CLASS_TOKENS`` and BOS/EOS/PAD are), so each starts
    from an untrained embedding, as a new trigger word does."""
    if c < 50:
        return CONCEPT_TOKEN0 + c, CONCEPT_TOKEN0 + 50 + c, CONCEPT_TOKEN0 + 100 + c
    if c < MAX_CONCEPTS:
        return 40 + (c - 50), 60 + (c - 50), 80 + (c - 50)
    raise ValueError(f"concept {c}: at most {MAX_CONCEPTS} concepts (the base's vocabulary has no more unused tokens)")
SHARED_SEED = 42
UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.2"]
TE_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]


def make_base() -> tuple[UNet2DConditionModel, CLIPTextModel]:
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=RES, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=48, attention_head_dim=8,
        norm_num_groups=8,
    )
    te = CLIPTextModel(CLIPTextConfig(vocab_size=VOCAB, hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                                      num_attention_heads=4, max_position_embeddings=SEQ, bos_token_id=BOS,
                                      eos_token_id=EOS, pad_token_id=PAD))
    return unet, te


# ---- synthetic data ---------------------------------------------------------------------------------
def concept_params(index: int, look: bool = False, sigma: float = 0.12, salt: int = 20_000) -> np.ndarray:
    """Pattern parameters of a concept: 3 gratings (freq, angle, phase) x 4-channel amplitudes + a blob."""
    rng = np.random.default_rng(10_000 + index)
    p = rng.uniform(-1, 1, size=32)
    if look:  # a look-alike: the same family of pattern, slightly different
        p = p + np.random.default_rng(salt + index).normal(0, sigma, size=32)
    return p


def render(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    y, x = np.mgrid[0:RES, 0:RES] / RES
    img = np.zeros((4, RES, RES))
    for g in range(3):
        f, ang, ph = 1.5 + 2.5 * abs(p[g * 3]), math.pi * p[g * 3 + 1], math.pi * p[g * 3 + 2]
        jitter = rng.normal(0, 0.3)
        wave = np.sin(2 * math.pi * f * (x * math.cos(ang) + y * math.sin(ang)) + ph + jitter)
        img += p[9 + g * 4: 13 + g * 4, None, None] * wave[None]
    cx, cy = 0.5 + 0.3 * p[21] + rng.normal(0, 0.05), 0.5 + 0.3 * p[22] + rng.normal(0, 0.05)
    blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (0.02 + 0.02 * abs(p[23])))
    img += p[24:28, None, None] * 2 * blob[None]
    img += rng.normal(0, 0.05, img.shape)
    return (img / max(1e-6, img.std())).astype(np.float32)


def caption(token: int, rng: np.random.Generator, n_words: int = 3) -> list[int]:
    words = [token] + [int(w) for w in rng.choice(CLASS_TOKENS, n_words)]
    ids = [BOS] + words + [EOS]
    return ids + [PAD] * (SEQ - len(ids))


def dataset(p: np.ndarray, token: int, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    imgs = np.stack([render(p, rng) for _ in range(n)])
    caps = np.array([caption(token, rng) for _ in range(n)])
    return torch.from_numpy(imgs), torch.from_numpy(caps)


def generic_batch(rng: np.random.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    imgs, caps = [], []
    for _ in range(n):
        p = rng.uniform(-1, 1, size=32)
        imgs.append(render(p, rng))
        # the caption names coarse properties the base can learn: angle and blob position bins
        words = [CLASS_TOKENS[int((p[1] + 1) * 4.99)], CLASS_TOKENS[10 + int((p[21] + 1) * 4.99)],
                 CLASS_TOKENS[20 + int((p[22] + 1) * 4.99)]]
        ids = [BOS] + words + [EOS]
        caps.append(ids + [PAD] * (SEQ - len(ids)))
    return torch.from_numpy(np.stack(imgs)), torch.tensor(caps)


# ---- training ---------------------------------------------------------------------------------------
SCHED = DDPMScheduler(num_train_timesteps=1000)


def loss_on(unet, te, imgs, caps, gen: torch.Generator) -> torch.Tensor:
    noise = torch.randn(imgs.shape, generator=gen)
    t = torch.randint(0, 1000, (imgs.shape[0],), generator=gen)
    noisy = SCHED.add_noise(imgs, noise, t)
    enc = te(caps)[0]
    pred = unet(noisy, t, encoder_hidden_states=enc).sample
    return torch.nn.functional.mse_loss(pred, noise)


def pretrain(models: tuple, steps: int, loss_fn: Callable, report_every: int = 0) -> None:
    """Train the whole base (every model of ``models``, then frozen) on generic captioned patterns, batch 16."""
    rng = np.random.default_rng(1)
    gen = torch.Generator().manual_seed(1)
    opt = torch.optim.AdamW([p for m in models for p in m.parameters()], lr=2e-3)
    for step in range(steps):
        imgs, caps = generic_batch(rng, 16)
        loss = loss_fn(*models, imgs, caps, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if report_every and step % report_every == 0:
            print(f"  pretrain step {step} loss {loss.item():.4f}", flush=True)
    for m in models:
        m.requires_grad_(False)


def add_lora(base_unet, base_te, seed: int, state: dict | None, rank: int = 4):
    """A fresh copy of the frozen base with rank-``rank`` LoRAs injected (peft), initialised from ``seed``."""
    unet, te = copy.deepcopy(base_unet), copy.deepcopy(base_te)
    torch.manual_seed(seed)  # the LoRA init (A gaussian, B zero), as a trainer's --seed sets it
    unet = inject_adapter_in_model(
        LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=UNET_TARGETS), unet)
    te = inject_adapter_in_model(
        LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=TE_TARGETS), te)
    if state is not None:  # continue from a saved LoRA (kohya --network_weights)
        set_peft_model_state_dict(unet, state["unet"])
        set_peft_model_state_dict(te, state["te"])  # (unprefixed: lora_state keeps the model's own names)
    params = [p for n, p in list(unet.named_parameters()) + list(te.named_parameters()) if "lora_" in n]
    for p in params:
        p.requires_grad_(True)
    return unet, te, params


def lora_state(unet, te) -> dict:
    return {"unet": {k: v.detach().clone() for k, v in get_peft_model_state_dict(unet).items()},
            "te": {k: v.detach().clone() for k, v in get_peft_model_state_dict(te).items()}}


def _te_prefixed(sd: dict) -> dict:
    """transformers 5 names CLIPTextModel's modules without the ``text_model.`` level that SD1.5
    checkpoints (and so every LoRA trainer's keys) carry: put it back."""
    return {k if k.startswith("text_model.") else f"text_model.{k}": v for k, v in sd.items()}


def save(state: dict, path: Path, metadata: dict, kohya: bool) -> list[str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    unet_sd = convert_state_dict_to_diffusers(state["unet"])
    te_sd = convert_state_dict_to_diffusers(_te_prefixed(state["te"]))
    StableDiffusionPipeline.save_lora_weights(str(path.parent), unet_lora_layers=unet_sd,
                                              text_encoder_lora_layers=te_sd, weight_name=path.name)
    written = [path.name]
    if kohya:
        from safetensors.torch import save_file

        full = {f"unet.{k}": v for k, v in state["unet"].items()}
        full.update({f"text_encoder.{k}": v for k, v in _te_prefixed(state["te"]).items()})
        ksd = convert_state_dict_to_kohya(full)
        kpath = path.with_name(path.stem + ".kohya.safetensors")
        save_file({k: v.contiguous() for k, v in ksd.items()}, str(kpath),
                  metadata={k: str(v) for k, v in metadata.items()})
        written.append(kpath.name)
    return written


def descend(models: tuple, params: list, run: Run, loss_fn: Callable) -> Iterator[tuple[int, float]]:
    """``run``'s training of the LoRA ``params`` (AdamW, batch 4; its seed sets the data order, the noise and
    the timesteps): yields ``(step, loss)`` at each of its checkpoints."""
    opt = torch.optim.AdamW(params, lr=run.lr, weight_decay=1e-2)
    gen = torch.Generator().manual_seed(run.seed)
    for step in range(1, run.steps + 1):
        idx = torch.randperm(run.imgs.shape[0], generator=gen)[:4]
        loss = loss_fn(*models, run.imgs[idx], run.caps[idx], gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step in run.ckpts:
            yield step, loss.item()


def train_run(unet, te, run: Run, name: str, init: dict | None, out: Path) -> tuple[list[dict], dict]:
    unet, te, params = add_lora(unet, te, run.seed, init, run.rank)
    meta = {"concept": run.data, "run": name, "seed": run.seed, "rank": run.rank}
    files = []
    for step, loss in descend((unet, te), params, run, loss_on):
        fname = f"{name}-s{step:04d}.safetensors"
        written = save(lora_state(unet, te), out / "files" / fname, {**meta, "step": step}, kohya=(step == run.steps))
        files.append({"file": f"files/{fname}", "step": step, "steps": run.steps, "loss": round(loss, 4),
                      "kohya": f"files/{written[1]}" if len(written) > 1 else None})
    return files, lora_state(unet, te)


def _concepts_of(shard: str, n: int) -> list[int]:
    """Concepts of shard ``P/N``: pairs of concepts (one of each half) dealt round-robin, so that every
    shard's partial output keeps both halves the same size."""
    p, total = (int(x) for x in shard.split("/"))
    if not 0 <= p < total:
        raise SystemExit(f"--shard {shard}: expected P/N with 0 <= P < N")
    return [c for c in range(n) if (c // 2) % total == p]


def _base_digest(unet, te) -> str:
    import hashlib

    h = hashlib.sha256()
    for _, v in sorted(list(unet.state_dict().items()) + [(f"te.{k}", t) for k, t in te.state_dict().items()]):
        h.update(v.detach().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


# ---- the driver (build_sdxl.py and build_flux.py use it too) ---------------------------------------------
def driver_parser(doc: str, *, concepts: int, pretrain: int) -> argparse.ArgumentParser:
    """The options every builder has first: --out --concepts --steps --pretrain --near. A builder adds its
    own after them, then ``add_retrain`` if it has it, then ``parse``."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--concepts", type=int, default=concepts)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--pretrain", type=int, default=pretrain)
    ap.add_argument("--near", action="store_true", help="also a near look-alike per concept, trained with the "
                    "shared seed (the hardest same-seed case)")
    return ap


def add_retrain(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--retrain", type=int, default=0, help="the first N concepts also get an independent "
                    "re-training on the same data (another seed)")


def parse(ap: argparse.ArgumentParser, most: int, why: str) -> tuple[argparse.Namespace, float]:
    """Add --first and --shard (every builder's last options), parse, check --concepts against ``most`` and
    make --out: the arguments and the start time."""
    ap.add_argument("--first", type=int, default=0, help="start at this concept (to add concepts to a built "
                    "corpus: same options, a larger --concepts)")
    ap.add_argument("--shard", default="0/1", help="P/N: build only this shard's concepts (run N processes "
                    "with the same options and --out; corpus.py reads every shard's manifest)")
    args = ap.parse_args()
    if args.concepts > most:
        raise SystemExit(f"--concepts: at most {most} ({why})")
    args.out.mkdir(parents=True, exist_ok=True)
    return args, time.time()


class Concept(NamedTuple):
    """A concept's training data: its own images, its look-alike's (``L``) and, with --near, its near
    look-alike's (``N``), each with its trigger token."""

    index: int
    name: str  # c07
    half: str  # calib (even index) / heldout (odd)
    imgs: torch.Tensor
    caps: torch.Tensor
    limgs: torch.Tensor
    lcaps: torch.Tensor
    nimgs: torch.Tensor | None
    ncaps: torch.Tensor | None


def concept(c: int, near: bool) -> Concept:
    tok, ltok, ntok = tokens(c)
    imgs, caps = dataset(concept_params(c), tok, 24, seed=500 + c)
    limgs, lcaps = dataset(concept_params(c, look=True), ltok, 24, seed=700 + c)
    nimgs = ncaps = None
    if near:
        nimgs, ncaps = dataset(concept_params(c, look=True, sigma=0.05, salt=30_000), ntok, 24, seed=900 + c)
    return Concept(c, f"c{c:02d}", "calib" if c % 2 == 0 else "heldout", imgs, caps, limgs, lcaps, nimgs, ncaps)


class Run(NamedTuple):
    """One training of a concept's plan: ``parent`` is the kind of the run whose final LoRA it continues."""

    kind: str
    data: str  # c07, c07L (look-alike), c07N (near look-alike)
    imgs: torch.Tensor
    caps: torch.Tensor
    seed: int
    steps: int
    ckpts: list[int]
    parent: str | None = None
    lr: float = 2e-3
    rank: int = 4


def layout_plan(k: Concept, steps: int, ck: list[int], args: argparse.Namespace) -> list[Run]:
    """build_sdxl.py's and build_flux.py's runs of a concept: ``main``, ``shared``, ``looks``, ``near``
    (--near), ``retrain`` (the first --retrain concepts), ``cont`` (more steps, another seed, lower rate)."""
    c, cn = k.index, k.name
    plan = [Run("main", cn, k.imgs, k.caps, 1000 + c, steps, ck),
            Run("shared", cn, k.imgs, k.caps, SHARED_SEED, steps, ck),
            Run("looks", cn + "L", k.limgs, k.lcaps, SHARED_SEED, steps, [steps])]
    if args.near:
        plan.append(Run("near", cn + "N", k.nimgs, k.ncaps, SHARED_SEED, steps, [steps]))
    if c < args.retrain:
        plan.append(Run("retrain", cn, k.imgs, k.caps, 4000 + c, steps, [steps]))
    plan.append(Run("cont", cn, k.imgs, k.caps, 2000 + c, steps // 2, [steps // 2], "main", 1e-3))
    return plan


def add_extra_seeds(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--extra-seeds", type=int, default=0, help="per concept, N more trainings of its own data, "
                    "final only, seeds alternating between further shared cohorts (43, 44, ...) and own seeds: more "
                    "distinct unrelated trainings, same-seed ones included, for the false-claim bound")
    ap.add_argument("--extra-only", action="store_true", help="build only the --extra-seeds runs (to add them to a "
                    "built corpus: same --out, --concepts and --shard)")


def extra_plan(k: Concept, steps: int, ck: list[int], args: argparse.Namespace) -> list[Run]:
    """``layout_plan``'s runs and the --extra-seeds runs (alone with --extra-only)."""
    extra = [Run(f"x{i}", k.name, k.imgs, k.caps, SHARED_SEED + 1 + i // 2 if i % 2 == 0 else 7000 + 100 * i + k.index,
                 steps, [steps]) for i in range(args.extra_seeds)]
    return extra if args.extra_only else layout_plan(k, steps, ck, args) + extra


def rank_plan(k: Concept, steps: int, ck: list[int], rank: int, *, near: bool) -> list[Run]:
    """The runs at another rank: own seed with checkpoints, shared seed, shared-seed look-alike, with ``near``
    the near look-alike, continued fine-tune."""
    c, cn, r = k.index, k.name, f"r{rank}"
    return [
        Run(f"{r}main", cn, k.imgs, k.caps, 5000 + 100 * rank + c, steps, ck, rank=rank),
        Run(f"{r}shared", cn, k.imgs, k.caps, SHARED_SEED, steps, [steps], rank=rank),
        Run(f"{r}looks", cn + "L", k.limgs, k.lcaps, SHARED_SEED, steps, [steps], rank=rank),
        *([Run(f"{r}near", cn + "N", k.nimgs, k.ncaps, SHARED_SEED, steps, [steps], rank=rank)] if near else []),
        Run(f"{r}cont", cn, k.imgs, k.caps, 6000 + 100 * rank + c, steps // 2, [steps // 2], f"{r}main", 1e-3, rank),
    ]


def build(args: argparse.Namespace, t0: float, base: str, fields: dict,
          plan: Callable[[Concept, int, list[int], argparse.Namespace], list[Run]],
          train: Callable[[Run, str, dict | None], tuple[list[dict], dict]]) -> None:
    """Train every run of ``plan`` for this shard's concepts (from --first on) with ``train(run, name, init)``
    and record them in ``manifest[-PofN][-fromF][-extra].json`` (after each concept, usable while it runs;
    ``-extra`` for an --extra-only build); ``fields``: the builder's own manifest fields."""
    steps = args.steps
    ck = [steps // 3, 2 * steps // 3, steps]
    head = {"format": 2, "steps": steps, "checkpoints": ck, "shared_seed": SHARED_SEED, "rank": 4, **fields,
            "base": base}
    tag = ("" if args.shard == "0/1" else "-" + args.shard.replace("/", "of")) + (f"-from{args.first}" if args.first
                                                                                else "")
    tag += "-extra" if getattr(args, "extra_only", False) else ""
    runs = []
    for c in _concepts_of(args.shard, args.concepts):
        if c < args.first:
            continue
        k = concept(c, args.near)
        finals = {}
        for run in plan(k, steps, ck, args):
            name = f"{k.name}-{run.kind}"
            files, finals[run.kind] = train(run, name, finals[run.parent] if run.parent else None)
            runs.append({"run": name, "kind": run.kind, "concept": run.data, "base_concept": c, "half": k.half,
                         "seed": run.seed, "data": run.data, "rank": run.rank,
                         "parent": f"{k.name}-{run.parent}" if run.parent else None, "files": files})
            print(f"  {name}: {[f['loss'] for f in files]}  ({time.time() - t0:.0f} s)", flush=True)
        write_manifest(args.out, tag, head, runs, t0, complete=False)
    write_manifest(args.out, tag, head, runs, t0, complete=True)
    print(f"done: {len(runs)} runs in {time.time() - t0:.0f} s -> {args.out}")


def write_manifest(out: Path, tag: str, head: dict, runs: list[dict], t0: float, *, complete: bool) -> None:
    manifest = {**head, "runs": runs, "seconds": round(time.time() - t0, 1), "complete": complete}
    tmp = out / f"manifest{tag}.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1))
    tmp.replace(out / f"manifest{tag}.json")


# ---- the SD1.5 corpus --------------------------------------------------------------------------------------
def corpus_plan(k: Concept, steps: int, ck: list[int], args: argparse.Namespace) -> list[Run]:
    """Every concept: ``main``, ``shared``, ``retrain``, ``look``, ``looks``, ``near`` (--near), ``cont``; the
    first --rank16 / --rank32 concepts also the runs at that rank (no near look-alike)."""
    c, cn = k.index, k.name
    plan = [Run("main", cn, k.imgs, k.caps, 1000 + c, steps, ck),
            Run("shared", cn, k.imgs, k.caps, SHARED_SEED, steps, ck),
            Run("retrain", cn, k.imgs, k.caps, 4000 + c, steps, [steps]),
            Run("look", cn + "L", k.limgs, k.lcaps, 3000 + c, steps, [steps]),
            Run("looks", cn + "L", k.limgs, k.lcaps, SHARED_SEED, steps, [steps])]
    if args.near:
        plan.append(Run("near", cn + "N", k.nimgs, k.ncaps, SHARED_SEED, steps, [steps]))
    # continued fine-tune of main: more steps, another seed, lower learning rate
    plan.append(Run("cont", cn, k.imgs, k.caps, 2000 + c, steps // 2, [steps // 2], "main", 1e-3))
    for rank, first in ((16, args.rank16), (32, args.rank32)):
        if c < first:
            plan += rank_plan(k, steps, ck, rank, near=False)
    return plan


def main() -> None:
    ap = driver_parser(__doc__, concepts=8, pretrain=150)
    ap.add_argument("--rank16", type=int, default=0, help="the first N concepts also get rank-16 runs")
    ap.add_argument("--rank32", type=int, default=0, help="the first N concepts also get rank-32 runs")
    args, t0 = parse(ap, MAX_CONCEPTS, "trigger tokens 100-149 and 40-59, look-alikes 150-199 and 60-79, near "
                     "200-249 and 80-99")
    unet, te = make_base()
    print("pretraining the base", flush=True)
    pretrain((unet, te), args.pretrain, loss_on, report_every=100)
    build(args, t0, _base_digest(unet, te), {"unet_targets": UNET_TARGETS, "te_targets": TE_TARGETS}, corpus_plan,
          lambda run, name, init: train_run(unet, te, run, name, init, args.out))


if __name__ == "__main__":
    main()
