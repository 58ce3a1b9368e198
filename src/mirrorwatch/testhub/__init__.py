"""A local Hugging Face Hub for tests, benchmarks and the demo (never touches the internet).

    from mirrorwatch.testhub import Hub, Repo, RepoFile, serve, generate_repos
    with serve(Hub(generate_repos(200, seed=1))) as running:
        api = HfApi(endpoint=running.url)      # the real huggingface_hub client

See model.py (what is served), server.py (the HTTP API subset of hub-api.md), faults.py (injected
failures), ratelimit.py (the Hub's fixed-window quotas) and generate.py (synthetic repos).
"""

from .faults import WRONG_TYPE_KINDS, Faults
from .generate import fake_sha256, generate_repos
from .model import (
    LFS_SIZE_THRESHOLD,
    WEIGHT_EXTENSIONS,
    Commit,
    Hub,
    HubStats,
    Repo,
    RepoFile,
    git_blob_sha1,
    iso_z,
    lfs_pointer,
)
from .ratelimit import Quotas, RateLimiter
from .server import RunningHub, filler_bytes, serve

__all__ = [
    "LFS_SIZE_THRESHOLD",
    "WEIGHT_EXTENSIONS",
    "WRONG_TYPE_KINDS",
    "Commit",
    "Faults",
    "Hub",
    "HubStats",
    "Quotas",
    "RateLimiter",
    "Repo",
    "RepoFile",
    "RunningHub",
    "fake_sha256",
    "filler_bytes",
    "generate_repos",
    "git_blob_sha1",
    "iso_z",
    "lfs_pointer",
    "serve",
]
