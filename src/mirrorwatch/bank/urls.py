"""Civitai URLs in every form researchers paste, reduced to a model id and a version id.

Accepted: model pages with or without slug and `?modelVersionId=`, `model-versions/{id}`,
`api/download/models/{version}`, `api/v1/models/{id}`, `api/v1/model-versions/{id}`, `www.`,
no scheme, extra query parameters, `civitai:ID` / `civitai:ID@VERSION`, and AIR URNs
(`urn:air:sd1:lora:civitai:101001@202001`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from mirrorwatch.errors import InvalidUrl

CIVITAI_HOSTS = {"civitai.com", "civitai.green", "civitai.red"}

_PATHS = [
    (re.compile(r"^/models/(\d+)(?:/[^/]*)?/?$"), "model"),
    (re.compile(r"^/api/v1/models/(\d+)/?$"), "model"),
    (re.compile(r"^/model-versions/(\d+)/?$"), "version"),
    (re.compile(r"^/api/v1/model-versions/(\d+)/?$"), "version"),
    (re.compile(r"^/api/download/models/(\d+)/?$"), "version"),
]
_SHORT = re.compile(r"^civitai:(\d+)(?:@(\d+))?$", re.IGNORECASE)
_AIR = re.compile(r"^urn:air:[\w.-]+:[\w.-]+:civitai:(\d+)(?:@(\d+))?$", re.IGNORECASE)
#: Civitai ids are positive integers below this (JavaScript's safe-integer bound; fits a BIGINT).
MAX_CIVITAI_ID = 2**53


@dataclass(frozen=True)
class CivitaiRef:
    model_id: int | None
    version_id: int | None

    @property
    def url(self) -> str:
        """Canonical page URL for this reference."""
        if self.model_id is not None:
            base = f"https://civitai.com/models/{self.model_id}"
            return f"{base}?modelVersionId={self.version_id}" if self.version_id else base
        return f"https://civitai.com/model-versions/{self.version_id}"


def looks_like_url(text: str) -> bool:
    t = text.strip().lower()
    return (
        t.startswith(("http://", "https://", "www.", "civitai:", "urn:air:"))
        or "civitai." in t.split("/")[0]
        or bool(re.match(r"^[a-z0-9-]+(\.[a-z0-9-]+)+/", t))
    )


def _id(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 16:  # no Unicode digits, no 5,000-digit ids
        raise InvalidUrl(f"implausible Civitai id {text[:40]}")
    value = int(text)
    if value <= 0 or value >= MAX_CIVITAI_ID:
        raise InvalidUrl(f"implausible Civitai id {text}")
    return value


_FAST = re.compile(
    r"^(?:https?://)?(?:www\.)?civitai\.com/models/(\d{1,15})(?:/[^/?#]*)?/?(?:\?modelVersionId=(\d{1,15}))?$",
    re.IGNORECASE,
)


def parse_civitai_url(text: str) -> CivitaiRef:
    """Return the model and version ids a Civitai URL points to, or raise InvalidUrl."""
    raw = text.strip().strip("<>\"'")
    fast = _FAST.match(raw)  # the common model-page form, without the general URL parser
    if fast:
        return CivitaiRef(_id(fast.group(1)), _id(fast.group(2)) if fast.group(2) else None)
    if not raw:
        raise InvalidUrl("empty URL")
    for pattern in (_SHORT, _AIR):
        m = pattern.match(raw)
        if m:
            return CivitaiRef(_id(m.group(1)), _id(m.group(2)) if m.group(2) else None)
    candidate = raw if "://" in raw else "https://" + raw
    try:
        parts = urlsplit(candidate)
        host = (parts.hostname or "").lower()
    except ValueError:
        raise InvalidUrl(f"not a URL: {raw[:80]!r}") from None
    if host.startswith("www."):
        host = host[4:]
    if not host:
        raise InvalidUrl(f"not a URL: {raw[:80]!r}")
    if host not in CIVITAI_HOSTS:
        raise InvalidUrl(f"not a Civitai URL (host {host})")
    path = re.sub(r"/{2,}", "/", parts.path)
    query = parse_qs(parts.query)
    for pattern, what in _PATHS:
        m = pattern.match(path)
        if not m:
            continue
        if what == "version":
            return CivitaiRef(None, _id(m.group(1)))
        version = None
        for key in ("modelVersionId", "modelversionid", "version"):
            if key in query and query[key] and query[key][0].isdigit():
                version = _id(query[key][0])
                break
        return CivitaiRef(_id(m.group(1)), version)
    raise InvalidUrl(f"Civitai URL does not name a model or version: {path or '/'}")
