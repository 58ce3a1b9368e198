"""The trained corpus with Flux module names (issue 14): a tiny diffusers ``FluxTransformer2DModel``
conditioned as FluxPipeline conditions it, LoRAs on the transformer saved by diffusers' Flux writer.

Runs in the same separate virtualenv as ``build_corpus.py`` (torch, diffusers, peft, transformers)::

    nice -n 19 /tmp/venv-torch/bin/python benchmarks/trained/build_flux.py --out /tmp/mw-flux

The base is a diffusers ``FluxTransformer2DModel`` (2 double-stream ``transformer_blocks``, 2
``single_transformer_blocks``, 2 heads of 16, ``patch_size=1`` on 8x8x4 latents packed 2x2 into 16 tokens of
16 channels as ``FluxPipeline._pack_latents`` does, with ``img_ids``/``txt_ids`` and RoPE axes (4, 6, 6),
``guidance_embeds=False`` as FLUX.1 [schnell]), a tiny ``T5EncoderModel`` whose last hidden states are the
sequence conditioning (``encoder_hidden_states``, FLUX's ``text_encoder_2``) and a small ``CLIPTextModel``
whose pooled output is ``pooled_projections`` (FLUX's ``text_encoder``). Pre-trained together on the
generic captioned patterns of ``build_corpus.py`` with the rectified-flow objective of diffusers'
``train_dreambooth_lora_flux.py`` (``x_t = (1 - t) x0 + t noise``, target ``noise - x0``, ``timestep = t``).

LoRAs: rank 4, ``init_lora_weights="gaussian"``, on the transformer only (the text encoders frozen, as that
script does without ``--train_text_encoder``), target modules the script's default (``attn.to_k``,
``attn.to_q``, ``attn.to_v``, ``attn.to_out.0``, ``attn.add_k_proj``, ``attn.add_q_proj``, ``attn.add_v_proj``,
``attn.to_add_out``, ``ff.net.0.proj``, ``ff.net.2``, ``ff_context.net.0.proj``, ``ff_context.net.2``; the
``attn.to_*`` names also match the single blocks' attention) plus the single blocks' ``proj_mlp`` and
``proj_out`` (the rest of BFL's ``linear1``/``linear2``, which kohya's Flux trainer covers). The seed sets the
LoRA init, the data order, the noise and the timesteps. Run kinds, seeds and checkpoints are
``build_sdxl.py``'s: ``main`` (1/3, 2/3, end), ``shared`` (seed 42, 1/3, 2/3, end), ``looks``, ``near``
(``--near``), ``retrain`` (``--retrain N``), ``cont``. Files are written by ``FluxPipeline.save_lora_weights``
(``transformer.transformer_blocks.0.attn.to_q.lora_A.weight`` ...); diffusers has no kohya writer for Flux,
so there is no ``.kohya`` file and ``corpus.py`` derives the variants from the final diffusers file.

Cost: about 3 s per 60-step run, 12 s per 240-step run, on one niced core of a busy 2-core machine. The
corpora of the Flux figures (issue 14; outputs outside the repository)::

    for P in 0 1; do nice -n 19 python build_flux.py --out /tmp/mw-flux --concepts 24 --near --retrain 24 \
        --shard $P/2 & done; wait    # 144 runs, 4.8 minutes on 2 cores
    for P in 0 1; do nice -n 19 python build_flux.py --out /tmp/mw-flux --concepts 48 --first 24 --near \
        --retrain 48 --shard $P/2 & done; wait    # 144 more runs, 4.9 minutes
    for P in 0 1; do nice -n 19 python build_flux.py --out /tmp/mw-flux-long --concepts 12 --steps 240 --near \
        --retrain 12 --shard $P/2 & done; wait    # 72 runs, 4 minutes
    for P in 0 1; do nice -n 19 python build_flux.py --out /tmp/mw-flux-long --concepts 24 --first 12 --steps 240 \
        --near --retrain 24 --shard $P/2 & done; wait    # 72 more runs

then ``bench_trained.py --corpus /tmp/mw-flux /tmp/mw-flux-long --calibrate`` (both lengths: the Flux layout's
output-side bound, ``LINEAGE_CALIBRATION["flux_layout"]``).
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
    SEQ,
    SHARED_SEED,
    VOCAB,
    _concepts_of,
    concept_params,
    dataset,
    generic_batch,
    tokens,
)
from diffusers import FluxPipeline, FluxTransformer2DModel  # noqa: E402
from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model, set_peft_model_state_dict  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel  # noqa: E402

CH = 4  # latent channels; packed 2x2 -> 16 per token
H_T5, H_CLIP = 32, 32
N_DOUBLE, N_SINGLE = 2, 2
TRANSFORMER_TARGETS = [
    "attn.to_k", "attn.to_q", "attn.to_v", "attn.to_out.0", "attn.add_k_proj", "attn.add_q_proj", "attn.add_v_proj",
    "attn.to_add_out", "ff.net.0.proj", "ff.net.2", "ff_context.net.0.proj", "ff_context.net.2",
    *[f"single_transformer_blocks.{i}.{m}" for i in range(N_SINGLE) for m in ("proj_mlp", "proj_out")],
]


def make_base():
    torch.manual_seed(0)
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=4 * CH, num_layers=N_DOUBLE, num_single_layers=N_SINGLE, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=H_T5, pooled_projection_dim=H_CLIP, guidance_embeds=False,
        axes_dims_rope=(4, 6, 6),
    )
    clip = CLIPTextModel(CLIPTextConfig(vocab_size=VOCAB, hidden_size=H_CLIP, intermediate_size=2 * H_CLIP,
                                        num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=SEQ,
                                        bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD))
    t5 = T5EncoderModel(T5Config(vocab_size=VOCAB, d_model=H_T5, d_kv=8, d_ff=2 * H_T5, num_layers=2, num_heads=4,
                                 relative_attention_num_buckets=8, pad_token_id=PAD, eos_token_id=EOS,
                                 decoder_start_token_id=PAD))
    return transformer, clip, t5


IMG_IDS = FluxPipeline._prepare_latent_image_ids(1, RES // 2, RES // 2, "cpu", torch.float32)
TXT_IDS = torch.zeros(SEQ, 3)


def loss_on(transformer, clip, t5, imgs, caps, gen):
    """The rectified-flow loss of diffusers' train_dreambooth_lora_flux.py (uniform timesteps, no weighting)."""
    b = imgs.shape[0]
    noise = torch.randn(imgs.shape, generator=gen)
    t = torch.rand((b,), generator=gen)
    noisy = (1.0 - t[:, None, None, None]) * imgs + t[:, None, None, None] * noise
    pooled = clip(caps).pooler_output
    seq = t5(caps).last_hidden_state
    packed = FluxPipeline._pack_latents(noisy, b, CH, RES, RES)
    pred = transformer(hidden_states=packed, encoder_hidden_states=seq, pooled_projections=pooled, timestep=t,
                       img_ids=IMG_IDS, txt_ids=TXT_IDS, return_dict=False)[0]
    target = FluxPipeline._pack_latents(noise - imgs, b, CH, RES, RES)
    return torch.nn.functional.mse_loss(pred, target)


def pretrain(models, steps: int) -> None:
    rng = np.random.default_rng(1)
    gen = torch.Generator().manual_seed(1)
    opt = torch.optim.AdamW([p for m in models for p in m.parameters()], lr=2e-3)
    for step in range(steps):
        imgs, caps = generic_batch(rng, 16)
        loss = loss_on(*models, imgs, caps, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0:
            print(f"  pretrain step {step} loss {loss.item():.4f}", flush=True)
    for m in models:
        m.requires_grad_(False)


def add_lora(base, seed: int, state: dict | None):
    transformer = copy.deepcopy(base[0])  # the text encoders stay frozen and shared
    torch.manual_seed(seed)
    transformer = inject_adapter_in_model(
        LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian", target_modules=TRANSFORMER_TARGETS), transformer)
    if state is not None:
        set_peft_model_state_dict(transformer, state)
    params = [p for n, p in transformer.named_parameters() if "lora_" in n]
    for p in params:
        p.requires_grad_(True)
    return (transformer, base[1], base[2]), params


def lora_state(models) -> dict:
    return {k: v.detach().clone() for k, v in get_peft_model_state_dict(models[0]).items()}


def save(state: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    FluxPipeline.save_lora_weights(str(path.parent), transformer_lora_layers=state, weight_name=path.name)


def train_run(base, imgs, caps, *, seed, steps, ckpts, lr, init, out, name):
    models, params = add_lora(base, seed, init)
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
            save(lora_state(models), out / "files" / fname)
            files.append({"file": f"files/{fname}", "step": step, "steps": steps, "loss": round(loss.item(), 4),
                          "kohya": None})
    return files, lora_state(models)


def _base_digest(models) -> str:
    import hashlib

    h = hashlib.sha256()
    for i, m in enumerate(models):
        for _, v in sorted(m.state_dict().items()):
            h.update(str(i).encode())
            h.update(v.detach().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--concepts", type=int, default=4)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--pretrain", type=int, default=150)
    ap.add_argument("--near", action="store_true", help="also a near look-alike per concept, trained with the "
                    "shared seed (the hardest same-seed case)")
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
    digest = _base_digest(base)
    steps = args.steps
    ck = [steps // 3, 2 * steps // 3, steps]
    runs = []
    tag = ("" if args.shard == "0/1" else "-" + args.shard.replace("/", "of")) + (f"-from{args.first}" if args.first
                                                                                else "")
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
        finals = {}
        for kind, data, im, cp, seed, n_steps, ckpts, parent, lr in plan:
            name = f"{cn}-{kind}"
            files, final = train_run(base, im, cp, seed=seed, steps=n_steps, ckpts=ckpts, lr=lr,
                                     init=finals[parent] if parent else None, out=out, name=name)
            finals[kind] = final
            runs.append({"run": name, "kind": kind, "concept": data, "base_concept": c, "half": half, "seed": seed,
                         "data": data, "rank": 4, "parent": f"{cn}-{parent}" if parent else None, "files": files})
            print(f"  {name}: {[f['loss'] for f in files]}  ({time.time() - t0:.0f} s)", flush=True)
        write_manifest(out, tag, steps, ck, digest, runs, t0, complete=False)  # usable while it runs
    write_manifest(out, tag, steps, ck, digest, runs, t0, complete=True)
    print(f"done: {len(runs)} runs in {time.time() - t0:.0f} s -> {out}")


def write_manifest(out: Path, tag: str, steps: int, ck: list[int], digest: str, runs: list[dict], t0: float, *,
                   complete: bool) -> None:
    manifest = {"format": 2, "steps": steps, "checkpoints": ck, "shared_seed": SHARED_SEED, "rank": 4,
                "layout": "flux", "transformer_targets": TRANSFORMER_TARGETS, "base": digest,
                "runs": runs, "seconds": round(time.time() - t0, 1), "complete": complete}
    tmp = out / f"manifest{tag}.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1))
    tmp.replace(out / f"manifest{tag}.json")


if __name__ == "__main__":
    main()
