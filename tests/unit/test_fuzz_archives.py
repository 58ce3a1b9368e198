"""Fuzz target for the archive reader (formats/archives.py), in the convention of
test_fuzz_parsers.py: any bytes give members (and members confirm or fail) or the typed error
(ArchiveError, a MirrorwatchError with a message) — never another exception, never a read outside
the archive. Bounded in CI by MIRRORWATCH_FUZZ_EXAMPLES (default 120); longer on demand:

    MIRRORWATCH_FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest -q tests/unit/test_fuzz_archives.py
"""

from __future__ import annotations

import io
import os
import tarfile
import zipfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mirrorwatch.errors import MirrorwatchError
from mirrorwatch.formats.archives import ArchiveLimits, confirm_member, read_tar, read_zip

# CI runs a fixed, reproducible set of examples (derandomized: a red CI is a regression, never a dice
# roll); an on-demand run with MIRRORWATCH_FUZZ_EXAMPLES=N explores new random inputs.
ON_DEMAND = os.environ.get("MIRRORWATCH_FUZZ_EXAMPLES")
EXAMPLES = int(ON_DEMAND or "120")
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=ON_DEMAND is None)
SMALL = ArchiveLimits(max_members=50, max_name_bytes=64, max_central_directory=64_000, max_ratio=50,
                      max_member_size=1_000_000, max_tar_members=10, chunk_size=4096)


def _seed_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.safetensors", b"\x10" + bytes(7) + b'{"k":1}' + b"x" * 300)
        z.writestr("b/c.bin", b"hello" * 200, compress_type=zipfile.ZIP_DEFLATED)
        z.comment = b"seed"
    return buf.getvalue()


def _seed_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in {"a.bin": b"a" * 700, "é/" + "n" * 120: b"b"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


SEED_ZIP, SEED_TAR = _seed_zip(), _seed_tar()


def _reader(blob: bytes):
    def read_range(offset: int, length: int) -> bytes:
        assert offset >= 0 and offset + length <= len(blob), "read outside the archive"
        return blob[offset : offset + length]
    return read_range


def _exercise(blob: bytes, reader) -> None:
    try:
        listing = reader(_reader(blob), len(blob), SMALL)
    except MirrorwatchError as exc:
        assert str(exc).strip()
        return
    for m in listing.members[:5]:
        try:
            h = confirm_member(_reader(blob), len(blob), m, limits=SMALL)
            assert h.size == m.size
        except MirrorwatchError as exc:
            assert str(exc).strip()


def _mutated(seed: bytes):
    return st.lists(st.tuples(st.integers(0, len(seed) - 1), st.integers(0, 255)), max_size=8).map(
        lambda edits: _apply(seed, edits))


def _apply(seed: bytes, edits) -> bytes:
    b = bytearray(seed)
    for i, v in edits:
        b[i] = v
    return bytes(b)


@FUZZ
@given(st.binary(max_size=4096) | _mutated(SEED_ZIP) | st.binary(max_size=200).map(lambda p: p + SEED_ZIP[-200:]))
def test_fuzz_zip_reader(blob):
    _exercise(blob, read_zip)


@FUZZ
@given(st.binary(max_size=4096) | _mutated(SEED_TAR))
def test_fuzz_tar_reader(blob):
    _exercise(blob, read_tar)
