"""Tier 2, header evidence: what a safetensors header says about where a file came from.

Signals read (stored as file signals so an entry that learns one later finds old files too):
  hdr_autov3_full / hdr_autov3  sshs_model_hash (kohya writes the AutoV3 of the tensors it saved)
  sshs_legacy_hash              kohya's sshs_legacy_hash, kept as what it is: an id of one training save,
                                never compared with AutoV1 (see below); never the hash of empty input
  ss_session_id, training_run   kohya training-run identifiers (session id + start time)
  ss_seed                       kept, but never evidence on its own (common seeds prove nothing)
  name                          ss_output_name, modelspec.title, dataset folder names ("10_name woman"):
                                close to the entry's name, with the same version numbers (v3 != v5)
  trigger_word                  modelspec.trigger_phrase

sshs_legacy_hash is not the file's AutoV1. sd-scripts (library/train_util.py
precalculate_safetensors_hashes, called from networks/lora.py save_weights) computes it as AutoV1's
window (sha256 of the 0x10000 bytes at 0x100000, 8 hex) over an in-memory serialization carrying
only the ss_* metadata; the file is then saved with the sshs_* and modelspec.* fields added, a longer
header that moves every tensor byte, so the saved file's AutoV1 differs (and a file under 1 MiB of
that serialization gets e3b0c442, the hash of nothing). What it is stable under: it is a string in
the header, so every copy of that saved file (renamed, re-hosted, converted by a tool that keeps the
metadata) carries it. So it is compared only with the same value learned by an entry from a file
the entry is known to have (a confirmed mirror, an original a team added): equal values mean copies
of one training save. 8 hex can collide by chance, so alone it is a lead (scores.py).
sshs_model_hash (the tensor bytes, which the longer header does not change) is the saved file's AutoV3.
"""

from __future__ import annotations

import re
from collections import defaultdict

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from mirrorwatch.formats.safetensors import SafetensorsHeader, metadata_json
from mirrorwatch.hashing.forms import derive
from mirrorwatch.match.hits import Hit
from mirrorwatch.match.scores import HEADER_SCORES, MIN_RECORDED_SCORE, NAME_MIN_SIMILARITY, combine
from mirrorwatch.store.models import Entry, EntrySignal, FileSignal
from mirrorwatch.text.names import is_generic, normalise_name, same_version

EMPTY_AUTOV1 = "e3b0c442"  # first 8 hex of SHA-256 of nothing: what files under 2 MiB get
_HEX64 = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
_HEX8 = re.compile(r"^(0x)?[0-9a-fA-F]{8}$")
_REPEATS = re.compile(r"^\d+_")
COMMON_SEEDS = frozenset({"0", "1", "42", "1234", "12345", "123", "31337", "2023", "2024", "-1", "3407"})

# file signal form -> entry signal form it is compared with (exact equality)
FILE_TO_ENTRY = {
    "hdr_autov3_full": "autov3_full",
    "hdr_autov3": "autov3",
    "sshs_legacy_hash": "sshs_legacy_hash",  # learned from a file the entry is known to have; never AutoV1
    "ss_session_id": "ss_session_id",
    "training_run": "training_run",
    "trigger_word": "trigger_word",
    "autov3_full": "autov3_full",  # computed from the content (deep tier): the same tensors
    "autov3": "autov3",
}


def _folder_names(raw: str | None) -> list[str]:
    """Dataset folder names from ss_tag_frequency / ss_dataset_dirs ("10_name woman" -> "name woman")."""
    if not raw:
        return []
    doc = metadata_json(raw)  # bounded depth, never raises: the header's other evidence must survive
    if not isinstance(doc, dict):
        return []
    return [_REPEATS.sub("", k).strip() for k in list(doc)[:20] if isinstance(k, str)]


def header_signals(header: SafetensorsHeader) -> dict[str, list[str]]:
    """Evidence-bearing signals of a header, normalised, meaningless values left out."""
    md = header.metadata
    out: dict[str, list[str]] = defaultdict(list)
    sshs = (md.get("sshs_model_hash") or "").strip()
    if _HEX64.match(sshs):
        v = sshs.lower().removeprefix("0x")
        out["hdr_autov3_full"].append(v)
        out["hdr_autov3"].append(derive("autov3", v))
    legacy = (md.get("sshs_legacy_hash") or "").strip().lower().removeprefix("0x")
    if _HEX8.match(legacy) and legacy != EMPTY_AUTOV1:
        out["sshs_legacy_hash"].append(legacy)
    session = (md.get("ss_session_id") or "").strip()
    if session and session not in ("0", "None", "null"):
        out["ss_session_id"].append(session[:100])
        started = (md.get("ss_training_started_at") or "").strip()
        if started and started not in ("0", "None"):
            out["training_run"].append(f"{session[:100]}@{started[:40]}")
    seed = (md.get("ss_seed") or "").strip()
    if seed and seed not in COMMON_SEEDS:
        out["ss_seed"].append(seed[:40])
    names = [md.get("ss_output_name"), md.get("modelspec.title"), md.get("ss_training_comment")]
    names += _folder_names(md.get("ss_tag_frequency")) + _folder_names(md.get("ss_dataset_dirs"))
    for name in names:
        if isinstance(name, str):
            norm = normalise_name(name.replace("_", " "))[:200]
            if norm and not is_generic(norm) and norm not in out["name"]:
                out["name"].append(norm)
    trigger = md.get("modelspec.trigger_phrase")
    if isinstance(trigger, str) and trigger.strip():
        out["trigger_word"].append(normalise_name(trigger)[:200])
    return {k: v for k, v in out.items() if v}


def store_file_signals(session: Session, hub_file_id: int, signals: dict[str, list[str]]) -> None:
    have = set(session.execute(
        select(FileSignal.form, FileSignal.value).where(FileSignal.hub_file_id == hub_file_id)
    ).all())
    for form, values in signals.items():
        for v in values:
            if (form, v) not in have:
                session.add(FileSignal(hub_file_id=hub_file_id, form=form, value=v))
                have.add((form, v))
    session.flush()


def _entry_names(session: Session, entry_ids: set[int]) -> dict[int, str]:
    ids = sorted(entry_ids)
    out: dict[int, str] = {}
    for i in range(0, len(ids), 400):
        out.update({eid: name for eid, name in session.execute(
            select(Entry.id, Entry.name).where(Entry.id.in_(ids[i : i + 400])))})
    return out


def find_signal_matches(session: Session, file_signals: dict[int, dict[str, list[str]]],
                        name_search=None) -> list[Hit]:
    """Entries the given files' signals point to (exact signals, and names through `name_search`,
    a function (db-free) query -> [(entry_id, similarity)]). A name is evidence only when it is close
    enough and carries exactly the entry name's version numbers (text.names.same_version)."""
    wanted: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
    for fid, sigs in file_signals.items():
        for form, values in sigs.items():
            eform = FILE_TO_ENTRY.get(form)
            if eform:
                for v in values:
                    wanted[(eform, v)].append((fid, form))
    evidence: dict[tuple[int, int], list[tuple[str, str, float]]] = defaultdict(list)
    keys = list(wanted)
    for i in range(0, len(keys), 400):
        for eid, eform, value in session.execute(
            select(EntrySignal.entry_id, EntrySignal.form, EntrySignal.value).where(
                tuple_(EntrySignal.form, EntrySignal.value).in_(keys[i : i + 400])
            )
        ):
            for fid, fform in wanted[(eform, value)]:
                evidence[(eid, fid)].append((fform, value, HEADER_SCORES[fform if fform in HEADER_SCORES else eform]))
    if name_search is not None:
        found: list[tuple[int, str, int, float]] = []
        for fid, sigs in file_signals.items():
            for name in sigs.get("name", []):
                found += [(fid, name, eid, sim) for eid, sim in name_search(name) if sim >= NAME_MIN_SIMILARITY]
        names = _entry_names(session, {eid for _f, _n, eid, _s in found})
        for fid, name, eid, sim in found:
            # the search forgives typos; version numbers are not typos: "v5" is no evidence for "v3"
            if eid in names and same_version(name, names[eid]):
                evidence[(eid, fid)].append(("name", name, HEADER_SCORES["name"] * sim / 100.0))
    hits = []
    for (eid, fid), items in evidence.items():
        best: dict[str, float] = {}
        for form, _v, s in items:
            best[form] = max(best.get(form, 0.0), s)
        if "training_run" in best:
            best.pop("ss_session_id", None)  # the same fact twice
        if "hdr_autov3_full" in best:
            best.pop("hdr_autov3", None)
        score = combine(list(best.values()))
        if score < MIN_RECORDED_SCORE:
            continue
        ev = [{"tier": 2, "kind": "header", "field": form, "value": v, "weight": round(s, 3)} for form, v, s in items]
        hits.append(Hit(eid, fid, round(score, 4), ev, tier=2))
    return hits
