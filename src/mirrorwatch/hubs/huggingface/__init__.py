"""Hugging Face through the official `huggingface_hub` client.

- `hub.py`: `HuggingFaceHub`, the port over `HfApi` (listing, hashes, range reads, status);
- `listing.py`: the defensive parser of listing items and metadata;
- `transport.py`: the paced HTTP client (quota pools "api"/"resolvers", deadlines);
- `retry.py`: which failures are retried;
- `links.py`: web URLs.

Importing this package is cheap: the client is imported only when a hub is opened."""

from __future__ import annotations

from mirrorwatch.hubs.base import WEIGHT_EXTENSIONS, Hub, HubSpec
from mirrorwatch.hubs.huggingface.links import HfLinks

NAME = "hf"


def open_hub(location: str | None = None, *, extensions: tuple[str, ...] = WEIGHT_EXTENSIONS,
             known: dict[str, dict] | None = None) -> Hub:
    from mirrorwatch.hubs.huggingface.hub import HuggingFaceHub

    return HuggingFaceHub(location, extensions=extensions)


SPEC = HubSpec(name=NAME, label="Hugging Face", kind="remote", links=HfLinks(), open=open_hub,
               help="Sweep Hugging Face model repos (HF_ENDPOINT, HF_TOKEN from the environment).")
