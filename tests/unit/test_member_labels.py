"""How an archive member is named downstream: its row's path "<archive>!<member>" back to the
archive's path, "member M of archive A", and the evidence line saying how it was matched; the
CRC-32-only scores sit below every full-hash score and below a strong match."""

from __future__ import annotations

from mirrorwatch.hashing.forms import FORMS
from mirrorwatch.match.archives import member_path
from mirrorwatch.match.hits import is_strong
from mirrorwatch.match.scores import CRC32_ONLY_SCORE, CRC32_SIZE_SCORE, EXACT_STRONG_SCORE
from mirrorwatch.services.lookup import archive_of
from mirrorwatch.services.matches import describe_evidence


def test_archive_of_a_member_row_path():
    assert member_path("a/pack.zip", "loras/x.safetensors") == "a/pack.zip!loras/x.safetensors"
    assert archive_of("a/pack.zip!loras/x.safetensors", "loras/x.safetensors") == "a/pack.zip"
    assert archive_of("odd!name.zip!m!1.bin", "m!1.bin") == "odd!name.zip"  # "!" in names: the member decides
    assert archive_of("plain.safetensors", None) is None
    assert archive_of("other.zip!x", "y") is None  # not this member's row


def test_member_evidence_reads_as_a_sentence():
    lines = describe_evidence([
        {"tier": 1, "kind": "archive_member", "member": "loras/x.safetensors", "archive": "pack.zip",
         "lead": "crc32 + size", "size": 151234567, "confirmed": "member read alone, every hash form computed"},
        {"tier": 1, "kind": "hash", "form": "crc32", "value": "0badcafe", "member": "loras/x.safetensors"},
    ], 1)
    assert lines[0] == ("member loras/x.safetensors of archive pack.zip: lead by crc32 + size, 151,234,567 bytes; "
                        "member read alone, every hash form computed")
    assert lines[1].startswith("CRC32: 0badcafe")


def test_crc32_only_scores_are_weaker_than_any_full_hash():
    full = [f.exact_score for f in FORMS.values() if f.exact_score is not None]
    corroborated = [f.corroborated_score for f in FORMS.values() if f.corroborated_score is not None]
    assert CRC32_ONLY_SCORE < CRC32_SIZE_SCORE < EXACT_STRONG_SCORE <= min(full + corroborated)
    assert not is_strong(1, CRC32_SIZE_SCORE) and is_strong(1, min(full + corroborated))
