"""Hash lists users already have (issue 8, defect 6), imported from real files or files built with
the writer's own code: AUTOMATIC1111 cache.json, sha256sum/shasum output and .sha256 sidecars,
ComfyUI-Manager model lists, Civitai Helper .civitai.info files. Sources: tests/data/real/README.md."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mirrorwatch.bank.importer import ImportRejected
from mirrorwatch.errors import SheetError
from mirrorwatch.services.banks import create_bank
from mirrorwatch.services.imports import import_file
from mirrorwatch.services.lookup import lookup

REAL = Path(__file__).parents[1] / "data" / "real"
SD15 = "6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa"
SDXL = "31e35c80fc4829d14f90153f4c74cd59c90b779f6afe05a74cd6120b893f7e5b"
LORA = "21437ec26670e230b067ca936f6657caf5ca063f15aec333ef249bec7c0f0dc0"


@pytest.fixture
def bank(db):
    create_bank(db, "lists")
    return "lists"


def _one(db, query: str):
    (e,) = lookup(db, query).results
    return e


def test_a1111_cache_json(db, bank):
    s = import_file(db, bank, REAL / "a1111-cache.json")
    assert (s.fmt, s.rows, s.added, len(s.rejected)) == ("a1111-cache", 3, 3, 0)
    sd15 = _one(db, SD15)
    assert (sd15.name, sd15.kind, sd15.signals["file_name"]) == (
        "v1-5-pruned-emaonly", "Checkpoint", ["v1-5-pruned-emaonly.safetensors"])
    assert _one(db, SDXL).name == "sd_xl_base_1.0"  # a Windows sub-folder in the title
    lora = _one(db, "7aae878cb805")  # hashes-addnet is the AutoV3 of the same LoRA as its hashes entry
    assert (lora.name, lora.kind, lora.hashes["sha256"]) == ("aeshteticv5", "LORA", [LORA])


def test_a1111_cache_json_messy(db, db_path, bank, tmp_path):
    text = (REAL / "a1111-cache.json").read_text().replace("\n", "\r\n")
    text = text.replace('"lora/aeshteticv5": {', '"lora/aeshteticv5 [21437ec266]": {', 1)
    p = tmp_path / "cache.json"
    p.write_bytes(b"\xef\xbb\xbf" + text.encode())  # a BOM, CRLF line ends, a title with a [hash] suffix
    s = import_file(db, bank, p)
    assert s.added == 4 and s.rejected == []
    assert {e.name for e in lookup(db, LORA).results} == {"aeshteticv5"}
    bad = tmp_path / "bad.json"
    bad.write_text('{"hashes": {"checkpoint/a.safetensors": {"mtime": 1.0, "sha256": null}}}')
    with pytest.raises(ImportRejected, match=r"row 1: hashes 'checkpoint/a.safetensors': no sha256"):
        import_file(db, bank, bad)


@pytest.mark.parametrize("name", ["SHA256SUMS", "SHA256SUMS.tag", "SHA256SUMS.binary"])
def test_sha256sum_outputs(db, bank, name):
    s = import_file(db, bank, REAL / name)
    assert (s.fmt, s.rows, s.added, len(s.rejected)) == ("sha256sum", 4, 4, 0)
    e = _one(db, "2361292a46801d725d71b40d64288522f1fac07eb0f3777c1f89b4bc0e771483")
    assert (e.name, e.signals["file_name"]) == ("README.md", ["README.md"])
    assert _one(db, "7d354105e8cf63c5f636a9b18f82a049aad4343f38b623f674f72918fbe4ed31").name == \
        "runtime-modern-4.7.jpg"


def test_sha256sum_as_txt_with_bom_crlf_and_a_bad_line(db, bank, tmp_path):
    lines = (REAL / "SHA256SUMS").read_text().splitlines()
    p = tmp_path / "hashes.txt"
    p.write_bytes(("\ufeff" + "\r\n".join([lines[0], "# a comment", lines[1], "not a checksum", ""])).encode())
    with pytest.raises(ImportRejected, match=r"row 4: line 4 is not a checksum line"):
        import_file(db, bank, p)
    s = import_file(db, bank, p, skip_bad=True)
    assert (s.fmt, s.added) == ("sha256sum", 2)


def test_other_digests_are_named(db, bank, tmp_path):
    p = tmp_path / "MD5SUMS"
    p.write_text("d41d8cd98f00b204e9800998ecf8427e  empty.bin\n")
    with pytest.raises(SheetError, match=r"looks like a list of MD5 \(md5sum\) checksums"):
        import_file(db, bank, p)


def test_sha256_sidecar(db, bank):
    s = import_file(db, bank, REAL / "aeshteticv5.safetensors.sha256")
    assert (s.fmt, s.added) == ("sha256sum", 1)
    assert _one(db, LORA).name == "aeshteticv5"


def test_comfyui_manager_model_list(db, bank):
    s = import_file(db, bank, REAL / "comfyui-manager-model-list.json")
    assert (s.fmt, s.rows, s.added, len(s.rejected)) == ("comfyui-model-list", 4, 4, 0)
    (neg,) = lookup(db, "https://civitai.com/models/56519?modelVersionId=60938").results
    assert (neg.name, neg.kind, neg.civitai_model_id) == ("negative_hand Negative Embedding", "embeddings", 56519)
    assert neg.signals["file_name"] == ["negative_hand-neg.pt"]
    assert lookup(db, "civitai.com/api/download/models/9208").results[0].name == "EasyNegative"
    (taesd,) = lookup(db, "TAESDXL Decoder").results[:1]
    assert "url: https://github.com/madebyollin/taesd/raw/main/taesdxl_decoder.pth" in taesd.notes


def test_civitai_helper_info_files(db, bank, tmp_path):
    s = import_file(db, bank, REAL / "aeshteticv5.civitai.info")
    assert (s.added, len(s.rejected)) == (1, 0)
    e = _one(db, LORA)
    assert (e.civitai_model_id, e.civitai_version_id) == (706978, 1050496)
    with pytest.raises(ImportRejected, match="Civitai Helper placeholder"):
        import_file(db, bank, REAL / "not-on-civitai.civitai.info")
    copy = tmp_path / "x.json"
    shutil.copy(REAL / "not-on-civitai.civitai.info", copy)
    with pytest.raises(ImportRejected, match="Civitai Helper placeholder"):
        import_file(db, bank, copy)


def test_the_list_files_can_be_uploaded_too(db, bank):
    from mirrorwatch.services.imports import commit_import

    added = 0
    for name in ("SHA256SUMS", "aeshteticv5.civitai.info", "aeshteticv5.safetensors.sha256", "a1111-cache.json"):
        s = commit_import(db, bank, name, (REAL / name).read_bytes(), skip_bad=False, user="t")
        assert s.committed and not s.rejected
        added += s.added
    assert added == 4 + 1 + 0 + 2  # the sidecar and cache.json's LoRA merge into the .civitai.info entry
    assert _one(db, LORA).civitai_version_id == 1050496


def test_a1111_cache_json_with_a_duplicate_title_is_refused(db, bank, tmp_path):
    text = (REAL / "a1111-cache.json").read_text()
    dup = text.replace('"hashes": {', '"hashes": {\n        "lora/aeshteticv5": {"mtime": 1.0, "sha256": "' + "ab" * 32 + '"},', 1)
    p = tmp_path / "cache.json"
    p.write_text(dup)
    with pytest.raises(SheetError, match="names 'lora/aeshteticv5' twice"):
        import_file(db, bank, p)
