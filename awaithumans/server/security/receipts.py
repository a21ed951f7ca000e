"""Signing decision receipts, and the hash that chains each task's audit trail.

**Receipts.** The signing key is Ed25519, its 32-byte seed derived from the payload key
(``KeyRing.derive("receipt-signing")``): no new secret to store, and it rotates with the
payload key. Each previous payload key gives a previous public key, still listed (``GET
/api/receipts/public-keys``) so receipts signed before a rotation keep verifying. The
canonical form, the hashes and the check are in ``awaithumans/core/_receipts.py``, shared
with the SDK.

**The audit chain.** Each audit row's ``chain_hash`` is ``sha256(previous + canonical JSON
of the row's fields)``, where ``previous`` is the task's previous row's hash ("" for its
first), and the task keeps the newest in ``audit_head``: an edited, inserted or deleted
row, or a dropped newest one, no longer hashes to what follows it.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from awaithumans.core._receipts import (
    ALGORITHM,
    RECEIPT_VERSION,
    b64url,
    canonical_bytes,
    key_id_of,
    sha256_of,
    signed_bytes,
)
from awaithumans.server.security.keys import KeyRing

PURPOSE: Final = "receipt-signing"

#: The audit row's fields its chain hash covers: all of them but the row's id (assigned by
#: the database after the hash is made; the order of rows is in the chain itself).
AUDIT_CHAIN_FIELDS: Final = (
    "task_id",
    "at",
    "action",
    "from_status",
    "to_status",
    "actor_type",
    "actor_id",
    "actor_label",
    "channel",
    "detail",
)


def format_at(at: datetime) -> str:
    """A UTC time as receipts and the chain write it: microseconds, always, and ``Z``."""
    if at.tzinfo is None:
        raise ValueError("naive datetime")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def chain_hash(previous: str | None, row: Mapping[str, Any]) -> str:
    """The hash of one audit row, chained to the task's previous row's (None: the first)."""
    fields = {name: row.get(name) for name in AUDIT_CHAIN_FIELDS}
    at = fields["at"]
    if isinstance(at, datetime):
        fields["at"] = format_at(at)
    return hashlib.sha256((previous or "").encode("ascii") + canonical_bytes(fields)).hexdigest()


@functools.lru_cache(maxsize=16)
def _private_key(seed: bytes) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(seed)


def _public_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True, slots=True)
class PublicKey:
    """One receipt key as ``GET /api/receipts/public-keys`` lists it."""

    key_id: str
    public_key: str
    current: bool


@functools.lru_cache(maxsize=8)
def signer_for(ring: KeyRing) -> ReceiptSigner:
    """The signer of a key ring, made once (a ring lives as long as its server context)."""
    return ReceiptSigner(ring)


class ReceiptSigner:
    """Signs receipts with the current key ring's Ed25519 key."""

    __slots__ = ("_key", "_key_id", "_ring")

    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring
        self._key = _private_key(ring.derive(PURPOSE))
        self._key_id = key_id_of(_public_bytes(self._key))

    @property
    def key_id(self) -> str:
        return self._key_id

    def public_key(self) -> str:
        """The current public key, as ``awaithumans receipt-key`` prints it."""
        return b64url(_public_bytes(self._key))

    def public_keys(self) -> list[PublicKey]:
        """The current key, then one per previous payload key (newest first)."""
        keys = [PublicKey(self._key_id, self.public_key(), current=True)]
        for old in self._ring.previous:
            raw = _public_bytes(_private_key(old.derive(PURPOSE)))
            keys.append(PublicKey(key_id_of(raw), b64url(raw), current=False))
        return keys

    def sign(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """``fields`` with the key id, algorithm and signature added."""
        body = {**fields, "key_id": self._key_id, "algorithm": ALGORITHM}
        signature = self._key.sign(signed_bytes(body))
        return {**body, "signature": b64url(signature)}


def decision_receipt(
    signer: ReceiptSigner,
    *,
    task_id: str,
    task: str,
    shown: str,
    response: Any,
    answered_by: Mapping[str, str | None],
    channel: str,
    status: str,
    at: datetime,
) -> dict[str, Any]:
    """A signed version-1 receipt of one final answer (``shown``: :func:`shown_sha256` of
    the payload, form and response schema the person was shown)."""
    return signer.sign(
        {
            "version": RECEIPT_VERSION,
            "task_id": task_id,
            "task": task,
            "shown_sha256": shown,
            "response_sha256": sha256_of(response),
            "answered_by": {
                "id": answered_by.get("id"),
                "email": answered_by.get("email"),
                "label": answered_by.get("label"),
            },
            "channel": channel,
            "status": status,
            "at": format_at(at),
        }
    )
