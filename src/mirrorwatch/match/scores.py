"""What a match score means, per tier and per kind of evidence (all overridable in one place).

Tier 1 (exact hash forms): each form declares its scores in the registry (`exact_score`,
`corroborated_score` in hashing/forms.py: 1.0 for a full 64-hex agreement); match/exact.py's
`score_agreement` combines them. Tier 2 (header evidence)
and tier 3 (weight fingerprint) scores below. Several independent pieces
of evidence for the same entry combine as a noisy OR: 1 - prod(1 - s), capped at 0.99.

Reading a score:
  >= 0.95  the same model: exact copy, or the same tensors (AutoV3), or an embedded hash of them
  >= 0.85  the same training run or the same weights after conversion/re-factorisation
  >= 0.70  derived from it (resized, merged) or strong header evidence — a reviewer should look
  <  0.70  a lead only (names in metadata, or weights that are only trained alike — fingerprint
           relation `similar_training`): shown in the queue with a low score, never a re-upload claim
"""

from __future__ import annotations

HEADER_SCORES: dict[str, float] = {
    "autov3_full": 0.99,  # AutoV3 computed from a hub file's content equals the entry's: same tensors
    "autov3": 0.98,
    "hdr_autov3_full": 0.97,  # sshs_model_hash equals the entry's full AutoV3
    "hdr_autov3": 0.95,  # its first 12 hex equal the entry's AutoV3
    "training_run": 0.90,  # same ss_session_id and ss_training_started_at
    "ss_session_id": 0.85,  # same kohya session id alone
    # sshs_legacy_hash equals the value an entry learned from a file it is known to have: a copy of the
    # same training save (never compared with AutoV1, which it is not; 8 hex: a lead)
    "sshs_legacy_hash": 0.60,
    "trigger_word": 0.40,  # the trigger phrase the bank knows for the entry
    "name": 0.55,  # a non-generic name in the header close to the entry's name
}
NAME_MIN_SIMILARITY = 90.0
MIN_RECORDED_SCORE = 0.5  # weaker evidence is not recorded as a match

# Leads, not identity: header fields that only name the model. A hit made of these alone is not
# recorded as a new match for a file that already has a strong match (>= STRONG_MATCH_SCORE, or any
# exact tier-1 match) to another entry: such a file is that entry's; the lead is a similar name.
LEAD_FIELDS = frozenset({"name", "trigger_word"})
STRONG_MATCH_SCORE = 0.95
# An exact (tier-1) match is strong (it says which entry a file is) from this score up: every hash
# agreement the registry scores (a full hash 1.0 ... two 8-hex forms 0.9). The archive-member
# CRC-32 matches below are tier 1 too (a hash form agreed) but under it: they name a candidate only.
EXACT_STRONG_SCORE = 0.9

# Tier 1 on an archive member the bank knows only by its CRC-32 (Civitai lists CRC32 and sizeKB;
# sheets may have only those), recorded once the member was read alone and its bytes gave that
# CRC-32 and size (match/archives.py). A CRC-32 is 32 bits: across a bank of a million files a
# chance agreement is ~1 in 4,300 per member, and LoRAs of one architecture and rank share sizes to
# within their header's length, so the size adds only a few bits. Hence, below any full-hash score
# and below EXACT_STRONG_SCORE (a reviewer must look; it never suppresses other leads, never teaches
# the entry signatures): CRC-32 and a banked size that agree, 0.8 ("a reviewer should look"); a
# CRC-32 whose entry has no banked size, 0.6 (a lead). An entry with any other form that disagrees
# with the member's is no match; a member that exactly matches another entry by a full form is that
# entry's, and gets no CRC-only match.
CRC32_SIZE_SCORE = 0.8
CRC32_ONLY_SCORE = 0.6


# Tier 3: a fingerprint similarity becomes a score in these bands (thresholds per method in
# match/fingerprint/similarity.py).
FP_SAME_WEIGHTS_BASE, FP_SAME_WEIGHTS_SPAN = 0.9, 0.09  # 0.90 .. 0.99
FP_DERIVED_BASE, FP_DERIVED_SPAN = 0.7, 0.19  # 0.70 .. 0.89
# `similar_training` (an independent model with correlated training: a lead, never a re-upload claim)
# stays below every claim band: 0.50 .. 0.60, recorded so a reviewer sees it with its evidence.
FP_SIMILAR_BASE, FP_SIMILAR_SPAN = 0.5, 0.1


def fingerprint_score(sim) -> float | None:
    """Match score for a fingerprint similarity (`match.fingerprint.Similarity`), by its relation:
    None when it is no evidence at all (`unrelated`)."""
    from mirrorwatch.match.fingerprint.similarity import DEFAULT_THRESHOLDS

    t = DEFAULT_THRESHOLDS.get(sim.method)
    relation = sim.relation()
    if relation == "similar_training":
        return round(FP_SIMILAR_BASE + FP_SIMILAR_SPAN * min(max(sim.score, 0.0), 1.0), 4)
    verdict = sim.verdict()
    if verdict == "no_match" or t is None:
        return None
    if verdict == "same_weights":
        frac = (sim.score - t.same_weights) / max(1e-9, 1 - t.same_weights)
        return round(min(0.99, FP_SAME_WEIGHTS_BASE + FP_SAME_WEIGHTS_SPAN * frac), 4)
    span = max(1e-9, t.same_weights - t.derived)
    frac = min(max((sim.score - t.derived) / span, 0.0), 1.0)
    return round(FP_DERIVED_BASE + FP_DERIVED_SPAN * frac, 4)


def combine(scores: list[float]) -> float:
    miss = 1.0
    for s in scores:
        miss *= 1.0 - min(max(s, 0.0), 1.0)
    return min(0.99, 1.0 - miss)
