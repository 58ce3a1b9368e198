"""Banks learn file sizes (issue 10): sheet size columns in bytes, KB or with units, Civitai's
``files[].sizeKB`` (KiB), ComfyUI-Manager's ``size``; bad sizes are row problems with row numbers;
lookup shows the size (``signals.size``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mirrorwatch.bank.importer import ImportRejected
from mirrorwatch.services.banks import create_bank
from mirrorwatch.services.imports import import_file
from mirrorwatch.services.lookup import lookup

REAL = Path(__file__).parents[1] / "data" / "real"
SHA = [f"{i:x}" * 64 for i in range(1, 8)]


@pytest.fixture
def bank(db):
    create_bank(db, "sizes")
    return "sizes"


def _size(db, query: str) -> list[str]:
    (entry,) = lookup(db, query).results
    return entry.signals.get("size", [])


def test_sheet_size_columns_in_bytes_kb_and_units(db, bank, tmp_path):
    sheet = tmp_path / "s.csv"
    sheet.write_text("Model Name,SHA256,File Size,sizeKB\n"
                     f"Alpha Example,{SHA[0]},\"151,234,567\",\n"
                     f"Beta Example,{SHA[1]},1.2 MB,\n"
                     f"Gamma Example,{SHA[2]},,17.017578125\n"
                     f"Delta Example,{SHA[3]},,\n")
    s = import_file(db, bank, sheet)
    assert (s.added, len(s.rejected)) == (4, 0)
    assert s.columns["size"] == "File Size" and s.columns["size_kb"] == "sizeKB"
    assert _size(db, SHA[0]) == ["151234567"]
    assert _size(db, SHA[1]) == ["1150000-1310720"]  # rounded: MB read as 1000 or 1024 kept as bounds
    assert _size(db, SHA[2]) == ["17426"]
    assert _size(db, SHA[3]) == []


def test_bad_sizes_are_row_problems_with_row_numbers(db, bank, tmp_path):
    sheet = tmp_path / "bad.tsv"
    sheet.write_text("name\tsha256\tsize_bytes\n"
                     f"Alpha Example\t{SHA[0]}\t100\n"
                     f"Beta Example\t{SHA[1]}\t-4\n"
                     f"Gamma Example\t{SHA[2]}\t5 TB\n"
                     f"Delta Example\t{SHA[3]}\tbig\n")
    with pytest.raises(ImportRejected) as err:
        import_file(db, bank, sheet)
    rejected = dict(err.value.summary.rejected)
    assert sorted(rejected) == [3, 4, 5]
    assert "negative" in rejected[3] and "over 1 TiB" in rejected[4] and "not a number" in rejected[5]
    assert lookup(db, SHA[0]).results == []  # nothing half-written
    s = import_file(db, bank, sheet, skip_bad=True)
    assert (s.added, len(s.rejected)) == (1, 3)
    assert _size(db, SHA[0]) == ["100"]


def test_civitai_sizekb_is_kib_per_file(db, bank):
    s = import_file(db, bank, REAL / "civitai-model-shared-file.json")
    assert len(s.rejected) == 0
    # "sizeKB": 167938.8828125 in the real answer: x 1024 = 171969416 bytes exactly
    entry = lookup(db, "https://civitai.com/models/706978?modelVersionId=1050497").results[0]
    assert entry.signals["size"] == ["171969416"]


def test_civitai_sizekb_not_a_number_is_the_items_problem(db, bank, tmp_path):
    doc = json.loads((REAL / "civitai-version-by-hash.json").read_text())
    doc["files"][0]["sizeKB"] = "lots"
    bad = tmp_path / "v.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(ImportRejected) as err:
        import_file(db, bank, bad)
    assert "sizeKB is not a number" in err.value.summary.rejected[0][1]
    doc["files"][0]["sizeKB"] = -3
    bad.write_text(json.dumps(doc))
    with pytest.raises(ImportRejected) as err:
        import_file(db, bank, bad)
    assert "negative" in err.value.summary.rejected[0][1]


def test_comfyui_manager_size_with_units(db, bank, tmp_path):
    doc = {"models": [
        {"name": "Alpha Example", "type": "lora", "base": "SDXL", "save_path": "loras", "description": "",
         "reference": "", "filename": "alpha.safetensors", "url": "https://example.org/alpha.safetensors",
         "size": "335.3MB", "sha256": SHA[0]},
        {"name": "Beta Example", "type": "lora", "base": "SDXL", "save_path": "loras", "description": "",
         "reference": "", "filename": "beta.safetensors", "url": "https://example.org/beta.safetensors",
         "size": 228479356, "sha256": SHA[1]},
        {"name": "Gamma Example", "type": "lora", "base": "SDXL", "save_path": "loras", "description": "",
         "reference": "", "filename": "gamma.safetensors", "url": "https://example.org/gamma.safetensors",
         "size": "varies", "sha256": SHA[2]},  # a display label, not a size: the model is banked without
    ]}
    f = tmp_path / "model-list.json"
    f.write_text(json.dumps(doc))
    s = import_file(db, bank, f)
    assert (s.added, len(s.rejected)) == (3, 0)
    assert _size(db, SHA[0]) == ["335250000-351639961"]
    assert _size(db, SHA[1]) == ["228479356"]
    assert _size(db, SHA[2]) == []


def test_lookup_json_shows_the_size(cli, tmp_path):
    sheet = tmp_path / "s.csv"
    sheet.write_text(f"name,sha256,size\nAlpha Example,{SHA[0]},151234567\n")
    assert cli("bank", "create", "sizes").returncode == 0
    assert cli("bank", "import", str(sheet), "--bank", "sizes").returncode == 0
    found = cli("lookup", SHA[0], "--json")
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["results"][0]["signals"]["size"] == ["151234567"]
