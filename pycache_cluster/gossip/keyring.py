"""Cluster keyring: AES-GCM keys read from --cluster-key-file; the first encrypts, all decrypt.

Key file format: one key per line, base64 (standard alphabet) of 16, 24 or 32 random bytes
(AES-128/192/256). Blank lines and lines starting with '#' are ignored. The first key is the
primary. To rotate without downtime: add the new key as a second line on every node, then move
it to the first line everywhere, then delete the old line everywhere.
Generate a key with: python -c "import os, base64; print(base64.b64encode(os.urandom(32)).decode())"
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_SIZE = 12
TAG_SIZE = 16
KEY_SIZES = (16, 24, 32)


class KeyringError(ValueError):
    """A key or key file is malformed."""


class DecryptError(ValueError):
    """No key in the ring authenticates this ciphertext."""


class Keyring:
    def __init__(self, keys: list[bytes]):
        if not keys:
            raise KeyringError("a keyring needs at least one key")
        for key in keys:
            if len(key) not in KEY_SIZES:
                raise KeyringError(f"key of {len(key)} bytes; keys are 16, 24 or 32 bytes")
        self._keys = list(keys)
        self._ciphers = [AESGCM(k) for k in keys]

    @classmethod
    def from_file(cls, path: str) -> Keyring:
        keys = []
        with open(path, encoding="ascii") as f:
            for lineno, line in enumerate(f, 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                try:
                    keys.append(base64.b64decode(line, validate=True))
                except binascii.Error as exc:
                    raise KeyringError(f"{path}:{lineno}: not base64: {exc}") from None
        try:
            return cls(keys)
        except KeyringError as exc:
            raise KeyringError(f"{path}: {exc}") from None

    @property
    def keys(self) -> list[bytes]:
        return list(self._keys)

    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes:
        """nonce || ciphertext || tag under the primary key."""
        nonce = os.urandom(NONCE_SIZE)
        return nonce + self._ciphers[0].encrypt(nonce, plaintext, aad)

    def decrypt(self, sealed: bytes, aad: bytes) -> tuple[bytes, bytes]:
        """(nonce, plaintext) using whichever key authenticates; DecryptError if none does."""
        if len(sealed) < NONCE_SIZE + TAG_SIZE:
            raise DecryptError("too short")
        nonce = sealed[:NONCE_SIZE]
        body = sealed[NONCE_SIZE:]
        for cipher in self._ciphers:
            try:
                return nonce, cipher.decrypt(nonce, body, aad)
            except InvalidTag:
                continue
        raise DecryptError("no key authenticates this message")
