"""Faults the test hub can inject, so sweeper tests can prove they record what they skipped and go on.

A `Faults` value is configuration plus a little state (a seeded random generator and a request
counter for storms). Attach it with `serve(hub, faults=...)` or `running.faults = ...` at any time.

What each fault does (repo-scoped faults apply to that repo's API answers — model_info, tree,
paths-info, commits — and to its resolve/CDN answers; listings are left intact unless
`faults_in_listing=True`, because one bad entry would otherwise stop the client's whole listing):

- latency_s / latency_jitter_s: every answer waits latency + uniform(0, jitter) seconds.
- error_rate: that fraction of all requests (any route) answers a random 500/502/503.
- error_repos: every API and resolve request naming the repo answers 500.
- storm=(after_n, n_errors): after `after_n` requests, the next `n_errors` answer 503.
- malformed_json_repos: JSON answers are cut in half (invalid JSON, status 200).
- wrong_types_repos: fields of the wrong type; a set picks one kind per repo (stable), a dict names
  it: "size_as_string", "sha256_not_hex", "siblings_not_list" (a dict instead of a list; tree and
  paths-info answer a dict), "absurd_size" (10**30). Resolve HEADs get a non-numeric or absurd
  `X-Linked-Size` or a non-hex `X-Linked-Etag` for the matching kinds.
- missing_fields_repos: model_info loses sha/lastModified/createdAt/author and siblings keep only
  rfilename; tree entries lose `lfs`; resolve answers lose ETag, X-Linked-Etag, X-Linked-Size and
  X-Repo-Commit.
- stripped_linked_repos: resolve answers lose X-Linked-Etag and X-Linked-Size only (a proxy or mirror
  that drops the Hub's own headers); ETag (the git blob id) and the API answers stay intact.
- link_loop: the last page of /api/models links back to the first page (forever).
- slowloris_repos: headers are sent, then the body trickles one byte per `slowloris_interval_s`
  (a HEAD, having no body, trickles its headers instead).

Hostile answers (a hub that lies on purpose):
- hostile_fields: repo id -> fields merged into that repo's listing entry and model_info (e.g. a
  300-character "author", a NUL in a sibling's "rfilename", a 100-character "sha").
- hostile_items: raw items appended to the first listing page (e.g. a 5,000-character "id").
- next_link: every listing page's `Link: rel=next` names this URL (e.g. another origin).
- huge_listing_bytes: the first listing page is a generated JSON array of exactly this many bytes,
  streamed (never built in memory); `huge_listing_item_bytes` sets the size of each of its items;
  `huge_listing_no_length` sends it without a Content-Length (the body ends when the connection closes).
"""

from __future__ import annotations

import random
import threading
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

WRONG_TYPE_KINDS = ("size_as_string", "sha256_not_hex", "siblings_not_list", "absurd_size")
ABSURD_SIZE = 10**30
NOT_HEX_SHA256 = "z" * 64


@dataclass
class Faults:
    latency_s: float = 0.0
    latency_jitter_s: float = 0.0
    error_rate: float = 0.0
    error_repos: set[str] = field(default_factory=set)
    storm: tuple[int, int] | None = None
    malformed_json_repos: set[str] = field(default_factory=set)
    wrong_types_repos: set[str] | dict[str, str] = field(default_factory=set)
    missing_fields_repos: set[str] = field(default_factory=set)
    stripped_linked_repos: set[str] = field(default_factory=set)
    link_loop: bool = False
    slowloris_repos: set[str] = field(default_factory=set)
    slowloris_interval_s: float = 1.0
    faults_in_listing: bool = False
    seed: int = 0
    hostile_fields: dict[str, dict] = field(default_factory=dict)
    hostile_items: list[dict] = field(default_factory=list)
    next_link: str | None = None
    huge_listing_bytes: int = 0
    huge_listing_item_bytes: int = 200
    huge_listing_no_length: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError("error_rate must be between 0 and 1")
        if self.latency_s < 0 or self.latency_jitter_s < 0 or self.slowloris_interval_s < 0:
            raise ValueError("latencies must be >= 0")
        self.error_repos = set(self.error_repos)
        self.malformed_json_repos = set(self.malformed_json_repos)
        self.missing_fields_repos = set(self.missing_fields_repos)
        self.slowloris_repos = set(self.slowloris_repos)
        if isinstance(self.wrong_types_repos, Mapping):
            bad = {k for k in self.wrong_types_repos.values() if k not in WRONG_TYPE_KINDS}
            if bad:
                raise ValueError(f"unknown wrong-type kinds {sorted(bad)}; choose from {WRONG_TYPE_KINDS}")
            self.wrong_types_repos = dict(self.wrong_types_repos)
        else:
            self.wrong_types_repos = set(self.wrong_types_repos)
        if self.storm is not None:
            after, n = self.storm
            if after < 0 or n < 0:
                raise ValueError("storm must be (after_n_requests >= 0, n_errors >= 0)")
            self.storm = (int(after), int(n))
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self._count = 0

    def reset(self) -> None:
        """Restart the request counter (storms) and the random sequence."""
        with self._lock:
            self._rng = random.Random(self.seed)
            self._count = 0

    # -- decisions the server asks for -----------------------------------------------------
    def delay(self) -> float:
        if not self.latency_s and not self.latency_jitter_s:
            return 0.0
        with self._lock:
            jitter = self._rng.uniform(0, self.latency_jitter_s) if self.latency_jitter_s else 0.0
        return self.latency_s + jitter

    def injected_error(self, repo_id: str | None, *, repo_scoped: bool) -> tuple[int, str] | None:
        """(status, fault name) for a 5xx to send instead of the real answer, or None."""
        with self._lock:
            self._count += 1
            n = self._count
            roll = self._rng.random() if self.error_rate else 1.0
            pick = self._rng.choice((500, 502, 503)) if roll < self.error_rate else 0
        if self.storm is not None:
            after, count = self.storm
            if after < n <= after + count:
                return 503, "storm"
        if repo_scoped and repo_id is not None and repo_id in self.error_repos:
            return 500, "error_repo"
        if pick:
            return pick, "error_rate"
        return None

    def wrong_type_kind(self, repo_id: str) -> str | None:
        w = self.wrong_types_repos
        if isinstance(w, dict):
            return w.get(repo_id)
        if repo_id in w:
            return WRONG_TYPE_KINDS[zlib.crc32(repo_id.encode()) % len(WRONG_TYPE_KINDS)]
        return None

    def is_malformed(self, repo_id: str | None) -> bool:
        return repo_id is not None and repo_id in self.malformed_json_repos

    def is_missing_fields(self, repo_id: str | None) -> bool:
        return repo_id is not None and repo_id in self.missing_fields_repos

    def strips_linked(self, repo_id: str | None) -> bool:
        return repo_id is not None and repo_id in self.stripped_linked_repos

    def is_slowloris(self, repo_id: str | None) -> bool:
        return repo_id is not None and repo_id in self.slowloris_repos

    @property
    def request_count(self) -> int:
        return self._count


# -- JSON corruption helpers (pure; the server calls them on the dicts it is about to send) ------

def corrupt_model_info(data: dict, kind: str | None, missing: bool) -> dict | list:
    """Apply wrong types and/or missing fields to a model_info / listing entry dict."""
    if missing:
        for k in ("sha", "lastModified", "createdAt", "author"):
            data.pop(k, None)
        if isinstance(data.get("siblings"), list):
            data["siblings"] = [{"rfilename": s["rfilename"]} for s in data["siblings"]]
    if kind:
        siblings = data.get("siblings")
        if isinstance(siblings, list):
            for s in siblings:
                _corrupt_sizes(s, kind, sha_key="sha256")
            if kind == "siblings_not_list":
                data["siblings"] = {s["rfilename"]: s for s in siblings}
    return data


def corrupt_tree_entries(entries: list[dict], kind: str | None, missing: bool) -> list | dict:
    """Apply wrong types and/or missing fields to tree / paths-info entries."""
    for e in entries:
        if missing:
            e.pop("lfs", None)
        if kind:
            _corrupt_sizes(e, kind, sha_key="oid")
    if kind == "siblings_not_list":
        return {"entries": entries}
    return entries


def _corrupt_sizes(entry: dict, kind: str, *, sha_key: str) -> None:
    lfs = entry.get("lfs") if isinstance(entry.get("lfs"), dict) else None
    if kind == "size_as_string":
        if "size" in entry and entry["size"] is not None:
            entry["size"] = str(entry["size"])
        if lfs:
            lfs["size"] = str(lfs["size"])
    elif kind == "absurd_size":
        if "size" in entry:
            entry["size"] = ABSURD_SIZE
        if lfs:
            lfs["size"] = ABSURD_SIZE
    elif kind == "sha256_not_hex" and lfs:
        lfs[sha_key] = NOT_HEX_SHA256


def corrupt_resolve_headers(headers: list[tuple[str, str]], kind: str | None, missing: bool) -> list[tuple[str, str]]:
    """Apply the header side of wrong types / missing fields to a resolve answer."""
    if missing:
        drop = {"etag", "x-linked-etag", "x-linked-size", "x-repo-commit"}
        headers = [(k, v) for k, v in headers if k.lower() not in drop]
    if kind:
        out = []
        for k, v in headers:
            lk = k.lower()
            if lk == "x-linked-size" and kind == "size_as_string":
                v = "unknown"
            elif lk == "x-linked-size" and kind == "absurd_size":
                v = str(ABSURD_SIZE)
            elif lk == "x-linked-etag" and kind == "sha256_not_hex":
                v = f'"{NOT_HEX_SHA256}"'
            out.append((k, v))
        headers = out
    return headers


def truncate_json(body: bytes) -> bytes:
    """Invalid JSON: the first half of a valid document (never empty, never valid)."""
    half = body[: max(1, len(body) // 2)]
    return half + b"\x00<truncated"


def huge_array(total: int, item_bytes: int = 200) -> tuple[int, object]:
    """A JSON array of listing items of exactly `total` bytes as (length, stream(start, end)): fixed-size
    items made on the fly, padded with spaces before the closing bracket."""
    item_bytes = max(item_bytes, 64)

    def item(i: int) -> bytes:
        head = f'{{"id":"bulk-user/model-{i:09d}","author":"bulk-user","pad":"'.encode()
        return head + b"x" * (item_bytes - len(head) - 2) + b'"}'

    n = max(0, (total - 2 + 1) // (item_bytes + 1))
    body_len = 2 + n * item_bytes + max(0, n - 1)
    pad = max(0, total - body_len)

    def stream(start: int, end: int):
        # (always the whole body: the listing is never asked for a range)
        yield b"["
        buf = bytearray()
        for i in range(n):
            if i:
                buf += b","
            buf += item(i)
            if len(buf) >= 1 << 16:
                yield bytes(buf)
                buf.clear()
        buf += b" " * pad + b"]"
        yield bytes(buf)

    return body_len + pad, stream
