"""Authenticated encryption of stored payloads (AES-256-GCM).

A sealed blob is ``version (1 byte) || nonce (12 bytes) || ciphertext || tag (16 bytes)``.
The version byte leaves room to change algorithm or key later without guessing what an old
row holds; it is also authenticated, so it cannot be flipped to confuse a future reader.

Nonces are random. With 96-bit random nonces one key stays safe for about 2**32 messages,
far beyond what one deployment stores between key rotations.
"""

from __future__ import annotations

import json
import secrets
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from awaithumans.server.security.keys import KeyRing

VERSION: Final = 1
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16

_HEADER: Final = bytes([VERSION])
_MIN_BLOB: Final = 1 + NONCE_BYTES + TAG_BYTES


class DecryptionError(Exception):
    """A blob could not be opened: tampered with, truncated, or sealed under another key."""


class Sealer:
    """Seals and opens blobs with the key ring's ``payload-encryption`` key.

    One instance is meant to live for the whole process: the AES key schedule is computed
    once in the :class:`AESGCM` object and reused for every call, which matters when
    thousands of task payloads are sealed or opened per second. Instances are thread-safe.
    """

    __slots__ = ("_aead",)

    def __init__(self, keyring: KeyRing) -> None:
        """Create a sealer.

        Args:
            keyring: The server's key ring; only its ``payload-encryption`` key is used.
        """
        self._aead = AESGCM(keyring.derive("payload-encryption"))

    def seal(self, plaintext: bytes, *, aad: bytes = b"") -> bytes:
        """Encrypt and authenticate ``plaintext``.

        Args:
            plaintext: The bytes to protect.
            aad: Associated data that is authenticated but not stored, e.g. the task id.
                Binding a payload to its row stops a database writer from swapping the
                encrypted payloads of two rows; the same ``aad`` must be given to
                :meth:`open`.

        Returns:
            The versioned blob.
        """
        nonce = secrets.token_bytes(NONCE_BYTES)
        return _HEADER + nonce + self._aead.encrypt(nonce, plaintext, _HEADER + aad)

    def open(self, blob: bytes, *, aad: bytes = b"") -> bytes:
        """Authenticate and decrypt a blob made by :meth:`seal`.

        Args:
            blob: The sealed blob.
            aad: The associated data given when sealing.

        Returns:
            The original plaintext.

        Raises:
            DecryptionError: If the blob is malformed, of an unknown version, modified, was
                sealed with a different key, or ``aad`` does not match.
        """
        if len(blob) < _MIN_BLOB:
            raise DecryptionError("sealed blob is too short")
        if blob[0] != VERSION:
            raise DecryptionError(f"unsupported sealed blob version {blob[0]}")
        nonce = blob[1 : 1 + NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, blob[1 + NONCE_BYTES :], _HEADER + aad)
        except InvalidTag:
            # `from None`: the library's exception adds nothing and clutters logs.
            raise DecryptionError("sealed blob failed authentication") from None

    def seal_json(self, obj: Any, aad: bytes = b"") -> bytes:
        """Serialise ``obj`` as compact JSON and seal it.

        Args:
            obj: Any JSON-serialisable value.
            aad: Associated data, as for :meth:`seal`.

        Returns:
            The versioned blob.

        Raises:
            TypeError: If ``obj`` is not JSON-serialisable.
        """
        text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        return self.seal(text.encode("utf-8"), aad=aad)

    def open_json(self, blob: bytes, aad: bytes = b"") -> Any:
        """Open a blob made by :meth:`seal_json` and parse its JSON.

        Args:
            blob: The sealed blob.
            aad: The associated data given when sealing.

        Returns:
            The decoded JSON value.

        Raises:
            DecryptionError: If the blob cannot be opened (see :meth:`open`).
        """
        return json.loads(self.open(blob, aad=aad))

    def __repr__(self) -> str:
        return "Sealer(<redacted>)"
