"""Lookup by every input kind, ranked name search, and mirrors attached to entries."""

from __future__ import annotations

import pytest

from conftest import sample
from mirrorwatch.errors import InvalidInput, InvalidUrl
from mirrorwatch.services.banks import create_bank
from mirrorwatch.services.imports import import_file
from mirrorwatch.services.lookup import classify_query, lookup
from mirrorwatch.services.serial import to_json
from mirrorwatch.store.models import HubFile, HubRepo, Match

SHA_JANE = "0899cd856fba9b131050135138cd87c5e5222f0a0657b94730901988d5cabdbb"
BLAKE_JANE = "76a8277347f52530e1cf979175a178980b3a180d176165c985d85f7e142f1eed"


@pytest.fixture
def loaded(db):
    create_bank(db, "b")
    import_file(db, "b", sample("removed-models-sample.csv"), skip_bad=True)
    import_file(db, "b", sample("civitai-model-version.json"))
    return db


@pytest.mark.parametrize(
    ("query", "kind"),
    [
        (SHA_JANE, "hash"),  # 64 hex: SHA256
        (BLAKE_JANE.upper(), "hash"),  # 64 hex: BLAKE3
        ("E0D2747B9AB7", "hash"),  # 12 hex: AutoV3
        ("0899CD856F", "hash"),  # 10 hex: AutoV2
        ("5b1c2a3d", "hash"),  # 8 hex: AutoV1
        ("1A2B3C4D", "hash"),  # 8 hex: CRC32
        (f"sha256:{SHA_JANE}", "hash"),
        ("https://civitai.com/models/101001/jane-example-lora?modelVersionId=202001", "url"),
        ("https://civitai.com/api/download/models/202001", "url"),
        ("civitai:101001", "url"),
        ("Jane Example", "name"),
        ("jane  EXAMPLE!!", "name"),
        ("jane exmaple", "name"),  # typo
        ("janeexample lora", "name"),
    ],
)
def test_every_input_kind_finds_jane(loaded, query, kind):
    result = lookup(loaded, query)
    assert result.kind == kind
    assert result.results, f"nothing found for {query!r}"
    top = result.results[0]
    assert top.civitai_version_id == 202001
    assert top.hashes["sha256"] == [SHA_JANE]
    assert top.why


def test_accents_and_cjk(loaded):
    assert lookup(loaded, "zoe placeholder").results[0].name == "Zoë Placeholder"
    assert lookup(loaded, "ZOË").results[0].name == "Zoë Placeholder"
    assert lookup(loaded, "Kaito 「SDXL」").results[0].name == "Kaito Fictional 「SDXL」"


def test_name_ranking(loaded):
    names = [v.name for v in lookup(loaded, "example").results]
    assert set(names[:2]) == {"Jane Example - LoRA v2", 'Example Person, "Pony" edition'}


def test_misses_and_bad_input(loaded):
    assert lookup(loaded, "ff" * 32).results == []
    assert lookup(loaded, "no such person anywhere").results == []
    with pytest.raises(InvalidUrl, match="not a Civitai URL"):
        lookup(loaded, "https://example.org/some/page")
    with pytest.raises(InvalidInput, match="empty"):
        lookup(loaded, "   ")
    with pytest.raises(InvalidInput, match="no letters"):
        lookup(loaded, "!!!")
    assert classify_query("abc") == "name"
    assert classify_query("0899cd856fb") == "name"  # 11 hex is no hash form


def test_mirrors_are_listed(loaded):
    (jane,) = lookup(loaded, SHA_JANE).results
    with loaded.session() as s:
        repo = HubRepo(hub="hf", repo_id="archivist-1/lora-archive", author="archivist-1")
        s.add(repo)
        s.flush()
        f = HubFile(repo_pk=repo.id, path="model.safetensors", size=10, sha256=SHA_JANE)
        s.add(f)
        s.flush()
        s.add(Match(entry_id=jane.id, hub_file_id=f.id, tier=1, score=1.0, evidence=[{"form": "sha256"}]))
    (jane,) = lookup(loaded, "0899cd856f").results
    (m,) = jane.mirrors
    assert (m.repo_id, m.path, m.author, m.state, m.tier) == ("archivist-1/lora-archive", "model.safetensors",
                                                              "archivist-1", "new", 1)
    d = to_json(jane)
    assert set(d) >= {"id", "bank", "name", "url", "civitai_model_id", "civitai_version_id", "hashes", "mirrors"}
    assert d["mirrors"][0]["repo_id"] == "archivist-1/lora-archive"
