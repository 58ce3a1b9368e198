"""The exchange's store side on SQLite and PostgreSQL: change sequence numbers (stamped on read,
monotonic, a changed entry published again above every earlier number), tombstones, applying pages
idempotently and all-or-nothing, and withdrawn entries matching no new file."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.numpy import save_file
from sqlalchemy import select

from mirrorwatch.errors import InvalidInput
from mirrorwatch.hashing.engine import hash_file
from mirrorwatch.services.banks import create_bank
from mirrorwatch.services.exchange import (
    BadFeed,
    apply_records,
    check_record,
    feed_page,
    withdraw_entry,
)
from mirrorwatch.services.imports import import_file
from mirrorwatch.services.matches import list_matches
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import Entry, EntrySignal
from pgdb import fresh_pg


@pytest.fixture(params=["sqlite", "postgresql"])
def anydb(request, db) -> Database:
    if request.param == "sqlite":
        return db
    return fresh_pg()


def _add(db: Database, bank_id: int, n: int, start: int = 0) -> list[int]:
    ids = []
    with db.session() as s:
        for i in range(start, start + n):
            e = Entry(bank_id=bank_id, key=f"k{i}", name=f"Invented {i}", name_norm=f"invented {i}")
            s.add(e)
            s.flush()
            s.add(EntrySignal(entry_id=e.id, form="sha256", value=f"{i:064x}"))
            ids.append(e.id)
    return ids


def _all(db: Database, bank_id: int, cursor: str | None = None, limit: int = 4) -> tuple[list[dict], str]:
    out = []
    while True:
        page = feed_page(db, bank_id, cursor, limit=limit)
        out += page["records"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return out, cursor


def test_sequence_tombstones_and_resume(anydb):
    db = anydb
    bank = create_bank(db, "pub")
    ids = _add(db, bank.id, 10)
    records, cursor = _all(db, bank.id)
    assert [int(r["id"].split(":")[1]) for r in records] == ids
    seqs = [r["seq"] for r in records]
    assert seqs == sorted(set(seqs))
    # nothing changed: an empty page at the same cursor
    page = feed_page(db, bank.id, cursor)
    assert page["count"] == 0 and page["next_cursor"] == cursor and not page["has_more"]
    # a change: a new entry, an import that teaches an old entry a hash, a withdrawal
    new = _add(db, bank.id, 1, start=100)
    withdraw_entry(db, ids[3], user="tester")
    withdraw_entry(db, ids[3], user="tester")  # twice: one change
    changed, cursor2 = _all(db, bank.id, cursor)
    assert {int(r["id"].split(":")[1]) for r in changed} == {ids[3], new[0]}
    assert min(r["seq"] for r in changed) > max(seqs)
    tomb = next(r for r in changed if r["status"] == "withdrawn")
    assert set(tomb) == {"id", "seq", "status", "updated_at"}
    with pytest.raises(InvalidInput, match="future"):
        feed_page(db, bank.id, cursor2.rsplit(".", 1)[0] + ".99999999")
    with pytest.raises(InvalidInput, match="malformed"):
        feed_page(db, bank.id, "c1.zz.1")


def test_importer_changes_are_published_again(anydb, tmp_path):
    db = anydb
    bank = create_bank(db, "sheet")
    sheet = tmp_path / "s.csv"
    sheet.write_text("Model Name,Civitai URL,SHA256\nInvented A,https://civitai.com/models/11?modelVersionId=12,"
                     + "a" * 64 + "\n")
    import_file(db, "sheet", sheet)
    first, cursor = _all(db, bank.id)
    assert len(first) == 1
    sheet.write_text("Model Name,Civitai URL,SHA256,BLAKE3\nInvented A,https://civitai.com/models/11?modelVersionId=12,"
                     + "a" * 64 + "," + "b" * 64 + "\n")
    import_file(db, "sheet", sheet)
    again, _ = _all(db, bank.id, cursor)
    assert len(again) == 1 and again[0]["hashes"]["blake3"] == ["b" * 64]


def test_apply_is_idempotent_and_all_or_nothing(anydb):
    db = anydb
    pub = create_bank(db, "pub")
    local = create_bank(db, "local")
    _add(db, pub.id, 6)
    records, _ = _all(db, pub.id, limit=100)
    checked = [check_record(r, f"record {i}") for i, r in enumerate(records)]
    with db.session() as s:
        counts, values = apply_records(s, local.id, checked, origin="test")
    assert counts.added == 6 and len(values["sha256"]) == 6
    with db.session() as s:
        counts, values = apply_records(s, local.id, checked, origin="test")
    assert (counts.added, counts.updated, counts.unchanged) == (0, 0, 6) and not values
    # a bad record anywhere in a page: the page is refused before anything is written
    bad = [dict(r) for r in records]
    bad[4]["hashes"] = {"sha256": ["not-hex"]}
    with pytest.raises(BadFeed, match="record 4"):
        [check_record(r, f"record {i}") for i, r in enumerate(bad)]
    bad[4]["hashes"] = {"madeupform": ["ab" * 8]}
    with pytest.raises(BadFeed, match="not a hash form"):
        check_record(bad[4], "record 4")
    with db.session() as s:
        assert s.scalar(select(Entry.status).where(Entry.bank_id == local.id, Entry.key == "x:" + records[0]["id"])) \
            == "active"


def test_withdrawn_entry_matches_no_new_file(db, tmp_path, cli):
    store = tmp_path / "storage"
    store.mkdir()
    rng = np.random.default_rng(1)
    paths = []
    for i in range(2):
        p = store / f"upload_{i}.safetensors"
        save_file({"w": rng.standard_normal((32, 32), dtype=np.float32)}, str(p))
        paths.append(p)
    bank = create_bank(db, "b")
    eids = []
    with db.session() as s:
        for i, p in enumerate(paths):
            e = Entry(bank_id=bank.id, key=f"k{i}", name=f"Local Invented {i}", name_norm=f"local invented {i}")
            s.add(e)
            s.flush()
            s.add(EntrySignal(entry_id=e.id, form="sha256", value=hash_file(p).sha256))
            eids.append(e.id)
    withdraw_entry(db, eids[0], user="tester")
    out = cli("scan", "dir", str(store), "--json")
    assert out.returncode == 0, out.stderr
    assert {m.entry_name for m in list_matches(db)} == {"Local Invented 1"}


def test_export_is_one_snapshot(anydb, tmp_path):
    """A withdrawal while a file is being written does not drop the entry from the file."""
    from mirrorwatch.services.exchange import export_signals, read_signals_file

    db = anydb
    bank = create_bank(db, "snap")
    ids = _add(db, bank.id, 12)
    pieces = export_signals(db, bank.id, chunk=5)
    out = [next(pieces), next(pieces)]  # header, first 5 records
    withdraw_entry(db, ids[-1], user="tester")
    out += list(pieces)
    f = tmp_path / "snap.jsonl"
    f.write_bytes(b"".join(out))
    assert read_signals_file(f, allow_unsigned=True)[1] == 12
