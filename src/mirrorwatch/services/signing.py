"""Ed25519 keys for signed exchange files and feed pages (the `cryptography` package).

A publisher makes a key pair once (`mirrorwatch bank keygen NAME`): NAME.key, the private key
(PKCS#8 PEM, readable by its owner only), and NAME.pub, the public key (SubjectPublicKeyInfo PEM) it
hands to partners. A key's id is the first 16 hex of the SHA-256 of its 32 raw public bytes: files and
pages name the id of the key that signed them, and a partner verifies against the public key file it
chose to trust, never against a key the file carries."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from mirrorwatch.errors import Conflict, InvalidInput

MAX_KEY_FILE = 16 * 1024


class BadSignature(InvalidInput):
    """A signature is missing, malformed, made by another key, or does not match the content."""


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass
class SigningKey:
    private: Ed25519PrivateKey

    @property
    def key_id(self) -> str:
        return key_id(self.private.public_key())

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self.private.sign(message)).decode()


@dataclass
class VerifyKey:
    public: Ed25519PublicKey

    @property
    def key_id(self) -> str:
        return key_id(self.public)

    def verify(self, message: bytes, signature: object, signed_by: object, what: str) -> None:
        """Raise BadSignature unless `signature` (base64) by key `signed_by` signs `message`."""
        if not signature:
            raise BadSignature(f"{what} is not signed (pass --allow-unsigned to accept unsigned data)")
        if signed_by != self.key_id:
            raise BadSignature(f"{what} is signed by key {str(signed_by)[:40]!r}, not by the key you trust "
                               f"({self.key_id})")
        try:
            raw = base64.b64decode(str(signature), validate=True)
            self.public.verify(raw, message)
        except (binascii.Error, ValueError, InvalidSignature):
            raise BadSignature(f"{what} has a bad signature: its content is not what key {self.key_id} signed") from None


def _read(path: Path, what: str) -> bytes:
    try:
        if path.stat().st_size > MAX_KEY_FILE:
            raise InvalidInput(f"{path} is too large to be a {what}")
        return path.read_bytes()
    except FileNotFoundError:
        raise InvalidInput(f"no {what} at {path}") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read the {what} {path}: {exc.strerror}") from None


def load_signing_key(path: Path) -> SigningKey:
    data = _read(path, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise InvalidInput(f"{path} is not an unencrypted PEM private key (make one with `mirrorwatch bank keygen`)") \
            from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput(f"{path} is not an Ed25519 private key")
    return SigningKey(key)


def load_verify_key(path: Path) -> VerifyKey:
    data = _read(path, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise InvalidInput(f"{path} is not a PEM public key (the .pub file of `mirrorwatch bank keygen`)") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidInput(f"{path} is not an Ed25519 public key")
    return VerifyKey(key)


def generate_keypair(prefix: Path, *, overwrite: bool = False) -> tuple[Path, Path, str]:
    """Write PREFIX.key (mode 0600) and PREFIX.pub; return both paths and the key id."""
    private_path, public_path = prefix.with_name(prefix.name + ".key"), prefix.with_name(prefix.name + ".pub")
    for p in (private_path, public_path):
        if p.exists() and not overwrite:
            raise Conflict(f"{p} already exists (pass --force to replace it)")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        public_path.write_bytes(pub)
    except OSError as exc:
        raise InvalidInput(f"cannot write the key files {private_path}: {exc.strerror}") from None
    return private_path, public_path, key_id(key.public_key())
