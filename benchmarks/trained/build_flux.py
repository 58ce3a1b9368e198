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
    for P in 0 1; do nice -n 15 python build_flux.py --out /tmp/mw-flux --concepts 48 --extra-seeds 5 --extra-only \
        --shard $P/2 & done; wait    # 240 more runs, 2 minutes: more distinct unrelated trainings

then ``bench_trained.py --corpus /tmp/mw-flux /tmp/mw-flux-long --calibrate`` (both lengths: the Flux layout's
output-side bound, ``LINEAGE_CALIBRATION["flux_layout"]``).
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

torch.set_num_threads(1)

from build_corpus import (  # noqa: E402
    BOS,
    EOS,
    PAD,
    RES,
    SEQ,
    VOCAB,
    Run,
    add_extra_seeds,
    add_retrain,
    build,
    descend,
    driver_parser,
    extra_plan,
    parse,
    pretrain,
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


def train_run(base, run: Run, name: str, init: dict | None, out: Path) -> tuple[list[dict], dict]:
    models, params = add_lora(base, run.seed, init)
    files = []
    for step, loss in descend(models, params, run, loss_on):
        fname = f"{name}-s{step:04d}.safetensors"
        save(lora_state(models), out / "files" / fname)
        files.append({"file": f"files/{fname}", "step": step, "steps": run.steps, "loss": round(loss, 4),
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
    ap = driver_parser(__doc__, concepts=4, pretrain=150)
    add_retrain(ap)
    add_extra_seeds(ap)
    args, t0 = parse(ap, 50, "trigger tokens 100-149, look-alikes 150-199, near 200-249")
    base = make_base()
    pretrain(base, args.pretrain, loss_on, report_every=50)
    build(args, t0, _base_digest(base), {"layout": "flux", "transformer_targets": TRANSFORMER_TARGETS}, extra_plan,
          lambda run, name, init: train_run(base, run, name, init, args.out))


if __name__ == "__main__":
    main()
