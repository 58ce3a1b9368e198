"""Bank expansion: entries learn robust signatures from confirmed mirrors and from original files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from mirrorwatch.errors import MirrorwatchError, NotFound
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
    The file is read where it is and nothing of it is kept but hashes and the fingerprint."""
    from mirrorwatch.formats.safetensors import read_header
    from mirrorwatch.hashing.engine import hash_file
    from mirrorwatch.hashing.forms import FORMS
    from mirrorwatch.match.fingerprint import fingerprint_file
    from mirrorwatch.match.header import header_signals
    from mirrorwatch.match.robust import indexes_for, learn

    if not path.is_file():
        raise NotFound(f"no such file: {path}")
    with db.session() as s:
        if s.get(Entry, entry_id) is None:
            raise NotFound(f"no entry #{entry_id}")
    h = hash_file(path)
    sigs: dict[str, list[str]] = {f: [v] for f, v in h.forms().items() if FORMS[f].stored_when_derived}
    notes: list[str] = []
    fp = None
    if path.suffix.lower() == ".safetensors":
        try:
            hs = header_signals(read_header(path))
            for form in ("training_run", "ss_session_id", "trigger_word"):
                if hs.get(form):
                    sigs[form] = hs[form]
        except MirrorwatchError as exc:
            notes.append(f"header: {exc}")
        try:
            fp = fingerprint_file(path)
        except MirrorwatchError as exc:
            notes.append(f"fingerprint: {exc}")
    else:
        notes.append("not a safetensors file: hashes only (never unpickled)")
    with db.session() as s:
        out = learn(db, s, entry_id, sigs, fp, origin=f"file:{path.name}"[:200])
        indexes_for(db).flush()
        s.add(Audit(user=user, action="bank.add_file", object_type="entry", object_id=str(entry_id),
                    detail={"file": path.name, **out}))
    # files swept earlier with this exact SHA256 (tier 1)
    from mirrorwatch.match.exact import match_stored_files_for_values

    with db.session() as s:
        out["matches"] += match_stored_files_for_values(s, {"sha256": {h.sha256}})
    return {"entry": entry_id, "file": path.name, "hashes": h.forms(), **out, "notes": notes}
