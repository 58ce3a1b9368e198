"""Where Civitai pages live: $MIRRORWATCH_CIVITAI_URL (default https://civitai.com; the demo may
point it at a local API). A repo is a Civitai model (its numeric id); a file's path starts with
its version id (`{versionId}/{file name}`), so a file links to its version on the model page."""

from __future__ import annotations

import os
from urllib.parse import quote

from mirrorwatch.hubs.base import HubLinks

ENV_WEB_URL = "MIRRORWATCH_CIVITAI_URL"
DEFAULT_WEB_URL = "https://civitai.com"


def web_base() -> str:
    return os.environ.get(ENV_WEB_URL, DEFAULT_WEB_URL).rstrip("/")


def _digits(text: str) -> str | None:
    return text if text.isascii() and text.isdigit() and len(text) <= 16 else None


def version_of(path: str) -> str | None:
    """The version id a file path starts with (None for a path that does not)."""
    head, sep, _ = path.partition("/")
    return _digits(head) if sep else None


class CivitaiLinks(HubLinks):
    def repo_url(self, repo_id: str, repo_type: str | None = None) -> str | None:
        model = _digits(repo_id)
        return f"{web_base()}/models/{model}" if model else None

    def file_url(self, repo_id: str, path: str, repo_type: str | None = None) -> str | None:
        model, version = _digits(repo_id), version_of(path)
        if model is None:
            return None
        if version is None:
            return f"{web_base()}/models/{model}"
        return f"{web_base()}/models/{model}?modelVersionId={version}"

    def uploader_url(self, author: str) -> str | None:
        return f"{web_base()}/user/{quote(author, safe='')}" if author else None
