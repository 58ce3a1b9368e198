"""The mirrorwatch-signals/1 format without a database: cursors, record checks, canonical digests,
Ed25519 signatures of files (docs/exchange.md)."""

from __future__ import annotations

import json

import pytest

from mirrorwatch.errors import InvalidInput
from mirrorwatch.hashing.forms import FORMS
from mirrorwatch.services.exchange import (
    FORMAT,
    BadFeed,
    canonical,
    check_record,
    file_message,
    make_cursor,
    parse_cursor,
    read_signals_file,
    records_digest,
)
from mirrorwatch.services.signing import BadSignature, generate_keypair, load_signing_key, load_verify_key

UID = "ab" * 16
SHA = "0899cd856fba9b131050135138cd87c5e5222f0a0657b94730901988d5cabdbb"


def test_cursors():
    assert parse_cursor(None, UID, 10) == 0
    assert parse_cursor(make_cursor(UID, 7), UID, 10) == 7
    with pytest.raises(InvalidInput, match="future"):
        parse_cursor(make_cursor(UID, 11), UID, 10)
    with pytest.raises(InvalidInput, match="another bank"):
        parse_cursor(make_cursor("cd" * 16, 1), UID, 10)
    for bad in ("7", "c1.xyz.7", f"c1.{UID}.-1", f"c1.{UID}.7; drop table", "c2." + UID + ".1"):
        with pytest.raises(InvalidInput, match="malformed"):
            parse_cursor(bad, UID, 10)


def test_record_checked_and_normalised():
    rec = {"id": f"{UID}:1", "seq": 3, "status": "active", "name": "Invented Name", "url": None,
           "hashes": {"sha256": [SHA.upper()], "autov2": [SHA[:10]], "crc32": ["85114A0D"]},
           "signals": {"ss_session_id": ["1700000000"]}, "sizes": [1234]}
    inc = check_record(rec, "record 1")
    # AutoV2 follows from the SHA256 (never stored); hex is lower case
    assert inc.signals == {("sha256", SHA), ("crc32", "85114a0d"), ("ss_session_id", "1700000000"), ("size", "1234")}
    tomb = check_record({"id": f"{UID}:2", "seq": 4, "status": "withdrawn", "name": "ignored"}, "record 2")
    assert tomb.status == "withdrawn" and not tomb.signals and not tomb.fields


@pytest.mark.parametrize("change, message", [
    ({"id": "../../etc"}, "'id' must be"),
    ({"status": "deleted"}, "'status' must be"),
    ({"hashes": {"sha256": ["xyz"]}}, "not a hash"),
    ({"hashes": {"sha256": [SHA[:-1]]}}, "63 hex characters"),
    ({"hashes": {"sha256": [SHA[:12]]}}, "not a valid SHA256"),
    ({"hashes": {"pdq": ["ab" * 32]}}, "not a hash form"),
    ({"signals": {"Bad Form": ["x"]}}, "short lower-case name"),
    ({"signals": {"note": ["x" * 201]}}, "1 to 200 characters"),
    ({"sizes": [-1]}, "non-negative"),
    ({"civitai_model_id": "12"}, "non-negative integer"),
    ({"name": ["a list"]}, "must be text"),
    ({"signals": {"many": [str(i) for i in range(300)]}}, "more than 200"),
])
def test_bad_records_refused(change, message):
    rec = {"id": f"{UID}:1", "seq": 1, "status": "active", "name": "n", "hashes": {"sha256": [SHA]}, **change}
    with pytest.raises(BadFeed, match=message):
        check_record(rec, "record 1")


def test_every_registered_form_is_accepted():
    rec = {"id": f"{UID}:1", "status": "active", "name": "n",
           "hashes": {name: ["a" * f.hex_length] for name, f in FORMS.items()}}
    forms = {form for form, _v in check_record(rec, "r").signals}
    assert forms == {f.name for f in FORMS.values() if not (f.derived_from and not f.stored_when_derived)}


def test_digest_is_over_canonical_json():
    recs = [{"b": 1, "a": "é"}]
    assert canonical(recs) == '[{"a":"é","b":1}]'.encode()
    assert records_digest(recs) == records_digest(json.loads(json.dumps(recs, indent=2)))


def _write(path, header, records, key=None, *, count=None, digest=None):
    import hashlib

    lines = [canonical(r) + b"\n" for r in records]
    d = hashlib.sha256(b"".join(lines)).hexdigest()
    trailer = {"type": "trailer", "count": len(records) if count is None else count, "digest": digest or d}
    if key is not None:
        trailer["key_id"] = key.key_id
        trailer["signature"] = key.sign(file_message(header, len(records), d))
    path.write_bytes(canonical(header) + b"\n" + b"".join(lines) + canonical(trailer) + b"\n")


def test_signed_file_verified(tmp_path):
    priv, pub, kid = generate_keypair(tmp_path / "pub")
    assert (priv.stat().st_mode & 0o777) == 0o600 and len(kid) == 16
    _p2, pub2, _k2 = generate_keypair(tmp_path / "other")
    key, verify = load_signing_key(priv), load_verify_key(pub)
    header = {"format": FORMAT, "type": "header", "bank": {"uid": UID, "name": "b"}}
    recs = [{"id": f"{UID}:{i}", "seq": i, "status": "active", "name": f"n{i}"} for i in range(1, 4)]
    f = tmp_path / "b.jsonl"
    _write(f, header, recs, key)
    assert read_signals_file(f, verify_key=verify) == (header, 3)
    with pytest.raises(BadSignature, match="not by the key you trust"):
        read_signals_file(f, verify_key=load_verify_key(pub2))
    with pytest.raises(BadSignature, match="--allow-unsigned"):
        read_signals_file(f)
    _write(f, header, recs)
    with pytest.raises(BadSignature, match="not signed"):
        read_signals_file(f, verify_key=verify)
    assert read_signals_file(f, allow_unsigned=True)[1] == 3
    # a header changed after signing (another bank named) breaks the signature
    _write(f, header, recs, key)
    text = f.read_text().replace('"name":"b"', '"name":"c"', 1)
    f.write_text(text)
    with pytest.raises(BadSignature, match="bad signature"):
        read_signals_file(f, verify_key=verify)
    _write(f, header, recs, key, count=2)
    with pytest.raises(BadFeed, match="changed or damaged"):
        read_signals_file(f, verify_key=verify)
    (tmp_path / "junk.pub").write_text("not a key")
    with pytest.raises(InvalidInput, match="not a PEM public key"):
        load_verify_key(tmp_path / "junk.pub")
    with pytest.raises(InvalidInput, match="not an unencrypted PEM private key"):
        load_signing_key(pub)
