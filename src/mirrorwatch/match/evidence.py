"""One evidence pipeline: what mirrorwatch keeps of a model file, built by one function.

`build_evidence(source, ...)` reads a file through a bounded `ByteSource` and returns a
`FileEvidence`: every hash form of its bytes, the signals in its safetensors header, its weight
fingerprint, and why any of these could not be had. The sweep's robust tiers (a hub file, read
with range requests and a size-capped transient download; a local folder's file, read where it
is) and `bank add-file` (an original file a team holds) all use it. Nothing of the bytes is kept."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mirrorwatch.errors import MalformedFile, MirrorwatchError
from mirrorwatch.hashing.forms import derive

if TYPE_CHECKING:
    from mirrorwatch.formats.safetensors import SafetensorsHeader
    from mirrorwatch.match.fingerprint import Fingerprint

SHA_MISMATCH = "the bytes served do not hash to the sha256 the hub announced"


class ByteSource(Protocol):
    """A model file's bytes, read with bounds."""

    def header(self) -> tuple[SafetensorsHeader, int]:
        """Its safetensors header and the number of bytes read for it (bounded)."""
        ...

    def local_copy(self) -> AbstractContextManager[Path]:
        """A path holding its bytes while the context lasts (size-capped; a transient copy is
        deleted on exit). Raises MalformedFile past the cap."""
        ...


class LocalFile:
    """A file on this machine, read where it is."""

    def __init__(self, path: Path, *, max_bytes: int | None = None) -> None:
        self.path = path
        self.max_bytes = max_bytes

    def header(self) -> tuple[SafetensorsHeader, int]:
        from mirrorwatch.formats.safetensors import read_header

        h = read_header(self.path)
        return h, 8 + h.header_len

    @contextmanager
    def local_copy(self) -> Iterator[Path]:
        if self.max_bytes is not None and self.path.stat().st_size > self.max_bytes:
            raise MalformedFile(f"{self.path.name} is larger than the {self.max_bytes:,}-byte content-tier cap")
        yield self.path


@dataclass
class HeaderEvidence:
    signals: dict[str, list[str]]
    kind: str  # "family/base" as guessed from the tensors
    bytes_read: int
    tensors: int

    def record(self) -> dict[str, Any]:
        """As stored in HubFile.header_signals."""
        return {"signals": self.signals, "kind": self.kind, "bytes": self.bytes_read, "tensors": self.tensors}


@dataclass
class FileEvidence:
    """Everything the tiers use of one file. Stages not asked for stay empty."""

    hashes: dict[str, str] = field(default_factory=dict)  # every form computed from the bytes
    header: HeaderEvidence | None = None
    fingerprint: Fingerprint | None = None
    errors: dict[str, str] = field(default_factory=dict)  # "header" / "content" / "fingerprint" -> why not
    no_fingerprint: str | None = None  # why there is nothing to fingerprint (not an error: a checkpoint)

    def header_record(self) -> dict[str, Any] | None:
        if self.header is not None:
            return self.header.record()
        if "header" in self.errors:
            return {"error": self.errors["header"]}
        return None

    def signals(self) -> dict[str, list[str]]:
        """Signals to match on: the header's, and the AutoV3 of the content when it was read."""
        out = {k: list(v) for k, v in (self.header.signals if self.header else {}).items()}
        if self.hashes.get("autov3_full"):
            out["autov3_full"] = [self.hashes["autov3_full"]]
            out["autov3"] = [derive("autov3", self.hashes["autov3_full"])]
        return out


def _reason(exc: Exception) -> str:
    if isinstance(exc, MirrorwatchError):
        return str(exc)[:300]
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def add_fingerprint(ev: FileEvidence, path: Path) -> None:
    """The weight fingerprint of the file at `path` into `ev` (or why there is none)."""
    from mirrorwatch.match.fingerprint import NothingToFingerprint, fingerprint_file

    try:
        ev.fingerprint = fingerprint_file(path)
    except NothingToFingerprint as exc:
        ev.no_fingerprint = str(exc)[:300]
    except MirrorwatchError as exc:
        ev.errors["fingerprint"] = str(exc)[:300]


def build_evidence(source: ByteSource, *, header: bool = True, content: bool = False, fingerprint: bool = True,
                   expected_sha256: str | None = None) -> FileEvidence:
    """Read `source` once per stage asked for: the header (bounded), then with `content` its bytes
    (every hash form, then with `fingerprint` the weight fingerprint). A failing stage is recorded in
    `errors` and the others go on; bytes that do not hash to `expected_sha256` give no evidence."""
    from mirrorwatch.formats.kinds import guess_kind
    from mirrorwatch.hashing.engine import hash_file
    from mirrorwatch.match.header import header_signals

    ev = FileEvidence()
    if header:
        try:
            h, read = source.header()
            kind = guess_kind(h)
            ev.header = HeaderEvidence(header_signals(h), f"{kind.family}/{kind.base}", read, len(h.tensors))
        except Exception as exc:  # malformed header, network failure after retries, gated file...
            ev.errors["header"] = _reason(exc)
    if content:
        try:
            with source.local_copy() as path:
                hashes = hash_file(path)
                if expected_sha256 and hashes.sha256 != expected_sha256:
                    ev.errors["content"] = SHA_MISMATCH
                    return ev
                ev.hashes = hashes.forms()
                if fingerprint:
                    add_fingerprint(ev, path)
        except Exception as exc:
            ev.errors["content"] = _reason(exc)
    return ev
