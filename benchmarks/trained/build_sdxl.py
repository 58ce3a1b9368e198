"""The trained corpus with SDXL module names (issue 14, "if it fits"): a tiny UNet with SDXL's block
layout and two text encoders, LoRAs saved by diffusers' SDXL writer and its kohya converter.

Runs in the same separate virtualenv as ``build_corpus.py`` (torch, diffusers, peft, transformers)::

    nice -n 15 /tmp/venv-torch/bin/python benchmarks/trained/build_sdxl.py --out /tmp/mw-trained-sdxl

The base is a diffusers ``UNet2DConditionModel`` configured as SDXL is (``DownBlock2D`` then
``CrossAttnDownBlock2D`` blocks, ``transformer_layers_per_block`` > 1 so that keys carry
``transformer_blocks.1``, ``addition_embed_type="text_time"`` conditioned on the second encoder's pooled
output and six time ids), with 32/64/64 channels; a ``CLIPTextModel`` (``text_encoder``, kohya
``lora_te1_``) and a ``CLIPTextModelWithProjection`` (``text_encoder_2``, kohya ``lora_te2_``) whose
hidden states are concatenated into the cross-attention context, as SDXL's pipeline does. Pre-trained
briefly, then rank-4 LoRAs (UNet and both encoders) per concept: ``main`` (checkpoints at 1/3, 2/3, end),
``shared`` (seed 42, checkpoints at 1/3, 2/3, end), ``looks`` (a look-alike with seed 42) and ``cont``
(continued from ``main``); with ``--near`` also ``near`` (a nearer look-alike, perturbation 0.05, its own
trigger and images, seed 42: the hardest same-seed case, as in ``build_corpus.py``), and with ``--retrain N``
for the first N concepts ``retrain`` (the same data, another seed: an independent re-training). Files
are written by ``StableDiffusionXLPipeline.save_lora_weights`` (keys ``unet.…``, ``text_encoder.…``,
``text_encoder_2.…``) and, for each run's last checkpoint, by ``convert_state_dict_to_kohya``
(``lora_unet_down_blocks_1_attentions_0_transformer_blocks_1_attn2_to_k``, ``lora_te1_…``, ``lora_te2_…``).
The manifest has ``build_corpus.py``'s format, so ``corpus.py`` and ``bench_trained.py --corpus`` read it;
``--shard P/N`` builds one shard's concepts (pairs of concepts, one of each half, dealt round-robin) and writes
``manifest-PofN.json``, which ``corpus.py`` joins (the shards check the deterministic base's digest).
Default: 4 concepts, 16 runs, about 3 minutes of one core (2-20 s per 60-step run, as busy as the machine is).
The corpus of the SDXL figures in ``lineage.LINEAGE_CALIBRATION["sdxl_layout"]`` (520 runs, 48 concepts)::

    for P in 0 1; do nice -n 19 python build_sdxl.py --out /tmp/mw-trained-sdxl16 --concepts 16 --near \
        --retrain 8 --shard $P/2 & done; wait    # 88 runs, 4 minutes on 2 cores
    for P in 0 1; do nice -n 19 python build_sdxl.py --out /tmp/mw-trained-sdxl16 --concepts 48 --first 16 \
        --near --retrain 48 --shard $P/2 & done; wait    # 192 runs, 38 minutes on 2 cores busy with other work
    for P in 0 1; do nice -n 15 python build_sdxl.py --out /tmp/mw-trained-sdxl16 --concepts 48 --extra-seeds 5 \
        --extra-only --shard $P/2 & done; wait    # 240 runs, 13 minutes: more distinct unrelated trainings

(50 concepts is the most: trigger tokens 100-149, look-alikes 150-199, near look-alikes 200-249.)
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)

from build_corpus import (  # noqa: E402
    BOS,
    EOS,
    PAD,
    RES,
    SCHED,
    SEQ,
    SHARED_SEED,
    TE_TARGETS,
    UNET_TARGETS,
    VOCAB,
    _base_digest,
    _concepts_of,
    _te_prefixed,
    concept_params,
    dataset,
    generic_batch,
    tokens,
)
from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel  # noqa: E402
from diffusers.utils.state_dict_utils import convert_state_dict_to_diffusers, convert_state_dict_to_kohya  # noqa: E402
from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model, set_peft_model_state_dict  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection  # noqa: E402

H1, H2, PROJ = 32, 48, 48


def make_base():
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=RES, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=(1, 1, 2), cross_attention_dim=H1 + H2, attention_head_dim=8,
        norm_num_groups=8, use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, projection_class_embeddings_input_dim=PROJ + 6 * 8,
    )
    cfg = {"vocab_size": VOCAB, "max_position_embeddings": SEQ, "bos_token_id": BOS, "eos_token_id": EOS,
           "pad_token_id": PAD, "num_hidden_layers": 2, "num_attention_heads": 4}
    te1 = CLIPTextModel(CLIPTextConfig(hidden_size=H1, intermediate_size=2 * H1, **cfg))
    te2 = CLIPTextModelWithProjection(CLIPTextConfig(hidden_size=H2, intermediate_size=2 * H2, projection_dim=PROJ,
                                                     **cfg))
    return unet, te1, te2


def loss_on(unet, te1, te2, imgs, caps, gen):
    noise = torch.randn(imgs.shape, generator=gen)
    t = torch.randint(0, 1000, (imgs.shape[0],), generator=gen)
    noisy = SCHED.add_noise(imgs, noise, t)
    h1 = te1(caps, output_hidden_states=True).hidden_states[-2]
    o2 = te2(caps, output_hidden_states=True)
    ctx = torch.cat([h1, o2.hidden_states[-2]], dim=-1)
    time_ids = torch.tensor([[RES, RES, 0, 0, RES, RES]], dtype=torch.float32).repeat(imgs.shape[0], 1)
    pred = unet(noisy, t, encoder_hidden_states=ctx,
                added_cond_kwargs={"text_embeds": o2.text_embeds, "time_ids": time_ids}).sample
    return torch.nn.functional.mse_loss(pred, noise)


def pretrain(models, steps: int) -> None:
    rng = np.random.default_rng(1)
    gen = torch.Generator().manual_seed(1)
    opt = torch.optim.AdamW([p for m in models for p in m.parameters()], lr=2e-3)
    for _ in range(steps):
        imgs, caps = generic_batch(rng, 16)
        loss = loss_on(*models, imgs, caps, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
    for m in models:
        m.requires_grad_(False)


def add_lora(base, seed: int, state: dict | None, rank: int = 4):
    unet, te1, te2 = (copy.deepcopy(m) for m in base)
    torch.manual_seed(seed)

    def config(targets: list[str]) -> LoraConfig:
        return LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=targets)

    unet = inject_adapter_in_model(config(UNET_TARGETS), unet)
    te1 = inject_adapter_in_model(config(TE_TARGETS), te1)
    te2 = inject_adapter_in_model(config(TE_TARGETS), te2)
    models = (unet, te1, te2)
    if state is not None:
        for m, key in zip(models, ("unet", "te1", "te2"), strict=True):
            set_peft_model_state_dict(m, state[key])
    params = [p for m in models for n, p in m.named_parameters() if "lora_" in n]
    for p in params:
        p.requires_grad_(True)
    return models, params


def lora_state(models) -> dict:
    return {key: {k: v.detach().clone() for k, v in get_peft_model_state_dict(m).items()}
            for m, key in zip(models, ("unet", "te1", "te2"), strict=True)}


def save(state: dict, path: Path, metadata: dict, kohya: bool) -> list[str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    StableDiffusionXLPipeline.save_lora_weights(
        str(path.parent), unet_lora_layers=convert_state_dict_to_diffusers(state["unet"]),
        text_encoder_lora_layers=convert_state_dict_to_diffusers(_te_prefixed(state["te1"])),
        text_encoder_2_lora_layers=convert_state_dict_to_diffusers(_te_prefixed(state["te2"])), weight_name=path.name)
    written = [path.name]
    if kohya:
        from safetensors.torch import save_file

        full = {f"unet.{k}": v for k, v in state["unet"].items()}
        full.update({f"text_encoder.{k}": v for k, v in _te_prefixed(state["te1"]).items()})
        full.update({f"text_encoder_2.{k}": v for k, v in _te_prefixed(state["te2"]).items()})
        kpath = path.with_name(path.stem + ".kohya.safetensors")
        save_file({k: v.contiguous() for k, v in convert_state_dict_to_kohya(full).items()}, str(kpath),
                  metadata={k: str(v) for k, v in metadata.items()})
        written.append(kpath.name)
    return written


def train_run(base, imgs, caps, *, seed, steps, ckpts, lr, init, out, name, meta, rank=4):
    models, params = add_lora(base, seed, init, rank)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-2)
    gen = torch.Generator().manual_seed(seed)
    files = []
    for step in range(1, steps + 1):
        idx = torch.randperm(imgs.shape[0], generator=gen)[:4]
        loss = loss_on(*models, imgs[idx], caps[idx], gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step in ckpts:
            fname = f"{name}-s{step:04d}.safetensors"
            written = save(lora_state(models), out / "files" / fname, {**meta, "step": step}, kohya=(step == steps))
            files.append({"file": f"files/{fname}", "step": step, "steps": steps, "loss": round(loss.item(), 4),
                          "kohya": f"files/{written[1]}" if len(written) > 1 else None})
    return files, lora_state(models)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--concepts", type=int, default=4)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--pretrain", type=int, default=100)
    ap.add_argument("--near", action="store_true", help="also a near look-alike per concept, trained with the "
                    "shared seed (the hardest same-seed case)")
    ap.add_argument("--rank16", type=int, default=0, help="the first N concepts also get rank-16 runs (own seed "
                    "with checkpoints, shared seed, shared-seed look-alike, with --near the near look-alike, continued "
                    "fine-tune), as build_corpus.py")
    ap.add_argument("--rank32", type=int, default=0, help="the same at rank 32")
    ap.add_argument("--extra-seeds", type=int, default=0, help="per concept, N more trainings of its own data, "
                    "final only, seeds alternating between further shared cohorts (43, 44, ...) and own seeds: more "
                    "distinct unrelated trainings, same-seed ones included, for the false-claim bound")
    ap.add_argument("--extra-only", action="store_true", help="build only the --extra-seeds runs (to add them to a "
                    "built corpus: same --out, --concepts and --shard)")
    ap.add_argument("--retrain", type=int, default=0, help="the first N concepts also get an independent "
                    "re-training on the same data (another seed)")
    ap.add_argument("--first", type=int, default=0, help="start at this concept (to add concepts to a built "
                    "corpus: same options, a larger --concepts)")
    ap.add_argument("--shard", default="0/1", help="P/N: build only this shard's concepts (run N processes with "
                    "the same options and --out; corpus.py reads every shard's manifest)")
    args = ap.parse_args()
    if args.concepts > 50:
        raise SystemExit("--concepts: at most 50 (trigger tokens 100-149, look-alikes 150-199, near 200-249)")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    base = make_base()
    pretrain(base, args.pretrain)
    digest = _base_digest(base[0], base[1])
    steps = args.steps
    ck = [steps // 3, 2 * steps // 3, steps]
    runs = []
    tag = ("" if args.shard == "0/1" else "-" + args.shard.replace("/", "of")) + (f"-from{args.first}" if args.first
                                                                                else "")
    tag += "-extra" if args.extra_only else ""
    for c in _concepts_of(args.shard, args.concepts):
        if c < args.first:
            continue
        half = "calib" if c % 2 == 0 else "heldout"
        cn = f"c{c:02d}"
        tok, ltok, ntok = tokens(c)
        imgs, caps = dataset(concept_params(c), tok, 24, seed=500 + c)
        limgs, lcaps = dataset(concept_params(c, look=True), ltok, 24, seed=700 + c)
        plan = [("main", cn, imgs, caps, 1000 + c, steps, ck, None, 2e-3),
                ("shared", cn, imgs, caps, SHARED_SEED, steps, ck, None, 2e-3),
                ("looks", cn + "L", limgs, lcaps, SHARED_SEED, steps, [steps], None, 2e-3)]
        if args.near:
            nimgs, ncaps = dataset(concept_params(c, look=True, sigma=0.05, salt=30_000), ntok, 24, seed=900 + c)
            plan.append(("near", cn + "N", nimgs, ncaps, SHARED_SEED, steps, [steps], None, 2e-3))
        if c < args.retrain:
            plan.append(("retrain", cn, imgs, caps, 4000 + c, steps, [steps], None, 2e-3))
        plan.append(("cont", cn, imgs, caps, 2000 + c, steps // 2, [steps // 2], "main", 1e-3))
        extra = [(f"x{i}", cn, imgs, caps, SHARED_SEED + 1 + i // 2 if i % 2 == 0 else 7000 + 100 * i + c, steps,
                  [steps], None, 2e-3) for i in range(args.extra_seeds)]
        plan = extra if args.extra_only else plan + extra
        plan = [(*entry, 4) for entry in plan]
        for rank, first in ((16, args.rank16), (32, args.rank32)):
            if c < first and not args.extra_only:
                plan += [
                    (f"r{rank}main", cn, imgs, caps, 5000 + 100 * rank + c, steps, ck, None, 2e-3, rank),
                    (f"r{rank}shared", cn, imgs, caps, SHARED_SEED, steps, [steps], None, 2e-3, rank),
                    (f"r{rank}looks", cn + "L", limgs, lcaps, SHARED_SEED, steps, [steps], None, 2e-3, rank),
                    *([(f"r{rank}near", cn + "N", nimgs, ncaps, SHARED_SEED, steps, [steps], None, 2e-3, rank)]
                      if args.near else []),
                    (f"r{rank}cont", cn, imgs, caps, 6000 + 100 * rank + c, steps // 2, [steps // 2], f"r{rank}main",
                     1e-3, rank),
                ]
        finals = {}
        for kind, data, im, cp, seed, n_steps, ckpts, parent, lr, rank in plan:
            name = f"{cn}-{kind}"
            files, final = train_run(base, im, cp, seed=seed, steps=n_steps, ckpts=ckpts, lr=lr,
                                     init=finals[parent] if parent else None, out=out, name=name,
                                     meta={"concept": data, "run": name, "seed": seed, "base": "tiny-sdxl-layout"},
                                     rank=rank)
            finals[kind] = final
            runs.append({"run": name, "kind": kind, "concept": data, "base_concept": c, "half": half, "seed": seed,
                         "data": data, "rank": rank, "parent": f"{cn}-{parent}" if parent else None, "files": files})
            print(f"  {name}: {[f['loss'] for f in files]}  ({time.time() - t0:.0f} s)", flush=True)
        write_manifest(out, tag, steps, ck, digest, runs, t0, complete=False)  # usable while it runs
    write_manifest(out, tag, steps, ck, digest, runs, t0, complete=True)
    print(f"done: {len(runs)} runs in {time.time() - t0:.0f} s -> {out}")


def write_manifest(out: Path, tag: str, steps: int, ck: list[int], digest: str, runs: list[dict], t0: float, *,
                   complete: bool) -> None:
    manifest = {"format": 2, "steps": steps, "checkpoints": ck, "shared_seed": SHARED_SEED, "rank": 4,
                "layout": "sdxl", "unet_targets": UNET_TARGETS, "te_targets": TE_TARGETS, "base": digest,
                "runs": runs, "seconds": round(time.time() - t0, 1), "complete": complete}
    tmp = out / f"manifest{tag}.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1))
    tmp.replace(out / f"manifest{tag}.json")


if __name__ == "__main__":
    main()
