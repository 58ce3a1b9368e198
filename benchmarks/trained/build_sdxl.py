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
from pathlib import Path

import torch

torch.set_num_threads(1)

from build_corpus import (  # noqa: E402
    BOS,
    EOS,
    PAD,
    RES,
    SCHED,
    SEQ,
    TE_TARGETS,
    UNET_TARGETS,
    VOCAB,
    Concept,
    Run,
    _base_digest,
    _te_prefixed,
    add_extra_seeds,
    add_retrain,
    build,
    descend,
    driver_parser,
    extra_plan,
    parse,
    pretrain,
    rank_plan,
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


def train_run(base, run: Run, name: str, init: dict | None, out: Path) -> tuple[list[dict], dict]:
    models, params = add_lora(base, run.seed, init, run.rank)
    meta = {"concept": run.data, "run": name, "seed": run.seed, "base": "tiny-sdxl-layout"}
    files = []
    for step, loss in descend(models, params, run, loss_on):
        fname = f"{name}-s{step:04d}.safetensors"
        written = save(lora_state(models), out / "files" / fname, {**meta, "step": step}, kohya=(step == run.steps))
        files.append({"file": f"files/{fname}", "step": step, "steps": run.steps, "loss": round(loss, 4),
                      "kohya": f"files/{written[1]}" if len(written) > 1 else None})
    return files, lora_state(models)


def sdxl_plan(k: Concept, steps: int, ck: list[int], args: argparse.Namespace) -> list[Run]:
    """``extra_plan``'s runs (``layout_plan``'s and the --extra-seeds runs), then the rank-16/32 runs."""
    plan = extra_plan(k, steps, ck, args)
    if args.extra_only:
        return plan
    for rank, first in ((16, args.rank16), (32, args.rank32)):
        if k.index < first:
            plan += rank_plan(k, steps, ck, rank, near=args.near)
    return plan


def main() -> None:
    ap = driver_parser(__doc__, concepts=4, pretrain=100)
    ap.add_argument("--rank16", type=int, default=0, help="the first N concepts also get rank-16 runs (own seed "
                    "with checkpoints, shared seed, shared-seed look-alike, with --near the near look-alike, continued "
                    "fine-tune), as build_corpus.py")
    ap.add_argument("--rank32", type=int, default=0, help="the same at rank 32")
    add_extra_seeds(ap)
    add_retrain(ap)
    args, t0 = parse(ap, 50, "trigger tokens 100-149, look-alikes 150-199, near 200-249")
    base = make_base()
    pretrain(base, args.pretrain, loss_on)
    build(args, t0, _base_digest(base[0], base[1]),
          {"layout": "sdxl", "unet_targets": UNET_TARGETS, "te_targets": TE_TARGETS}, sdxl_plan,
          lambda run, name, init: train_run(base, run, name, init, args.out))


if __name__ == "__main__":
    main()
