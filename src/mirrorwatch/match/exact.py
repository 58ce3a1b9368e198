"""Tier 1, exact: a hash form of a hub file (from hub metadata, or computed for local files)
equals a hash form of a bank entry.

Scores: a full 64-hex agreement (SHA256, BLAKE3, full AutoV3) is 1.0; a 12-hex AutoV3 0.99;
a 10-hex AutoV2 0.98 (only when the entry has no SHA256 that disagrees); 8-hex forms
(CRC32, AutoV1) alone are too short to be sure: 0.9 when both agree, otherwise not a match."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from mirrorwatch.match.hits import Hit, record_hits
from mirrorwatch.match.scores import CRC32_AND_AUTOV1_SCORE
from mirrorwatch.store.models import EntrySignal, HubFile

FULL_FORMS = ("sha256", "blake3", "autov3_full")
FORM_SCORES = {"sha256": 1.0, "blake3": 1.0, "autov3_full": 1.0, "autov3": 0.99, "autov2": 0.98}


def file_forms(sha256: str | None, hashes: dict[str, Any] | None) -> dict[str, str]:
    """Every (form -> value) a hub file offers for exact comparison."""
    forms: dict[str, str] = {}
    if sha256:
        forms["sha256"] = sha256
        forms["autov2"] = sha256[:10]
    for form in ("blake3", "crc32", "autov1", "autov3", "autov3_full"):
        v = (hashes or {}).get(form)
        if isinstance(v, str) and v:
            forms[form] = v
    if "autov3_full" in forms:
        forms.setdefault("autov3", forms["autov3_full"][:12])
    return forms


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
        score = max((FORM_SCORES[f] for f in forms if f in FORM_SCORES), default=0.0)
        file_sha = offered[fid].get("sha256")
        prefix_only = not any(f in forms for f in ("blake3", "autov3_full", "autov3"))
        if score < 1.0 and prefix_only and file_sha and entry_sha[eid] and file_sha not in entry_sha[eid]:
            continue  # a 10-hex prefix coincidence with a different file
        if score == 0.0:
            if {"crc32", "autov1"} <= set(forms):
                score = CRC32_AND_AUTOV1_SCORE
            else:
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
    for prefix in sorted(values.get("autov2", set())):
        for f in session.scalars(select(HubFile).where(HubFile.sha256 >= prefix, HubFile.sha256 < prefix + "g")):
            files[f.id] = f
    return record_hits(session, find_exact(session, list(files.values())), scan_run_id=None)
