"""Importing sheets: normalisation, row reports, atomicity and idempotence, through the real SQLite file."""

from __future__ import annotations

import json
import sqlite3

import pytest
from openpyxl import Workbook

from conftest import sample
from mirrorwatch.bank.importer import ImportRejected
from mirrorwatch.bank.sheets import parse_map
from mirrorwatch.errors import NotFound, SheetError
from mirrorwatch.services.banks import create_bank, list_banks
from mirrorwatch.services.imports import import_file
from mirrorwatch.services.lookup import lookup

SHA_A = "0899cd856fba9b131050135138cd87c5e5222f0a0657b94730901988d5cabdbb"


def dump(db_path) -> list:
    """Every row of every user table, to prove a failed import changed nothing."""
    con = sqlite3.connect(db_path)
    tables = [r[0] for r in con.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'entry_fts%'"
    )]
    out = [(t, sorted(map(repr, con.execute(f"SELECT * FROM {t}")))) for t in sorted(tables)]
    con.close()
    return out


@pytest.fixture
def bank(db):
    create_bank(db, "sheet")
    return "sheet"


def test_sample_sheet_rejects_bad_rows_and_writes_nothing(db, db_path, bank):
    before = dump(db_path)
    with pytest.raises(ImportRejected) as info:
        import_file(db, bank, sample("removed-models-sample.csv"))
    rejected = dict(info.value.summary.rejected)
    assert set(rejected) == {8, 12}
    assert "63 hex characters" in rejected[8]
    assert "not a Civitai URL" in rejected[12]
    assert dump(db_path) == before


def test_sample_sheet_skip_bad_normalises_everything(db, bank):
    s = import_file(db, bank, sample("removed-models-sample.csv"), skip_bad=True)
    assert (s.rows, s.added, s.updated, s.duplicates, len(s.rejected)) == (11, 8, 0, 1, 2)
    assert s.committed
    # padded, upper-case and prefixed hashes are stored in one normal form
    zoe = lookup(db, "73014671303FD8235351B0A5E8AA8C6C6D19CAF70D0D13900454AFDE0083D2A4").results
    assert [v.name for v in zoe] == ["Zoë Placeholder"]
    assert zoe[0].civitai_model_id == 101003
    lena = lookup(db, "B1B7DD7AD4").results  # from "sha256:b1b7..." via the derived AutoV2
    assert lena[0].civitai_version_id == 202008
    kaito = lookup(db, "https://civitai.com/api/download/models/202004").results
    assert kaito[0].name == "Kaito Fictional 「SDXL」"
    quoted = lookup(db, "civitai.com/model-versions/202005").results
    assert quoted[0].name == 'Example Person, "Pony" edition'
    nohash = lookup(db, "https://civitai.com/models/101006").results
    assert nohash[0].hashes == {}


def test_reimport_is_idempotent(db, db_path, bank):
    import_file(db, bank, sample("removed-models-sample.csv"), skip_bad=True)
    before = [t for t in dump(db_path) if t[0] not in ("import_run", "audit")]
    again = import_file(db, bank, sample("removed-models-sample.csv"), skip_bad=True)
    assert (again.added, again.updated, again.duplicates) == (0, 0, 9)
    assert [t for t in dump(db_path) if t[0] not in ("import_run", "audit")] == before


def test_civitai_json_merges_into_the_sheet_entry(db, bank):
    import_file(db, bank, sample("removed-models-sample.csv"), skip_bad=True)
    s = import_file(db, bank, sample("civitai-model-version.json"))
    assert (s.added, s.updated) == (0, 1)
    (jane,) = lookup(db, "e0d2747b9ab7").results  # AutoV3 from the JSON, merged into row 2's entry
    assert jane.civitai_version_id == 202001
    assert jane.hashes["crc32"] == ["1a2b3c4d"]
    assert jane.hashes["blake3"][0].startswith("76a82773")
    assert jane.signals["trigger_word"] == ["janeexample"]
    for q in ("5B1C2A3D", "1A2B3C4D"):  # 8 hex: AutoV1 or CRC32, looked up as both
        assert [v.id for v in lookup(db, q).results] == [jane.id]


def test_civitai_model_object_and_list(db, bank, tmp_path):
    version = json.loads(sample("civitai-model-version.json").read_text())
    model = {"id": 101001, "name": "Jane Example - LoRA", "type": "LORA",
             "modelVersions": [version, {**version, "id": 202099, "name": "v3",
                                        "files": [{"type": "Model", "hashes": {"SHA256": "AB" * 32}}]}]}
    p = tmp_path / "models.json"
    p.write_text(json.dumps([model, {"error": "Model not found"}]))
    with pytest.raises(ImportRejected, match="Civitai error response"):
        import_file(db, bank, p)
    s = import_file(db, bank, p, skip_bad=True)
    assert s.added == 2
    assert lookup(db, "ab" * 32).results[0].civitai_version_id == 202099


def test_xlsx_tsv_json_and_headerless(db, bank, tmp_path):
    wb = Workbook()
    ws = wb.active
    ws.append(["Title", "Link", "Hash"])
    ws.append(["Xlsx Person", "https://civitai.com/models/5001?modelVersionId=6001", "11" * 32])
    wb.save(tmp_path / "s.xlsx")
    assert import_file(db, bank, tmp_path / "s.xlsx").added == 1
    (tmp_path / "s.tsv").write_text("name\turl\tsha256\nTsv Person\tcivitai.com/models/5002\t" + "22" * 32 + "\n")
    assert import_file(db, bank, tmp_path / "s.tsv").added == 1
    (tmp_path / "s.json").write_text(json.dumps([{"model": "Json Person", "sha256": "33" * 32}]))
    assert import_file(db, bank, tmp_path / "s.json").added == 1
    (tmp_path / "h.csv").write_text(f"Headless Person,https://civitai.com/models/5004,{'44' * 32}\n")
    s = import_file(db, bank, tmp_path / "h.csv")
    assert s.added == 1 and s.columns == {"name": "0", "url": "1", "hash": "2"}
    for q, name in [("11" * 32, "Xlsx Person"), ("2222222222", "Tsv Person"), ("json persn", "Json Person"),
                    ("civitai:5004", "Headless Person")]:
        assert lookup(db, q).results[0].name == name


def test_map_override_and_missing_columns(db, bank, tmp_path):
    p = tmp_path / "odd.csv"
    p.write_text("Who,Where,Digest\nMapped Person,https://civitai.com/models/7001,AABBCCDDEE\n")
    (tmp_path / "nothing.csv").write_text("foo,bar\nabc,def\n")
    with pytest.raises(SheetError, match="no usable column"):
        import_file(db, bank, tmp_path / "nothing.csv")
    s = import_file(db, bank, p, mapping=parse_map("name=Who,url=Where,autov2=Digest"))
    assert s.added == 1
    assert lookup(db, "aabbccddee").results[0].name == "Mapped Person"
    with pytest.raises(SheetError, match="no column named"):
        import_file(db, bank, p, mapping=parse_map("name=Nope"))
    with pytest.raises(SheetError, match="unknown field"):
        parse_map("colour=Who")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"\n\n  \n", "is empty"),
        ("name,url\nCaf\xe9 Person,civitai.com/models/1\n".encode("latin-1"), "not UTF-8"),
        (b"\x00\x01\x02garbage\x00" * 100, "binary data"),
        (b"[1, 2", "malformed JSON"),
    ],
)
def test_unreadable_sheets(db, db_path, bank, tmp_path, content, message):
    p = tmp_path / ("bad.json" if content.startswith(b"[") else "bad.csv")
    p.write_bytes(content)
    before = dump(db_path)
    with pytest.raises(SheetError, match=message):
        import_file(db, bank, p)
    assert dump(db_path) == before


def test_wrong_encoding_can_be_named(db, bank, tmp_path):
    p = tmp_path / "latin.csv"
    p.write_bytes("name,url\nCafé Person,civitai.com/models/1\n".encode("cp1252"))
    assert import_file(db, bank, p, encoding="cp1252").added == 1
    assert lookup(db, "cafe person").results[0].name == "Café Person"


def test_hundred_thousand_bad_rows(db, db_path, bank, tmp_path):
    p = tmp_path / "bad.csv"
    lines = ["name,url,sha256"] + [f"P{i},https://civitai.com/models/{i + 1},{'z' * 64}" for i in range(100_000)]
    lines.append("Good Person,https://civitai.com/models/999999," + "55" * 32)
    p.write_text("\n".join(lines))
    before = dump(db_path)
    with pytest.raises(ImportRejected) as info:
        import_file(db, bank, p)
    assert len(info.value.summary.rejected) == 100_000
    assert dump(db_path) == before
    s = import_file(db, bank, p, skip_bad=True)
    assert s.added == 1 and len(s.rejected) == 100_000


def test_missing_bank(db):
    with pytest.raises(NotFound, match="bank create"):
        import_file(db, "nope", sample("removed-models-sample.csv"))


def test_bank_counts(db, bank):
    import_file(db, bank, sample("removed-models-sample.csv"), skip_bad=True)
    (b,) = list_banks(db)
    assert (b.name, b.entries, b.found) == ("sheet", 8, 0)
