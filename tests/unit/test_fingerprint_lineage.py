"""Fingerprint relations on genuinely trained LoRAs (issue 14).

The fingerprints in tests/data/trained/ come from LoRAs trained by real gradient descent
(benchmarks/trained/build_corpus.py: a tiny diffusers UNet with SD1.5 module names and a CLIP text
encoder, rank-4 peft LoRAs, held-out half of the corpus). The two .safetensors files there are one
checkpoint exactly as diffusers' own writers saved it: ``StableDiffusionLoraLoaderMixin.save_lora_weights``
of ``convert_state_dict_to_diffusers(get_peft_model_state_dict(...))`` (keys ``unet.….lora.down.weight``,
``….lora_linear_layer.up.weight``, ``….lora_A.weight``, as diffusers' train_text_to_image_lora.py writes
them) and ``convert_state_dict_to_kohya`` of the same state (``lora_unet_…``, ``lora_te1_…``, int64 alphas).
``c67-near-s0060.diffusers.safetensors`` and ``c67-shared-s0020.diffusers.safetensors`` are two more files of
the corpus (held-out half, 70-concept build) exactly as the same diffusers writer saved them: a near
look-alike's final and the 1/3 checkpoint of the run trained with the same seed on the original concept.
"""

from __future__ import annotations

from collections import Counter

import pytest

from mirrorwatch.match.fingerprint import Similarity, compare, fingerprint_file
from mirrorwatch.match.fingerprint.lineage import (
    LINEAGE_THRESHOLDS,
    RELATION_MEANINGS,
    RELATIONS,
    layout,
    pair_signals,
    relation,
)
from mirrorwatch.match.fingerprint.names import canonical_module_name
from mirrorwatch.match.scores import fingerprint_score
from trained_data import DATA, fingerprint, labelled_pairs

PAIRS = labelled_pairs()

#: The one pair kind the rule does not give the relation the corpus labels it with: a checkpoint at 1/3 of
#: its run is `derived` in truth, but at that distance a same-seed training of near-identical data lies
#: where it lies (LINEAGE_CALIBRATION["early_checkpoints"]), so the rule makes it a lead that says so.
KNOWN_MISS = {"checkpoint_early": "similar_training"}
FAR_WHY = "possibly an earlier checkpoint"


def test_the_committed_set_covers_every_pair_kind():
    kinds = Counter(p["kind"] for p in PAIRS)
    for kind in ("lossless", "checkpoint_early", "checkpoint", "continued", "resize_half", "merge_50_50",
                 "retrain_same_data", "lookalike_same_seed", "lookalike_other_seed", "unrelated_same_seed",
                 "unrelated"):
        assert kinds[kind] >= 1, kind


@pytest.mark.parametrize("pair", PAIRS, ids=[f"{p['kind']}:{p['bank']}~{p['file']}" for p in PAIRS])
def test_relation_per_pair_kind(pair):
    sim = compare(fingerprint(pair["file"]), fingerprint(pair["bank"]))
    rel = sim.relation()
    if pair["kind"] in KNOWN_MISS:
        assert rel == KNOWN_MISS[pair["kind"]], (rel, sim.score, sim.details["lineage"])
        assert any(FAR_WHY in why for why in sim.details["relation_why"]), sim.details["relation_why"]
    else:
        assert rel in pair["expected"], (rel, sim.score, sim.details["lineage"], sim.details["relation_why"])
    # the relation is symmetric, and the evidence says what it means
    assert compare(fingerprint(pair["bank"]), fingerprint(pair["file"])).relation() == rel
    assert sim.details["relation"] == rel and sim.details["relation_meaning"] == RELATION_MEANINGS[rel]
    assert sim.verdict() == (rel if rel in ("same_weights", "derived") else "no_match")


def test_correlated_trainings_are_never_claims():
    for pair in PAIRS:
        if "derived" in pair["expected"] or "same_weights" in pair["expected"]:
            continue
        sim = compare(fingerprint(pair["file"]), fingerprint(pair["bank"]))
        score = fingerprint_score(sim)
        assert score is None or score <= 0.6, (pair, score)  # a lead at most, below every claim band


def test_same_seed_shows_in_the_down_side_and_same_data_in_the_up_side():
    same_seed = pair_signals(fingerprint("c03-shared-s0060"), fingerprint("c05-shared-s0060"))
    other_seed = pair_signals(fingerprint("c03-main-s0060"), fingerprint("c05-main-s0060"))
    assert same_seed["in_shared"] > 0.9 > 0.5 > other_seed["in_shared"]
    same_data = pair_signals(fingerprint("c01-main-s0060"), fingerprint("c01-retrain-s0060"))
    assert same_data["in_shared"] < 0.5 and same_data["out_shared"] > other_seed["out_shared"]
    # compare() stores them only when the score can make the pair more than unrelated
    sim = compare(fingerprint("c03-main-s0060"), fingerprint("c05-main-s0060"))
    assert sim.score < 0.2 and "skipped" in sim.details["lineage"] and sim.relation() == "unrelated"


def test_real_diffusers_writer_output_and_its_kohya_conversion():
    diffusers_fp = fingerprint_file(DATA / "c01-main-s0060.diffusers.safetensors")
    kohya_fp = fingerprint_file(DATA / "c01-main-s0060.kohya.safetensors")
    assert len(diffusers_fp) == len(kohya_fp) == len(fingerprint("c01-main-s0060"))
    assert compare(diffusers_fp, kohya_fp).relation() == "same_weights"
    assert compare(diffusers_fp, fingerprint("c01-main-s0060")).relation() == "same_weights"
    assert compare(kohya_fp, fingerprint("c01-cont-s0030")).relation() == "derived"


def test_relation_without_lineage_signals_is_never_a_derived_claim():
    # a result made without the signals (not by compare): a lossy score is only a lead
    assert Similarity(0.6, "names", 10, 10, {}).relation() == "similar_training"
    assert Similarity(0.9995, "names", 10, 10, {}).relation() == "same_weights"
    assert Similarity(0.1, "names", 10, 10, {}).relation() == "unrelated"
    assert set(RELATIONS) == {"same_weights", "derived", "similar_training", "unrelated"}


def test_similar_training_evidence_is_a_lead_not_a_claim():
    from mirrorwatch.match.hits import Hit, is_lead, similar_training_only
    from mirrorwatch.match.robust import fingerprint_evidence

    lead = fingerprint_evidence(compare(fingerprint("c05-shared-s0060"), fingerprint("c03-shared-s0060")))
    claim = fingerprint_evidence(compare(fingerprint("c01-cont-s0030"), fingerprint("c01-main-s0060")))
    assert lead["relation"] == "similar_training" and lead["lead"] is True and lead["verdict"] == "no_match"
    assert claim["relation"] == "derived" and "lead" not in claim
    name = {"tier": 2, "kind": "header", "field": "name", "value": "x"}
    assert similar_training_only([lead]) and similar_training_only([lead, name])
    assert not similar_training_only([lead, claim]) and not similar_training_only([name]) and not similar_training_only([])
    assert is_lead(Hit(1, 2, 0.55, [lead], 3)) and not is_lead(Hit(1, 2, 0.8, [claim], 3))


# -- the growth and share signals on constructed sketches (what each rule relies on, without a corpus) --
def _fp(sketches, names=None):
    from mirrorwatch.match.fingerprint import Fingerprint

    names = names or [f"unet.down_blocks.0.attentions.0.transformer_blocks.0.attn{i}.to_q" for i in range(len(sketches))]
    return Fingerprint.from_sketches([(n, (64, 64), s) for n, s in zip(names, sketches, strict=True)], family="sd1")


def _low_rank(rng, n, rank=4, k=16):
    return [(rng.normal(size=(k, rank)), rng.normal(size=(rank, k))) for _ in range(n)]


def test_a_later_point_of_one_training_lies_beyond_it_a_same_seed_lookalike_beside_it():
    import numpy as np

    rng = np.random.default_rng(7)
    factors = _low_rank(rng, 24)  # one initialisation (the row/column spaces), 24 layers of rank 4
    early = [u @ v for u, v in factors]
    # a later checkpoint: the same directions, each layer grown by its own amount and turned a little
    later = [u @ (rng.uniform(1.4, 2.2) * np.eye(4) + 0.35 * rng.normal(size=(4, 4))) @ v for u, v in factors]
    # a same-seed look-alike at the same step: the same directions, as far from the original as the
    # later checkpoint is, but with the same energy (side by side, not beyond)
    beside = []
    for u, v in factors:
        m = np.eye(4) + 0.35 * rng.normal(size=(4, 4))
        beside.append(u @ (m * (np.linalg.norm(u @ v) / np.linalg.norm(u @ m @ v))) @ v)
    a, b, c = _fp(early), _fp(later), _fp(beside)
    to_later, to_beside = pair_signals(a, b), pair_signals(a, c)
    assert to_later["in_shared"] > 0.99 and to_beside["in_shared"] > 0.99  # both share the initialisation
    assert to_later["agree_frac"] > 0.9 and to_beside["agree_frac"] > 0.9
    assert to_later["growth"] > 0.3 > 0.1 > to_beside["growth"]
    assert compare(b, a).relation() == "derived"
    sim = compare(c, a)
    assert sim.score > 0.8 and sim.relation() == "similar_training"
    assert any("beyond" in why for why in sim.details["relation_why"])


def test_high_rank_updates_need_the_trajectory_or_a_merge_share_not_a_score():
    import numpy as np

    rng = np.random.default_rng(11)
    x = [rng.normal(size=(16, 16)) for _ in range(24)]  # rank 16: every sketch full, no subspace signals
    y = [rng.normal(size=(16, 16)) for _ in range(24)]
    grown = [1.8 * s + 0.6 * rng.normal(size=(16, 16)) for s in x]
    merged = [0.5 * s + 0.5 * t for s, t in zip(x, y, strict=True)]
    side = [s + 0.7 * rng.normal(size=(16, 16)) for s in x]
    side = [t * (np.linalg.norm(s) / np.linalg.norm(t)) for s, t in zip(x, side, strict=True)]
    a = _fp(x)
    assert pair_signals(a, _fp(grown))["in_shared"] is None  # rank > k/2: the row/column spaces are mute
    assert compare(_fp(grown), a).relation() == "derived"
    merge = compare(_fp(merged), a)
    assert merge.relation() == "derived" and "merge" in " ".join(merge.details["relation_why"])
    side_sim = compare(_fp(side), a)
    assert side_sim.score > 0.7 and side_sim.relation() == "similar_training"  # once "derived" by score alone
    assert compare(_fp(y), a).relation() == "unrelated"


def test_same_seed_lookalikes_are_leads_never_derived():
    # calibration half, c00: a look-alike concept trained with the same seed, noise and data order; the
    # previous rule called this pair derived (score 0.84, row spaces 0.99, 99% of layers agreeing)
    sim = compare(fingerprint("c00-looks-s0060"), fingerprint("c00-shared-s0060"))
    assert sim.score > 0.8 and sim.details["lineage"]["in_shared"] > 0.95
    assert sim.details["lineage"]["growth"] < 0 and sim.relation() == "similar_training"
    assert any("beyond" in why for why in sim.details["relation_why"])
    # c04: a *near* look-alike's final against the shared run's 2/3 checkpoint; it even lies beyond it
    # (growth 0.31); its output directions agree less than a 2/3 checkpoint's (0.90; those >= 0.93)
    near = compare(fingerprint("c04-near-s0060"), fingerprint("c04-shared-s0040"))
    assert near.score > 0.85 and near.details["lineage"]["growth"] > 0.25
    assert near.details["lineage"]["out_shared"] < LINEAGE_THRESHOLDS.derived_out_shared
    assert near.relation() == "similar_training" and near.verdict() == "no_match"
    # held-out c01: every same-seed look-alike pair, near ones included, is a lead at most
    for pair in PAIRS:
        if pair["kind"] == "lookalike_same_seed":
            assert compare(fingerprint(pair["file"]), fingerprint(pair["bank"])).relation() != "derived", pair


def test_rank_16_lineage_and_same_seed_retraining():
    main, early = fingerprint("c01-r16main-s0060"), fingerprint("c01-r16main-s0020")
    early_sim = compare(early, main)  # the 1/3 checkpoint: a lead that says what it may be (KNOWN_MISS)
    assert early_sim.relation() == "similar_training"
    assert any(FAR_WHY in why for why in early_sim.details["relation_why"])
    assert compare(fingerprint("c01-r16cont-s0030"), main).relation() == "derived"
    # the rank-16 same-data retraining with the shared seed against the early checkpoint: score 0.38,
    # which issue 4's score rule for ranks > 8 called derived
    sim = compare(fingerprint("c01-r16shared-s0060"), early)
    assert sim.score > 0.3 and sim.relation() != "derived"


# -- SDXL module names (benchmarks/trained/build_sdxl.py: a tiny UNet with SDXL's block layout, two text
# encoders). The two files are one checkpoint exactly as diffusers wrote it: StableDiffusionXLPipeline.
# save_lora_weights (unet.…, text_encoder.…, text_encoder_2.…) and convert_state_dict_to_kohya of the same
# state (lora_unet_down_blocks_…, lora_te1_…, lora_te2_…).
def _sdxl_fp(item_id: str):
    import base64
    import json

    from mirrorwatch.match.fingerprint import Fingerprint

    data = json.loads((DATA / "sdxl_fingerprints.json").read_text())
    rec = next(r for r in data["items"] if r["id"] == item_id)
    return Fingerprint.from_bytes(base64.b64decode(rec["fingerprint"]))


def test_sdxl_layout_trained_loras_from_the_real_writers():
    diffusers_fp = fingerprint_file(DATA / "c01-main-s0060.sdxl.diffusers.safetensors")
    kohya_fp = fingerprint_file(DATA / "c01-main-s0060.sdxl.kohya.safetensors")
    assert diffusers_fp.names == kohya_fp.names
    assert any(n.startswith("te1.") for n in kohya_fp.names) and any(n.startswith("te2.") for n in kohya_fp.names)
    assert any("transformer_blocks_1" in n or "transformer_blocks.1" in n for n in kohya_fp.names)
    assert kohya_fp.stats["unknown_keys"] == 0 and kohya_fp.stats["ignored_keys"] == 0
    assert compare(diffusers_fp, kohya_fp).relation() == "same_weights"
    early = compare(_sdxl_fp("c01-main-s0020"), kohya_fp)  # the 1/3 checkpoint: a lead (KNOWN_MISS)
    assert early.relation() == "similar_training" and any(FAR_WHY in w for w in early.details["relation_why"])
    assert compare(_sdxl_fp("c01-cont-s0030"), diffusers_fp).relation() == "derived"
    # the same-seed look-alike with two text encoders on another trigger: a lead, not derived
    assert compare(_sdxl_fp("c01-looks-s0060"), _sdxl_fp("c01-shared-s0060")).relation() != "derived"


def _sdxl_pairs() -> list[dict]:
    import json

    return json.loads((DATA / "sdxl_fingerprints.json").read_text())["pairs"]


def test_layout_from_the_layer_names_of_real_writers_files():
    sd15 = [fingerprint_file(DATA / f"c01-main-s0060.{w}.safetensors") for w in ("diffusers", "kohya")]
    sdxl = [fingerprint_file(DATA / f"c01-main-s0060.sdxl.{w}.safetensors") for w in ("diffusers", "kohya")]
    # diffusers' StableDiffusionLoraLoaderMixin writer and its kohya converter (one text encoder, one transformer
    # block per attention) / StableDiffusionXLPipeline.save_lora_weights and its kohya converter (lora_te2_,
    # transformer_blocks_1)
    assert [layout(fp.names) for fp in sd15] == ["sd", "sd"]
    assert [layout(fp.names) for fp in sdxl] == ["sdxl", "sdxl"]
    # a UNet-only SDXL LoRA still has SDXL's attention blocks; text encoders alone say nothing of the UNet
    assert layout([n for n in sdxl[1].names if n.startswith("unet.")]) == "sdxl"
    assert layout([n for n in sdxl[1].names if n.startswith("te")]) == "sd"
    # real SDXL kohya keys (sgm block names), canonicalised: input block 7 = down block 2, its second transformer
    names = [canonical_module_name("lora_unet_input_blocks_7_1_transformer_blocks_1_attn2_to_k.lora_down.weight"),
             canonical_module_name("lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight")]
    assert names[0] == "unet.down_blocks_2_attentions_0_transformer_blocks_1_attn2_to_k" and layout(names) == "sdxl"
    assert layout([canonical_module_name("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"
                                         ".lora_down.weight")]) == "sd"
    # the signal is stored with the evidence
    assert compare(sdxl[0], _sdxl_fp("c01-cont-s0030")).details["lineage"]["layout"] == "sdxl"
    assert compare(sd15[0], fingerprint("c01-cont-s0030")).details["lineage"]["layout"] == "sd"


#: every other committed set: its file (tests/data/trained/), the build it comes from; the files were written by
#: diffusers' own writers (StableDiffusionLoraLoaderMixin / StableDiffusionXLPipeline / FluxPipeline
#: .save_lora_weights)
OTHER_SETS = {
    "sdxl_fingerprints.json": "build_sdxl.py --concepts 48 --near --retrain 48, held-out concepts",
    "long_fingerprints.json": "build_corpus.py --concepts 24 --steps 240 --near",
    "sdxl_long_fingerprints.json": "build_sdxl.py --concepts 16 --steps 240 --near --retrain 16",
    "flux_fingerprints.json": "build_flux.py --concepts 48 --near --retrain 48",
    "flux_long_fingerprints.json": "build_flux.py --concepts 24 --steps 240 --near --retrain 24",
}
OTHER_PAIRS = [(name, pair) for name in OTHER_SETS for pair in labelled_pairs(name)]
#: sets whose 1/3 checkpoints may lie below far_out_shared: leads with the generic reasons only (c09 of the long
#: Flux runs: output directions 0.75)
GENERIC_LEADS = {"flux_long_fingerprints.json"}


@pytest.mark.parametrize(("name", "pair"), OTHER_PAIRS,
                         ids=[f"{n.split('_fp')[0].removesuffix('.json')}:{p['kind']}:{p['bank']}~{p['file']}"
                              for n, p in OTHER_PAIRS])
def test_relation_per_pair_kind_in_every_other_set(name, pair):
    sim = compare(fingerprint(pair["file"], name), fingerprint(pair["bank"], name))
    rel = sim.relation()
    if pair["kind"] in KNOWN_MISS:
        assert rel == KNOWN_MISS[pair["kind"]]
        assert name in GENERIC_LEADS or any(FAR_WHY in w for w in sim.details["relation_why"])
    else:
        assert rel in pair["expected"], (rel, sim.score, sim.details["lineage"], sim.details["relation_why"])


def test_sdxl_checkpoints_at_two_thirds_are_derived_with_the_layouts_bound():
    from dataclasses import replace

    sd15_bound = replace(LINEAGE_THRESHOLDS, derived_out_shared_sdxl=LINEAGE_THRESHOLDS.derived_out_shared)
    # shared-seed runs whose 2/3 checkpoint's output directions (c31: 0.905, the lowest of 96; c01: 0.919) are
    # below the SD1.5 layout's bound: leads under it, derived under the SDXL layout's
    for run in ("c31-shared", "c01-shared"):
        sim = compare(_sdxl_fp(f"{run}-s0040"), _sdxl_fp(f"{run}-s0060"))
        sig = sim.details["lineage"]
        assert sig["layout"] == "sdxl"
        assert LINEAGE_THRESHOLDS.derived_out_shared_sdxl + 0.02 <= sig["out_shared"] < LINEAGE_THRESHOLDS.derived_out_shared
        assert sim.relation() == "derived" and sim.verdict() == "derived"
        assert any("SDXL layout" in w for w in sim.details["relation_why"]), sim.details["relation_why"]
        assert sim.relation(sd15_bound) == "similar_training"


def test_sdxl_same_seed_near_lookalike_stays_below_the_bound():
    # c41 (held-out): the near look-alike whose output directions come nearest the shared run's of all 65,750
    # held-out pairs (0.853 against its final) -- the same initialisation, noise and data order
    near = _sdxl_fp("c41-near-s0060")
    no_te_guard = _no_te_guard()
    for other in ("c41-shared-s0040", "c41-shared-s0060"):
        sim = compare(near, _sdxl_fp(other))
        sig = sim.details["lineage"]
        assert sig["in_shared"] > 0.95 and sig["out_shared"] <= LINEAGE_THRESHOLDS.derived_out_shared_sdxl - 0.02
        assert sim.relation() == "similar_training" and sim.verdict() == "no_match"
        # the bound alone keeps it out: the text-encoder guard is not counted on
        assert relation(sim.score, sig, no_te_guard)[0] == "similar_training"
    # against the shared run's 1/3 checkpoint the near look-alike lies beyond it as a later checkpoint does
    # (growth 0.32): why a 1/3 checkpoint stays a lead on the SDXL layout too
    far = compare(near, _sdxl_fp("c41-shared-s0020"))
    true_far = compare(_sdxl_fp("c41-shared-s0060"), _sdxl_fp("c41-shared-s0020"))
    assert far.details["lineage"]["growth"] > 0.3 and true_far.details["lineage"]["growth"] > 0.3
    assert far.relation() != "derived" and true_far.relation() == "similar_training"


def _no_te_guard():
    from dataclasses import replace

    return replace(LINEAGE_THRESHOLDS, derived_te_ratio=float("-inf"))


# -- earlier checkpoints against same-seed near look-alikes (70-concept corpus) ----------------------------
def _rule_of_48_concepts():
    """The thresholds calibrated on the 48-concept corpus: trajectory from output directions 0.78, with the
    text-encoder guard (ratio >= 0.9) as the only thing keeping near look-alikes out."""
    from dataclasses import replace

    return replace(LINEAGE_THRESHOLDS, derived_score=0.55, derived_out_shared=0.78, derived_agree=0.7)


def test_a_near_lookalike_against_an_earlier_checkpoint_is_a_lead_and_looks_like_one():
    # c66 (calibration half): the shared run's final and its near look-alike's final, each against the
    # shared run's 1/3 checkpoint. The first is an earlier checkpoint of its run, the second is not; every
    # signal the fingerprint holds says the same of both (and so does the full ΔW: score 0.85 / 0.81,
    # text-encoder ratio 1.04 / 0.93, growth 0.61 / 0.54)
    early = fingerprint("c66-shared-s0020")
    true_pair = pair_signals(fingerprint("c66-shared-s0060"), early)
    near_pair = pair_signals(fingerprint("c66-near-s0060"), early)
    for key in ("in_shared", "out_shared", "agree_frac", "growth", "te_ratio"):
        assert abs(true_pair[key] - near_pair[key]) < 0.12, (key, true_pair[key], near_pair[key])
    assert near_pair["te_ratio"] > 0.9  # the text-encoder guard of the 48-concept rule let it through
    old = _rule_of_48_concepts()
    near_score = compare(fingerprint("c66-near-s0060"), early).score
    assert relation(near_score, near_pair, old)[0] == "derived"  # the false claim the new rule removes
    for bank in ("c66-shared-s0060", "c66-near-s0060"):
        sim = compare(early, fingerprint(bank))
        assert sim.relation() == "similar_training" and sim.verdict() == "no_match"
        assert any(FAR_WHY in why for why in sim.details["relation_why"])


def test_real_files_near_lookalike_and_the_shared_runs_early_checkpoint():
    # held-out c67: the near look-alike's text encoder agrees with the shared run's 1/3 checkpoint *more*
    # than the UNet does (ratio 1.06); the 48-concept rule called the pair derived. Read from the files.
    near = fingerprint_file(DATA / "c67-near-s0060.diffusers.safetensors")
    early = fingerprint_file(DATA / "c67-shared-s0020.diffusers.safetensors")
    assert compare(near, fingerprint("c67-near-s0060")).relation() == "same_weights"
    sim = compare(early, near)
    sig = sim.details["lineage"]
    assert sig["in_shared"] > 0.95 and sig["growth"] > 0.3 and sig["te_ratio"] > 1.0
    assert relation(sim.score, sig, _rule_of_48_concepts())[0] == "derived"
    assert sim.relation() == "similar_training" and sim.verdict() == "no_match"
    # ... and against the shared run's 2/3 checkpoint and its final: leads, never derived
    for other in ("c67-shared-s0040", "c67-shared-s0060"):
        assert compare(fingerprint(other), near).relation() == "similar_training"
    # the shared run's own 2/3 checkpoint and its final: derived (output directions >= 0.92)
    two_thirds = compare(fingerprint("c67-shared-s0040"), fingerprint("c67-shared-s0060"))
    assert two_thirds.relation() == "derived"
    assert two_thirds.details["lineage"]["out_shared"] >= LINEAGE_THRESHOLDS.derived_out_shared


def test_the_opt_in_rule_for_earlier_checkpoints_and_what_it_costs():
    from dataclasses import replace

    opt_in = replace(LINEAGE_THRESHOLDS, derived_far_te_ratio=1.0)  # the value calibrated on the 70 concepts
    # it turns earlier checkpoints whose text encoder agrees as the UNet does into derived claims ...
    early = compare(fingerprint("c66-shared-s0020"), fingerprint("c66-shared-s0060"))
    assert early.relation() == "similar_training" and early.relation(opt_in) == "derived"
    # ... and, on the held-out half, one near look-alike with it (c67): the price, which is why it is off
    near = compare(fingerprint("c67-shared-s0020"), fingerprint("c67-near-s0060"))
    assert near.relation() == "similar_training" and near.relation(opt_in) == "derived"


# -- runs four times longer (build_corpus.py --concepts 24 --steps 240 --near: checkpoints at 80 / 160 / 240;
# the files were written by diffusers' StableDiffusionLoraLoaderMixin.save_lora_weights). Their updates level
# off: a later checkpoint lies less far beyond an earlier one than in the 60-step corpus, and a same-seed near
# look-alike has drifted away from the shared run (LINEAGE_CALIBRATION["long_runs"]).
LONG = "long_fingerprints.json"


def _long(item_id: str):
    return fingerprint(item_id, LONG)


def test_long_run_checkpoint_at_two_thirds_lies_beyond_not_only_close():
    from dataclasses import replace

    # c14: score 0.951, growth 0.205 -- derived because it lies beyond the earlier update, not only because its
    # score passed derived_close by 0.001 (as under the 60-step corpus's growth bound of 0.25)
    sim = compare(_long("c14-main-s0160"), _long("c14-main-s0240"))
    sig = sim.details["lineage"]
    assert LINEAGE_THRESHOLDS.derived_growth < sig["growth"] < 0.25 and sim.score < 0.96
    assert sim.relation() == "derived" and any("lies beyond" in w for w in sim.details["relation_why"])
    sixty_step_rule = replace(LINEAGE_THRESHOLDS, derived_growth=0.25)
    assert sim.relation(replace(sixty_step_rule, derived_close=0.96)) == "similar_training"


def test_long_run_near_lookalike_is_not_beyond_the_early_checkpoint():
    # c04: the near look-alike trained with the shared run's seed, noise and data order lies less far beyond the
    # shared run's 1/3 checkpoint (growth 0.18) than any true checkpoint pair of this length (>= 0.19), with a
    # lower score; the rule still makes the true 1/3 checkpoint only a lead (the 60-step corpus's look-alikes lie
    # where it lies)
    near = compare(_long("c04-near-s0240"), _long("c04-shared-s0080"))
    true = compare(_long("c04-shared-s0080"), _long("c04-shared-s0240"))
    assert near.details["lineage"]["growth"] < true.details["lineage"]["growth"] and near.score < true.score
    assert near.relation() == "similar_training" and near.verdict() == "no_match"
    assert true.relation() == "similar_training" and any(FAR_WHY in w for w in true.details["relation_why"])
    assert compare(_long("c04-shared-s0160"), _long("c04-shared-s0240")).relation() == "derived"


# -- the SDXL layout with runs four times longer (build_sdxl.py --concepts 16 --steps 240 --near --retrain 16;
# StableDiffusionXLPipeline.save_lora_weights wrote the files). This corpus was never used to choose a threshold:
# it checks the growth bound chosen on the SD1.5-layout corpora of both lengths.
SDXL_LONG = "sdxl_long_fingerprints.json"


@pytest.mark.parametrize("run", ["c03-shared", "c05-shared"])
def test_sdxl_long_run_checkpoints_at_two_thirds_are_derived_by_growth(run):
    from dataclasses import replace

    # 8 of this corpus's 32 checkpoints at 2/3 lie beyond the final by less than 0.25 at a score under
    # derived_close: leads under the 60-step corpus's growth bound, derived under the bound of both lengths
    sim = compare(fingerprint(f"{run}-s0160", SDXL_LONG), fingerprint(f"{run}-s0240", SDXL_LONG))
    sig = sim.details["lineage"]
    assert sig["layout"] == "sdxl" and sim.score < LINEAGE_THRESHOLDS.derived_close
    assert LINEAGE_THRESHOLDS.derived_growth < sig["growth"] < 0.245
    assert sim.relation() == "derived" and sim.verdict() == "derived"
    assert sim.relation(replace(LINEAGE_THRESHOLDS, derived_growth=0.25)) == "similar_training"
