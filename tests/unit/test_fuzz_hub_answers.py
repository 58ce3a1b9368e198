"""Fuzz target for hub answers (issue 13): the listing parser and the model_info file parsing. The
property: any JSON (wrong types, missing keys, huge numbers, nested junk) gives parsed listings and
ListingProblems (or files and problems, or a SkipRepo for the repo) — never any other exception.

Bounded in CI by MIRRORWATCH_FUZZ_EXAMPLES (default 120 examples per target, a few seconds); longer
on demand:

    MIRRORWATCH_FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest -q tests/test_fuzz_hub_answers.py
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mirrorwatch.hubs.base import ListingProblem, RepoFiles, RepoListing, SkipRepo
from mirrorwatch.hubs.huggingface.hub import HuggingFaceHub
from mirrorwatch.hubs.huggingface.listing import MalformedListing, files_from_siblings, parse_page

# CI runs a fixed, reproducible set of examples (derandomized: a red CI is a regression, never a dice
# roll); an on-demand run with MIRRORWATCH_FUZZ_EXAMPLES=N explores new random inputs.
ON_DEMAND = os.environ.get("MIRRORWATCH_FUZZ_EXAMPLES")
EXAMPLES = int(ON_DEMAND or "120")
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=ON_DEMAND is None)

scalars = (st.none() | st.booleans() | st.integers(min_value=-(10**40), max_value=10**40) | st.floats()
           | st.text(max_size=40) | st.sampled_from(["../x", "a/..", "\x00", "9999-12-31T23:59:59-14:00",
                                                    "2024-01-01T00:00:00Z", "a" * 64, "/abs", "a\\b"]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12)
keys = st.sampled_from(["id", "modelId", "author", "sha", "createdAt", "lastModified", "gated", "disabled",
                        "private", "tags", "siblings", "rfilename", "size", "lfs", "sha256"])
# items shaped like the hub's (the right keys, any values), so the fuzzer reaches the deep branches
sibling = st.dictionaries(st.sampled_from(["rfilename", "size", "lfs", "blobId"]),
                          json_values | st.dictionaries(st.sampled_from(["sha256", "size"]), json_values, max_size=2),
                          max_size=4)
item = st.dictionaries(keys, json_values | st.lists(sibling, max_size=4), max_size=10) | json_values


@FUZZ
@given(st.lists(item, max_size=4))
@example([{"id": "a/b", "createdAt": "9999-12-31T23:59:59-14:00"}])
@example([{"id": "a/b", "siblings": [{"rfilename": "../../x"}, "junk", {"rfilename": 10**30}]}])
@example([{"id": "x" * 5000}, {"id": ["a/b"]}, {"modelId": "a/b", "author": {"n": 1}, "tags": "t"}])
def test_listing_pages_parse_or_give_problems(page):
    out = parse_page(page)
    assert all(isinstance(x, RepoListing | ListingProblem) for x in out)
    for x in out:
        if isinstance(x, RepoListing):
            assert isinstance(x.repo_id, str) and (x.paths is None or all(isinstance(p, str) for p in x.paths))
            assert x.author is None or isinstance(x.author, str)


@FUZZ
@given(json_values | st.lists(sibling, max_size=6), json_values)
@example([{"rfilename": "a.safetensors", "size": 10**30, "lfs": {"sha256": 5}}], "x" * 100)
@example({"rfilename": "a"}, None)
def test_model_info_siblings_give_files_or_problems(siblings, revision):
    try:
        files, problems = files_from_siblings(siblings, revision)
    except MalformedListing:
        return
    for f in files:
        assert isinstance(f.path, str) and (f.size is None or 0 <= f.size <= 1 << 44)
        assert f.sha256 is None or len(f.sha256) == 64
    assert all(isinstance(p, str) and isinstance(r, str) for p, r in problems)


class _Api:
    """HfApi.model_info as huggingface_hub builds it from the answer's JSON (ModelInfo(**data))."""

    def __init__(self, data):
        self.data = data

    def model_info(self, *args, **kwargs):
        from huggingface_hub.hf_api import ModelInfo

        if not isinstance(self.data, dict):
            raise TypeError("model_info answer is not an object")
        return ModelInfo(**self.data)


_HUB = HuggingFaceHub("http://127.0.0.1:9", token="")


@FUZZ
@given(st.dictionaries(st.sampled_from(["id", "sha", "siblings", "gated", "disabled", "author", "lastModified",
                                        "createdAt", "private", "tags", "cardData"]),
                       json_values | st.lists(sibling, max_size=4), max_size=8) | json_values)
@example({"id": "a/b", "siblings": {"rfilename": "x"}})
@example({"id": "a/b", "siblings": [{"rfilename": "x.safetensors", "lfs": {"sha256": "z" * 64, "size": "1"}}]})
def test_model_info_answers_give_files_or_skip(data):
    _HUB.api = _Api(data)
    try:
        out = _HUB.fetch_files(RepoListing("a/b", paths=None), None)
    except SkipRepo:
        return
    assert isinstance(out, RepoFiles)
    assert all(isinstance(f.path, str) for f in out.files)
