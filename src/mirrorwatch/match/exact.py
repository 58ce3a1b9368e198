"""Tier 1, exact: a hash form of a hub file (from hub metadata, or computed for local files)
equals a hash form of a bank entry.

Scores are declared by the hash forms (``exact_score``, ``corroborated_score`` in
:mod:`mirrorwatch.hashing.forms`); the rule that combines them is :func:`score_agreement`. Today: a
full 64-hex agreement (SHA256, BLAKE3, full AutoV3) is 1.0; a 12-hex AutoV3 0.99; a 10-hex AutoV2
0.98 (only when the entry has no SHA256 that disagrees); 8-hex forms (CRC32, AutoV1) alone are too
short to be sure: 0.9 when both agree, otherwise not a match."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from mirrorwatch.hashing.forms import FORMS, add_derived
from mirrorwatch.match.hits import Hit, record_hits
from mirrorwatch.store.models import EntrySignal, HubFile


def file_forms(sha256: str | None, hashes: dict[str, Any] | None) -> dict[str, str]:
    """Every (form -> value) a hub file offers for exact comparison: its SHA256 column, the other
    forms stored with it, and the forms derived from those."""
    given = {f: v for f, v in hashes.items() if f in FORMS and isinstance(v, str) and v} if hashes else {}
    if sha256:
        given["sha256"] = sha256
    return add_derived(given)


def score_agreement(forms: Iterable[str], *, sha256_disagrees: bool = False) -> float | None:
    """The exact-tier score of a file and an entry agreeing on ``forms``, or ``None`` (no match).

    The best ``exact_score`` of the agreeing forms counts. A short agreement (below 1.0) resting only
    on forms of the whole file's bytes is ruled out when both have SHA256s that disagree
    (``sha256_disagrees``): a prefix coincidence with a different file. Forms too short to count
    alone (8 hex) count when at least two of them agree: the lowest of their ``corroborated_score``.
    """
    agreed = [FORMS[f] for f in forms if f in FORMS]
    score = max((f.exact_score for f in agreed if f.exact_score is not None), default=0.0)
    if score < 1.0 and sha256_disagrees and all(f.covers == "file" for f in agreed):
        return None
    if score == 0.0:
        weak = [f.corroborated_score for f in agreed if f.corroborated_score is not None]
        return min(weak) if len(weak) >= 2 else None
    return score


def find_exact(session: Session, files: list[HubFile]) -> list[Hit]:
    """Exact hits for the given stored files against every bank entry."""
    wanted: dict[tuple[str, str], list[int]] = defaultdict(list)
    offered: dict[int, dict[str, str]] = {}
    for f in files:
        forms = file_forms(f.sha256, f.hashes)
        offered[f.id] = forms
        for form, value in forms.items():
            wanted[(form, value)].append(f.id)
    if not wanted:
        return []
    agreed: dict[tuple[int, int], dict[str, str]] = defaultdict(dict)
    keys = list(wanted)
    for i in range(0, len(keys), 400):
        chunk = keys[i : i + 400]
        for eid, form, value in session.execute(
            select(EntrySignal.entry_id, EntrySignal.form, EntrySignal.value).where(
                tuple_(EntrySignal.form, EntrySignal.value).in_(chunk)
            )
        ):
            for fid in wanted[(form, value)]:
                agreed[(eid, fid)][form] = value
    if not agreed:
        return []
    # An entry's own SHA256 that disagrees with the file rules out a short-prefix agreement.
    entry_sha: dict[int, set[str]] = defaultdict(set)
    for eid, value in session.execute(
        select(EntrySignal.entry_id, EntrySignal.value).where(
            EntrySignal.entry_id.in_({eid for eid, _ in agreed}), EntrySignal.form == "sha256"
        )
    ):
        entry_sha[eid].add(value)
    hits = []
    for (eid, fid), forms in agreed.items():
        file_sha = offered[fid].get("sha256")
        score = score_agreement(forms, sha256_disagrees=bool(
            file_sha and entry_sha[eid] and file_sha not in entry_sha[eid]))
        if score is None:
            continue
        evidence = [{"tier": 1, "kind": "hash", "form": f, "value": v} for f, v in sorted(forms.items())]
        hits.append(Hit(eid, fid, score, evidence, tier=1))
    return hits


def match_stored_files_for_values(session: Session, values: dict[str, set[str]]) -> int:
    """Retroactive exact matching: stored hub files whose hashes equal newly banked values."""
    if not session.scalar(select(HubFile.id).limit(1)):
        return 0  # nothing swept yet
    files: dict[int, HubFile] = {}
    sha_list = sorted(values.get("sha256", set()))
    for i in range(0, len(sha_list), 500):
        for f in session.scalars(select(HubFile).where(HubFile.sha256.in_(sha_list[i : i + 500]))):
            files[f.id] = f
    prefixes = {v for f in FORMS.values() if f.derived_from == "sha256" for v in values.get(f.name, ())}
    for prefix in sorted(prefixes):  # AutoV2: a prefix of the SHA256 column
        for f in session.scalars(select(HubFile).where(HubFile.sha256 >= prefix, HubFile.sha256 < prefix + "g")):
            files[f.id] = f
    return record_hits(session, find_exact(session, list(files.values())), scan_run_id=None)
