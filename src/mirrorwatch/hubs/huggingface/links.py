"""Where Hugging Face pages live: $MIRRORWATCH_HF_URL (default https://huggingface.co; the demo
points it at its local hub). Ids are percent-encoded (the "/" of a repo id is kept); datasets
live under `/datasets/`, Spaces under `/spaces/`."""

from __future__ import annotations

import os
from urllib.parse import quote

from mirrorwatch.hubs.base import HubLinks

ENV_WEB_URL = "MIRRORWATCH_HF_URL"
DEFAULT_WEB_URL = "https://huggingface.co"


def web_base() -> str:
    return os.environ.get(ENV_WEB_URL, DEFAULT_WEB_URL).rstrip("/")


def _prefix(repo_type: str | None) -> str:
    """The web path prefix of a repo type (huggingface_hub's REPO_TYPES_URL_PREFIXES): models have none."""
    return {"dataset": "datasets/", "space": "spaces/"}.get(repo_type or "model", "")


class HfLinks(HubLinks):
    def repo_url(self, repo_id: str, repo_type: str | None = None) -> str | None:
        return f"{web_base()}/{_prefix(repo_type)}{quote(repo_id, safe='/')}"

    def file_url(self, repo_id: str, path: str, repo_type: str | None = None) -> str | None:
        return f"{web_base()}/{_prefix(repo_type)}{quote(repo_id, safe='/')}/blob/main/{quote(path, safe='/')}"

    def uploader_url(self, author: str) -> str | None:
        return f"{web_base()}/{quote(author, safe='')}"
