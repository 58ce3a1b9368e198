"""Defect 8 (issue 8): legacy repo ids without a namespace (`gpt2`, `bert-base-uncased`) are usable
ids, not malformed listing items; ids with `.`/`..` parts or other junk still are."""

from __future__ import annotations

import pytest

from mirrorwatch.hubs.base import ListingProblem, RepoListing
from mirrorwatch.hubs.huggingface.listing import is_legacy_id, is_repo_id, parse_page


def test_legacy_ids_are_listed_not_dropped():
    page = parse_page([
        {"id": "gpt2", "siblings": [{"rfilename": "model.safetensors"}], "gated": False},
        {"id": "bert-base-uncased", "author": None, "siblings": []},
        {"id": "openai-community/gpt2", "siblings": [{"rfilename": "model.safetensors"}]},
    ])
    assert all(isinstance(x, RepoListing) for x in page), page
    gpt2, bert, namespaced = page
    assert (gpt2.repo_id, gpt2.author, gpt2.paths) == ("gpt2", None, ["model.safetensors"])
    assert (bert.repo_id, bert.author) == ("bert-base-uncased", None)  # no namespace: no author guessed
    assert namespaced.author == "openai-community"
    assert is_legacy_id("gpt2") and not is_legacy_id("openai-community/gpt2")


@pytest.mark.parametrize("bad", ["", "..", ".", "a/../b", "a/b/c", "a b", "ns/", "/name", "x" * 97, "gpt2\n"])
def test_unusable_ids_are_still_listing_problems(bad):
    assert not is_repo_id(bad)
    (item,) = parse_page([{"id": bad}])
    assert isinstance(item, ListingProblem)
