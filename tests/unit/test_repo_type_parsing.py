"""Repo types without a network: web links per type, typed ids, the tree page parser, --repo-type."""

from __future__ import annotations

import hashlib

import pytest

from mirrorwatch.cli.scan_cmds import parse_repo_types
from mirrorwatch.errors import InvalidInput
from mirrorwatch.hubs.base import split_typed_id
from mirrorwatch.hubs.huggingface.listing import files_from_tree, listing_from_item
from mirrorwatch.hubs.registry import HUBS, repo_type_label, web_url

SHA = hashlib.sha256(b"x").hexdigest()


def test_links_per_repo_type(monkeypatch):
    monkeypatch.delenv("MIRRORWATCH_HF_URL", raising=False)
    assert web_url("hf", "ns/a b") == "https://huggingface.co/ns/a%20b"
    assert web_url("hf", "ns/a b", repo_type="model") == "https://huggingface.co/ns/a%20b"
    assert web_url("hf", "ns/name", repo_type="dataset") == "https://huggingface.co/datasets/ns/name"
    assert web_url("hf", "ns/name", repo_type="space") == "https://huggingface.co/spaces/ns/name"
    assert (web_url("hf", "ns/name", "dir/ä #1.safetensors", "dataset")
            == "https://huggingface.co/datasets/ns/name/blob/main/dir/%C3%A4%20%231.safetensors")
    assert web_url("hf", "ns/name", "w.safetensors", "space") == "https://huggingface.co/spaces/ns/name/blob/main/w.safetensors"
    monkeypatch.setenv("MIRRORWATCH_HF_URL", "http://127.0.0.1:9/")
    assert web_url("hf", "ns/name", repo_type="dataset") == "http://127.0.0.1:9/datasets/ns/name"
    assert web_url("civitai", "12", "34/f.safetensors", "model").endswith("/models/12?modelVersionId=34")


def test_typed_ids_and_labels():
    types = HUBS["hf"].repo_types
    assert split_typed_id("datasets/ns/name", types) == ("dataset", "ns/name")
    assert split_typed_id("spaces/ns/name", types) == ("space", "ns/name")
    assert split_typed_id("ns/name", types) == (None, "ns/name")
    assert split_typed_id("models/name", types) == (None, "models/name")  # a model has no prefix
    assert split_typed_id("datasets/ns/name", ("model",)) == (None, "datasets/ns/name")
    assert repo_type_label("hf", "space") == "Space" and repo_type_label("hf", "model") == "model"
    assert repo_type_label("hf", "model", default_too=False) == "" and repo_type_label("civitai", "model") == ""


def test_repo_type_option():
    spec = HUBS["hf"]
    assert parse_repo_types(None, spec) is None
    assert parse_repo_types("space, MODEL", spec) == ["model", "space"]
    for bad in ("kernel", "", ",", "models"):
        with pytest.raises(InvalidInput, match="model, dataset, space"):
            parse_repo_types(bad, spec)
    with pytest.raises(InvalidInput, match="Civitai repo types are model"):
        parse_repo_types("dataset", HUBS["civitai"])


def test_tree_pages_are_parsed_defensively():
    # the tree entry shape of the Hub's /api/{type}s/{id}/tree (huggingface_hub's RepoFile fields)
    page = [
        {"type": "directory", "oid": "a" * 40, "path": "loras"},
        {"type": "file", "oid": "b" * 40, "size": 9, "path": "loras/x.safetensors",
         "lfs": {"oid": SHA, "size": 9, "pointerSize": 130}},
        {"type": "file", "oid": "c" * 40, "size": 5, "path": "loras/git.safetensors"},
        {"type": "file", "oid": "d" * 40, "size": 5, "path": "notes.txt"},
        {"type": "file", "oid": "e" * 40, "size": 5, "path": "../up.safetensors"},
        {"type": "file", "oid": "f" * 40, "size": "big", "path": "loras/y.safetensors", "lfs": {"oid": "nothex"}},
        "junk", {"type": "file"}, {"type": "file", "path": 7},
    ]
    files, problems = files_from_tree(page, "1" * 40, (".safetensors",))
    assert [(f.path, f.sha256, f.size, f.lfs) for f in files] == [
        ("loras/x.safetensors", SHA, 9, True), ("loras/git.safetensors", None, 5, False),
        ("loras/y.safetensors", None, None, True)]
    assert [p for p, _ in problems] == ["../up.safetensors"]
    assert len(files_from_tree(page, None, None)[0]) == 4  # every file when no extensions are given


def test_a_listing_item_with_too_many_files_leaves_them_unknown():
    from mirrorwatch.hubs.huggingface import listing

    item = {"id": "ns/big", "siblings": [{"rfilename": f"f{i}.png"} for i in range(listing.MAX_SIBLINGS + 1)]}
    parsed = listing_from_item(item, "dataset")
    assert parsed.repo_type == "dataset" and parsed.paths is None and parsed.files_count == listing.MAX_SIBLINGS + 1
