"""JSON shapes of the Hub API subset (hub-api.md), built from the model. Pure functions, no HTTP."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from .model import Commit, Repo, RepoFile, iso_z

# Fields the listing returns without `full`/`expand` (what the Hub answers by default).
DEFAULT_LIST_FIELDS = ("likes", "trendingScore", "private", "downloads", "tags", "pipeline_tag",
                       "library_name", "createdAt")
FULL_LIST_FIELDS = (*DEFAULT_LIST_FIELDS, "author", "sha", "lastModified", "gated", "disabled", "siblings")
MODEL_INFO_FIELDS = ("author", "sha", "lastModified", "private", "disabled", "gated", "downloads", "likes",
                     "tags", "pipeline_tag", "library_name", "createdAt", "trendingScore", "usedStorage",
                     "spaces", "siblings")

# Every `expand` value the Hub accepts for models; the ones the test hub does not model are omitted
# from answers (the client then leaves them None), unknown ones answer 400 like the Hub.
EXPANDABLE = frozenset({
    "author", "baseModels", "cardData", "childrenModelCount", "config", "createdAt", "disabled", "downloads",
    "downloadsAllTime", "evalResults", "gated", "gguf", "inference", "inferenceProviderMapping", "lastModified",
    "library_name", "likes", "mask_token", "model-index", "pipeline_tag", "private", "resourceGroup",
    "safetensors", "sha", "siblings", "spaces", "tags", "transformersInfo", "trendingScore", "widgetData",
    "usedStorage", "xetEnabled", "securityRepoStatus",
})


# Datasets and Spaces (huggingface_hub's DatasetInfo/SpaceInfo and their Expand*Property_T): no
# `library_name`/`pipeline_tag`; a Space has an `sdk`, a `subdomain`, a `runtime`, no `downloads`.
DATASET_LIST_FIELDS = ("author", "disabled", "gated", "lastModified", "likes", "trendingScore", "private", "sha",
                       "downloads", "tags", "createdAt")
SPACE_LIST_FIELDS = ("author", "likes", "trendingScore", "private", "sdk", "tags", "createdAt")
DATASET_INFO_FIELDS = ("author", "sha", "lastModified", "private", "disabled", "gated", "downloads", "likes",
                       "tags", "createdAt", "trendingScore", "usedStorage", "siblings")
SPACE_INFO_FIELDS = ("author", "sha", "lastModified", "private", "disabled", "gated", "likes", "tags", "createdAt",
                     "trendingScore", "usedStorage", "sdk", "subdomain", "runtime", "models", "datasets", "siblings")
EXPANDABLE_BY_TYPE = {
    "dataset": frozenset({"author", "cardData", "citation", "createdAt", "description", "disabled", "downloads",
                          "downloadsAllTime", "gated", "lastModified", "likes", "mainSize", "paperswithcode_id",
                          "private", "resourceGroup", "sha", "siblings", "tags", "trendingScore", "usedStorage"}),
    "space": frozenset({"author", "cardData", "createdAt", "datasets", "disabled", "lastModified", "likes",
                        "models", "private", "region", "resourceGroup", "runtime", "sdk", "sha", "siblings",
                        "subdomain", "tags", "trendingScore", "usedStorage"}),
}
LIST_FIELDS_BY_TYPE = {"dataset": DATASET_LIST_FIELDS, "space": SPACE_LIST_FIELDS}
INFO_FIELDS_BY_TYPE = {"dataset": DATASET_INFO_FIELDS, "space": SPACE_INFO_FIELDS}


def expandable(repo_type: str) -> frozenset[str]:
    return EXPANDABLE_BY_TYPE.get(repo_type, EXPANDABLE)


def object_id(seq: int) -> str:
    """A Mongo-style 24-hex `_id`, stable per insertion number."""
    return f"{0x65a00000 + seq:08x}" + hashlib.md5(str(seq).encode()).hexdigest()[:16]


def sibling(f: RepoFile, *, blobs: bool) -> dict:
    """A sibling as the Hub writes it: a file kept in git has no `lfs` key at all (not `null`)."""
    if not blobs:
        return {"rfilename": f.path}
    out: dict = {"rfilename": f.path, "blobId": f.git_oid, "size": f.size}
    if f.lfs:
        out["lfs"] = {"sha256": f.sha256, "size": f.size, "pointerSize": f.pointer_size}
    return out


# Model fields that are a repo attribute as it is.
_REPO_ATTRS = {
    "author": "author", "private": "private", "disabled": "disabled", "gated": "gated", "downloads": "downloads",
    "likes": "likes", "pipeline_tag": "pipeline_tag", "library_name": "library_name",
    "trendingScore": "trending_score",
}


_MODEL_ONLY = frozenset({"downloads", "pipeline_tag", "library_name", "spaces"})


def repo_field(repo: Repo, name: str, commit: Commit, *, blobs: bool) -> tuple[bool, object]:
    """(known, value) of one field of a repo (model, dataset or Space) at `commit`."""
    if repo.repo_type != "model" and name in repo.extra:
        return True, repo.extra[name]
    if repo.repo_type == "space" and name in _MODEL_ONLY:
        return False, None
    if repo.repo_type == "dataset" and name in _MODEL_ONLY - {"downloads"}:
        return False, None
    if repo.repo_type == "space":
        match name:
            case "sdk":
                return True, "gradio"
            case "subdomain":
                return True, f"{repo.author}-{repo.name}".lower().replace(".", "-").replace("_", "-")
            case "runtime":
                return True, {"stage": "RUNNING", "hardware": {"current": "cpu-basic", "requested": "cpu-basic"}}
            case "models" | "datasets":
                return True, []
    if name in _REPO_ATTRS:
        return True, getattr(repo, _REPO_ATTRS[name])
    match name:
        case "sha":
            return True, commit.id
        case "lastModified":
            return True, iso_z(commit.date)
        case "createdAt":
            return True, iso_z(repo.created_at)
        case "tags":
            return True, list(repo.tags)
        case "usedStorage":
            return True, sum(f.size or 0 for f in commit.files)
        case "spaces":
            return True, []
        case "siblings":
            return True, [sibling(f, blobs=blobs) for f in commit.files]
        case "xetEnabled":
            return True, any(f.xet for f in commit.files)
    if name in repo.extra:
        return True, repo.extra[name]
    return False, None


def model_dict(repo: Repo, seq: int, fields: Iterable[str], *, commit: Commit | None = None,
               blobs: bool = False, model_id: bool = True, extra: bool = False) -> dict:
    """`{_id, id, [modelId], <fields>}` for a listing entry or a model_info answer (the Hub leaves
    `modelId` out when `expand` chooses the fields)."""
    c = commit or repo.head
    out: dict = {"_id": object_id(seq), "id": repo.repo_id}
    model_id = model_id and repo.repo_type == "model"  # (datasets and Spaces have no `modelId`)
    for name in fields:
        known, value = repo_field(repo, name, c, blobs=blobs)
        if known:
            out[name] = value
    if extra:  # a model_info without `expand`: the further fields real bodies carry
        for name, value in repo.extra.items():
            out.setdefault(name, value)
    if model_id:
        out["modelId"] = repo.repo_id
    return out


def tree_file(f: RepoFile, *, last_commit: Commit | None = None) -> dict:
    entry: dict = {"type": "file", "oid": f.git_oid, "size": f.size, "path": f.path}
    if f.lfs:
        entry["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": f.pointer_size}
    if f.xet:
        entry["xetHash"] = f.xet_hash
    if last_commit is not None:
        entry["lastCommit"] = last_commit_dict(last_commit)
    return entry


def tree_dir(path: str, commit: Commit, *, last_commit: Commit | None = None) -> dict:
    prefix = path + "/"
    members = sorted(f"{f.path}:{f.git_oid}" for f in commit.files if f.path.startswith(prefix))
    oid = hashlib.sha1(("tree\x00" + "\n".join(members)).encode()).hexdigest()
    entry: dict = {"type": "directory", "oid": oid, "size": 0, "path": path}
    if last_commit is not None:
        entry["lastCommit"] = last_commit_dict(last_commit)
    return entry


def last_commit_dict(c: Commit) -> dict:
    return {"id": c.id, "title": c.title, "date": iso_z(c.date)}


def commit_dict(c: Commit) -> dict:
    return {
        "id": c.id,
        "title": c.title,
        "message": c.message,
        "date": iso_z(c.date),
        "authors": [{"user": a, "avatar": None} for a in c.authors],
    }


def tree_paths(commit: Commit, base: str, *, recursive: bool) -> list[tuple[str, str]] | None:
    """[(kind, path)] of entries under folder `base` ("" = root), sorted by path with folders first
    at each level like the Hub; None if `base` is not a folder at this commit."""
    dirs = commit.directories()
    if base and base not in dirs:
        return None
    prefix = base + "/" if base else ""
    out: list[tuple[str, str]] = []
    for d in dirs:
        if d.startswith(prefix) and (recursive or "/" not in d[len(prefix):]):
            out.append(("directory", d))
    for f in commit.files:
        if f.path.startswith(prefix) and (recursive or "/" not in f.path[len(prefix):]):
            out.append(("file", f.path))
    out.sort(key=lambda e: (e[1].split("/")[:-1], e[0] != "directory", e[1]))
    return out
