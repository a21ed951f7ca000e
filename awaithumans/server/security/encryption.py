"""Authenticated encryption of stored payloads (AES-256-GCM).

A sealed blob is ``version (1 byte) || key id (8 bytes) || nonce (12 bytes) || ciphertext ||
tag (16 bytes)``. The key id names the root secret that sealed it (``KeyRing.key_id``), so
during a key rotation each blob is opened with the right key at once, and
``awaithumans rotate-key`` can tell which rows still need re-sealing without decrypting
them. The header is authenticated, so neither byte can be flipped to confuse a reader.
Version 1 blobs (no key id, written before rotation existed) still open: each known key is
tried in turn, current first.

Nonces are random. With 96-bit random nonces one key stays safe for about 2**32 messages,
far beyond what one deployment stores between key rotations.
"""

from __future__ import annotations

import json
import secrets
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from awaithumans.server.security.keys import KEY_ID_BYTES, KeyRing

VERSION: Final = 2
LEGACY_VERSION: Final = 1
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16

_LEGACY_HEADER: Final = bytes([LEGACY_VERSION])
HEADER_BYTES: Final = 1 + KEY_ID_BYTES


class DecryptionError(Exception):
    """A blob could not be opened: tampered with, truncated, or sealed under another key."""


class Sealer:
    """Seals with the key ring's current ``payload-encryption`` key; opens with any of its keys.

    One instance is meant to live for the whole process: the AES key schedule is computed
    once in each :class:`AESGCM` object and reused for every call, which matters when
    thousands of task payloads are sealed or opened per second. Instances are thread-safe.
    """

    __slots__ = ("_aead", "_by_id", "_header", "_in_order")

    def __init__(self, keyring: KeyRing) -> None:
        """Create a sealer.

        Args:
            keyring: The server's key ring; its ``payload-encryption`` keys are used (the
                current one seals; the previous roots' still open what they sealed).
        """
        rings = (keyring, *keyring.previous)
        self._in_order = tuple(AESGCM(ring.derive("payload-encryption")) for ring in rings)
        self._by_id = {ring.key_id: aead for ring, aead in zip(rings, self._in_order, strict=True)}
        self._aead = self._in_order[0]
        self._header = bytes([VERSION]) + keyring.key_id

    def seal(self, plaintext: bytes, *, aad: bytes = b"") -> bytes:
        """Encrypt and authenticate ``plaintext`` under the current key.

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
        return self._header + nonce + self._aead.encrypt(nonce, plaintext, self._header + aad)

    def is_current(self, blob: bytes) -> bool:
        """Whether ``blob`` is sealed under the current key (nothing to re-seal)."""
        return blob[:HEADER_BYTES] == self._header

    def open(self, blob: bytes, *, aad: bytes = b"") -> bytes:
        """Authenticate and decrypt a blob made by :meth:`seal`.

        Args:
            blob: The sealed blob.
            aad: The associated data given when sealing.

        Returns:
            The original plaintext.

        Raises:
            DecryptionError: If the blob is malformed, of an unknown version, modified, was
                sealed with a key this ring does not hold, or ``aad`` does not match.
        """
        if blob[:1] == _LEGACY_HEADER:
            return self._open_legacy(blob, aad)
        if len(blob) < HEADER_BYTES + NONCE_BYTES + TAG_BYTES:
            raise DecryptionError("sealed blob is too short")
        if blob[0] != VERSION:
            raise DecryptionError(f"unsupported sealed blob version {blob[0]}")
        aead = self._by_id.get(blob[1:HEADER_BYTES])
        if aead is None:
            raise DecryptionError(
                "sealed under a key this server does not have (was it rotated away before"
                " `awaithumans rotate-key` finished?)"
            )
        nonce = blob[HEADER_BYTES : HEADER_BYTES + NONCE_BYTES]
        try:
            return aead.decrypt(
                nonce, blob[HEADER_BYTES + NONCE_BYTES :], blob[:HEADER_BYTES] + aad
            )
        except InvalidTag:
            # `from None`: the library's exception adds nothing and clutters logs.
            raise DecryptionError("sealed blob failed authentication") from None

    def _open_legacy(self, blob: bytes, aad: bytes) -> bytes:
        if len(blob) < 1 + NONCE_BYTES + TAG_BYTES:
            raise DecryptionError("sealed blob is too short")
        nonce = blob[1 : 1 + NONCE_BYTES]
        for aead in self._in_order:
            try:
                return aead.decrypt(nonce, blob[1 + NONCE_BYTES :], _LEGACY_HEADER + aad)
            except InvalidTag:
                continue
        raise DecryptionError("sealed blob failed authentication")

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
