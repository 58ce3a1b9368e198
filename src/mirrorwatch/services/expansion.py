"""Bank expansion: entries learn robust signatures from confirmed mirrors and from original files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from mirrorwatch.errors import MalformedFile, NotFound
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import Audit, Entry, Match


def learn_from_matches(db: Database, match_ids: list[int], *, user: str = "system") -> dict[str, int]:
    """Confirmed mirrors teach their entries (AutoV3, fingerprint, training-run ids); retroactive."""
    from mirrorwatch.match.robust import file_learnables, indexes_for, learn

    totals = {"signals": 0, "fingerprints": 0, "matches": 0}
    with db.session() as s:
        for m in s.scalars(select(Match).where(Match.id.in_(match_ids))):
            sigs, fp = file_learnables(s, m.hub_file_id)
            if not sigs and fp is None:
                continue
            out = learn(db, s, m.entry_id, sigs, fp, origin=f"mirror:{m.hub_file_id}")
            for k in totals:
                totals[k] += out[k]
        indexes_for(db).flush()
        if any(totals.values()):
            s.add(Audit(user=user, action="bank.expand", object_type="match", object_id=",".join(map(str, match_ids))[:100],
                        detail=totals))
    return totals


def add_file(db: Database, entry_id: int, path: Path, *, user: str = "cli") -> dict[str, Any]:
    """An original file a team holds: every hash form, header evidence and fingerprint join the entry.
    The file is read where it is (through the one evidence pipeline, `match.evidence`) and nothing
    of it is kept but hashes, header signals and the fingerprint."""
    from mirrorwatch.hashing.forms import FORMS
    from mirrorwatch.match.evidence import LocalFile, build_evidence
    from mirrorwatch.match.exact import match_stored_files_for_values
    from mirrorwatch.match.robust import indexes_for, learn

    if not path.is_file():
        raise NotFound(f"no such file: {path}")
    with db.session() as s:
        if s.get(Entry, entry_id) is None:
            raise NotFound(f"no entry #{entry_id}")
    safetensors = path.suffix.lower() == ".safetensors"
    ev = build_evidence(LocalFile(path), header=safetensors, content=True, fingerprint=safetensors)
    if "content" in ev.errors:
        raise MalformedFile(f"cannot read {path.name}: {ev.errors['content']}")
    sigs: dict[str, list[str]] = {f: [v] for f, v in ev.hashes.items() if FORMS[f].stored_when_derived}
    notes: list[str] = []
    if ev.header is not None:
        for form in ("training_run", "ss_session_id", "trigger_word", "sshs_legacy_hash"):
            if ev.header.signals.get(form):
                sigs[form] = ev.header.signals[form]
    if "header" in ev.errors:
        notes.append(f"header: {ev.errors['header']}")
    if ev.no_fingerprint or "fingerprint" in ev.errors:
        notes.append(f"fingerprint: {ev.no_fingerprint or ev.errors['fingerprint']}")
    if not safetensors:
        notes.append("not a safetensors file: hashes only (never unpickled)")
    with db.session() as s:
        out = learn(db, s, entry_id, sigs, ev.fingerprint, origin=f"file:{path.name}"[:200])
        indexes_for(db).flush()
        s.add(Audit(user=user, action="bank.add_file", object_type="entry", object_id=str(entry_id),
                    detail={"file": path.name, **out}))
    # files swept earlier with this exact SHA256 (tier 1)
    with db.session() as s:
        out["matches"] += match_stored_files_for_values(s, {"sha256": {ev.hashes["sha256"]}})
    return {"entry": entry_id, "file": path.name, "hashes": ev.hashes, **out, "notes": notes}
