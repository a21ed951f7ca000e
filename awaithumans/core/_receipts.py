"""Decision receipts, checked offline: ``verify_receipt(receipt, public_key)``.

A receipt is the server's signed statement of one final answer: which task, a hash of what
the person was shown (payload, form and response schema) and of the answer, who answered,
through which channel and when. The server signs it with an Ed25519 key derived from its
payload key (``server/security/receipts.py``); anyone holding the public key (``GET
/api/receipts/public-keys``, ``awaithumans receipt-key``) can check it, without the server.

The canonical form and the hashes are defined here, once, for both sides: the server signs
and hashes with these functions and the SDK checks with them. Only the standard library is
needed for that; ``cryptography`` (the ``receipts`` extra) is imported when a signature is
checked, so ``import awaithumans`` stays light.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from awaithumans.core._errors import MissingExtraError, ReceiptInvalidError
from awaithumans.core._wire import CreateTaskRequest, PollResponse

RECEIPT_VERSION: Final = 1
ALGORITHM: Final = "Ed25519"
#: The environment variable ``await_human`` reads the server's public key(s) from.
PUBLIC_KEY_ENV: Final = "AWAITHUMANS_RECEIPT_PUBLIC_KEY"

# Every field a version-1 receipt has, and the type each must be.
_FIELDS: Final[dict[str, type | tuple[type, ...]]] = {
    "version": int,
    "task_id": str,
    "task": str,
    "shown_sha256": str,
    "response_sha256": str,
    "answered_by": dict,
    "channel": str,
    "status": str,
    "at": str,
    "key_id": str,
    "algorithm": str,
    "signature": str,
}
_SHA256_HEX: Final = re.compile(r"[0-9a-f]{64}")
_B64: Final = re.compile(r"[A-Za-z0-9_\-+/]+=*")
_HEX_KEY: Final = re.compile(r"[0-9a-fA-F]{64}")
PUBLIC_KEY_BYTES: Final = 32
SIGNATURE_BYTES: Final = 64


def _plain(value: Any) -> Any:
    """The value as the canonical form writes it: a float with no fraction as an integer.

    PostgreSQL's JSONB keeps numbers as decimals and hands ``1e20`` back as
    ``100000000000000000000``; writing both the same way keeps a hash stable across a
    round trip through the database. They are the same number in JSON either way.
    """
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def canonical_bytes(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8, integral floats as integers: what is hashed and signed.

    A lone surrogate (which no JSON text should carry, but a parser may hand over) is
    written as its code unit (``surrogatepass``) rather than failing the write it is part of.
    """
    text = json.dumps(
        _plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8", "surrogatepass")


def sha256_of(value: Any) -> str:
    """The hex SHA-256 of ``value``'s canonical form."""
    return hashlib.sha256(canonical_bytes(value)).hexdigest()


def shown_sha256(
    payload: Any, form_definition: Any, response_schema: Mapping[str, Any] | None
) -> str:
    """The hash of what a person was shown: the payload, the form and the response schema."""
    return sha256_of(
        {"payload": payload, "form_definition": form_definition, "response_schema": response_schema}
    )


def signed_bytes(receipt: Mapping[str, Any]) -> bytes:
    """What the signature covers: every field but the signature, canonically."""
    return canonical_bytes({k: v for k, v in receipt.items() if k != "signature"})


def key_id_of(public_key: bytes) -> str:
    """A receipt key's public name: the first 16 hex digits of the SHA-256 of its 32 bytes."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def b64url(data: bytes) -> str:
    """Unpadded base64url: how public keys (43 characters) and signatures are written."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    normalized = text.rstrip("=").replace("+", "-").replace("/", "_")
    return base64.urlsafe_b64decode(normalized + "=" * (-len(normalized) % 4))


def parse_public_keys(keys: str | bytes | Sequence[str | bytes]) -> dict[str, bytes]:
    """The raw 32-byte public keys given, by key id.

    Args:
        keys: One key or several: raw 32 bytes; base64 (either alphabet, padded or not) or
            64 hex digits; a PEM ``PUBLIC KEY`` block; a string of several separated by
            commas or whitespace (the current key and previous ones, while rotating).

    Raises:
        ReceiptInvalidError: ``reason="public_key"``, naming the one that is not a key.
    """
    items: list[str | bytes]
    if isinstance(keys, bytes):
        items = [keys]
    elif isinstance(keys, str):
        items = list(_split_keys(keys))
    else:
        items = [part for k in keys for part in ([k] if isinstance(k, bytes) else _split_keys(k))]
    found: dict[str, bytes] = {}
    for item in items:
        raw = _one_key(item)
        found[key_id_of(raw)] = raw
    if not found:
        raise ReceiptInvalidError("No receipt public key was given.", reason="public_key")
    return found


def _split_keys(text: str) -> list[str]:
    end = "-----END PUBLIC KEY-----"
    if "-----BEGIN" in text:
        return [block + end for block in text.split(end) if block.strip()]
    return [part for part in re.split(r"[\s,]+", text) if part]


def _one_key(item: str | bytes) -> bytes:
    if isinstance(item, bytes):
        if len(item) == PUBLIC_KEY_BYTES:
            return item
        raise ReceiptInvalidError(
            f"A receipt public key is {PUBLIC_KEY_BYTES} raw bytes, not {len(item)}.",
            reason="public_key",
        )
    text = item.strip()
    if text.startswith("-----BEGIN"):
        return _pem_key(text)
    raw = b""
    if _HEX_KEY.fullmatch(text):
        raw = bytes.fromhex(text)
    elif _B64.fullmatch(text):
        try:
            raw = _b64decode(text)
        except (binascii.Error, ValueError):
            raw = b""
    if len(raw) != PUBLIC_KEY_BYTES:
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise ReceiptInvalidError(
            f"{shown!r} is not an Ed25519 public key: expected 32 bytes as base64url"
            " (43 characters, what `awaithumans receipt-key` prints), 64 hex digits or PEM.",
            reason="public_key",
        )
    return raw


def _pem_key(text: str) -> bytes:
    crypto = _crypto()
    try:
        key = crypto.serialization.load_pem_public_key(text.encode("ascii"))
    except (ValueError, TypeError, UnicodeEncodeError):
        key = None
    if not isinstance(key, crypto.Ed25519PublicKey):
        raise ReceiptInvalidError(
            "The PEM block is not an Ed25519 public key.", reason="public_key"
        )
    raw: bytes = key.public_bytes(
        crypto.serialization.Encoding.Raw, crypto.serialization.PublicFormat.Raw
    )
    return raw


class _Crypto:
    """The parts of ``cryptography`` used here, imported on first use."""

    def __init__(self) -> None:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        self.InvalidSignature = InvalidSignature
        self.serialization = serialization
        self.Ed25519PublicKey = Ed25519PublicKey


def _crypto() -> _Crypto:
    try:
        return _Crypto()
    except ImportError as exc:
        raise MissingExtraError("awaithumans.verify_receipt", "cryptography", "receipts") from exc


def require_crypto() -> None:
    """Fail now, not after a person answered, if ``cryptography`` is missing.

    Raises:
        MissingExtraError: naming the ``receipts`` extra.
    """
    _crypto()


@dataclass(frozen=True, slots=True)
class VerifiedReceipt:
    """A receipt whose signature checked out: what it proves.

    Attributes:
        task_id: The task.
        task: Its title, as the person saw it.
        status: The final status (``completed``).
        answered_by_id: The authenticated person (or credential) who answered.
        answered_by_email: Their email, when they have one.
        answered_by_label: Their name as the server shows it.
        channel: Where they answered: ``dashboard``, ``slack``, ``email`` or ``api``.
        at: When the answer became final (UTC).
        shown_sha256: Hash of the payload, form and response schema they were shown.
        response_sha256: Hash of the final answer.
        key_id: Which server key signed it.
    """

    task_id: str
    task: str
    status: str
    answered_by_id: str | None
    answered_by_email: str | None
    answered_by_label: str | None
    channel: str
    at: datetime
    shown_sha256: str
    response_sha256: str
    key_id: str

    def summary(self) -> str:
        """One line: task, who, how, when, key."""
        who = self.answered_by_email or self.answered_by_label or self.answered_by_id or "?"
        return (
            f"task {self.task_id} ({self.task!r}) {self.status} by {who} via {self.channel}"
            f" at {self.at.isoformat()}, signed by key {self.key_id}"
        )


def _receipt_object(receipt: Mapping[str, Any] | str | bytes) -> Mapping[str, Any]:
    if isinstance(receipt, str | bytes):
        try:
            receipt = json.loads(receipt)
        except ValueError as exc:
            raise ReceiptInvalidError(
                f"The receipt is not JSON ({exc}).", reason="malformed"
            ) from None
    if not isinstance(receipt, Mapping):
        raise ReceiptInvalidError("The receipt is not a JSON object.", reason="malformed")
    return receipt


def _fields(receipt: Mapping[str, Any]) -> tuple[str | None, bytes, datetime]:
    """Check the receipt's shape: (its task id, the signature's bytes, its time)."""
    named = receipt.get("task_id")
    task_id = named if isinstance(named, str) else None

    def malformed(why: str) -> ReceiptInvalidError:
        return ReceiptInvalidError(
            f"The receipt is malformed: {why}.", reason="malformed", task_id=task_id
        )

    if receipt.get("version") != RECEIPT_VERSION:
        raise malformed(f"version {receipt.get('version')!r}, this SDK reads {RECEIPT_VERSION}")
    for name, kind in _FIELDS.items():
        value = receipt.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise malformed(f"{name!r} is missing or not a {getattr(kind, '__name__', kind)}")
    extra = set(receipt) - set(_FIELDS)
    if extra:
        raise malformed(f"unknown field(s) {sorted(extra)}")
    if receipt["algorithm"] != ALGORITHM:
        raise malformed(f"algorithm {receipt['algorithm']!r}, not {ALGORITHM}")
    for name in ("shown_sha256", "response_sha256"):
        if not _SHA256_HEX.fullmatch(receipt[name]):
            raise malformed(f"{name!r} is not a SHA-256 in hex")
    try:
        signature = (
            _b64decode(receipt["signature"]) if _B64.fullmatch(receipt["signature"]) else b""
        )
    except (binascii.Error, ValueError):
        signature = b""
    if len(signature) != SIGNATURE_BYTES:
        raise malformed("the signature is not 64 bytes of base64url")
    try:
        at = datetime.fromisoformat(receipt["at"])
    except ValueError:
        raise malformed(f"'at' is not an ISO time: {receipt['at']!r}") from None
    if at.tzinfo is None:
        raise malformed("'at' has no time zone")
    return task_id, signature, at


def verify_receipt(
    receipt: Mapping[str, Any] | str | bytes, public_key: str | bytes | Sequence[str | bytes]
) -> VerifiedReceipt:
    """Check a decision receipt's signature, offline, and say what it proves.

    Args:
        receipt: The receipt (``task["receipt"]`` from the API), as a dict or JSON text.
        public_key: The server's public key, or several (the current and previous ones while
            the server's payload key rotates; the receipt's ``key_id`` picks one). See
            :func:`parse_public_keys` for the accepted forms.

    Returns:
        What the receipt states, now known to be signed by one of the keys.

    Raises:
        ReceiptInvalidError: The receipt is malformed, names a key not given, or its
            signature does not match (``reason`` says which).
        MissingExtraError: ``cryptography`` is not installed (``awaithumans[receipts]``).
    """
    crypto = _crypto()
    found = _receipt_object(receipt)
    task_id, signature, at = _fields(found)
    keys = parse_public_keys(public_key)
    raw = keys.get(found["key_id"])
    if raw is None:
        raise ReceiptInvalidError(
            f"The receipt was signed with key {found['key_id']}, which is not among the keys"
            f" given ({', '.join(sorted(keys))}).",
            reason="unknown_key",
            task_id=task_id,
        )
    try:
        crypto.Ed25519PublicKey.from_public_bytes(raw).verify(signature, signed_bytes(found))
    except crypto.InvalidSignature:
        raise ReceiptInvalidError(
            f"The receipt's signature does not match its content (key {found['key_id']}): it"
            " was altered after signing, or not signed by this server.",
            reason="signature",
            task_id=task_id,
        ) from None
    by = found["answered_by"]

    def text(name: str) -> str | None:
        value = by.get(name)
        return value if isinstance(value, str) else None

    return VerifiedReceipt(
        task_id=found["task_id"],
        task=found["task"],
        status=found["status"],
        answered_by_id=text("id"),
        answered_by_email=text("email"),
        answered_by_label=text("label"),
        channel=found["channel"],
        at=at,
        shown_sha256=found["shown_sha256"],
        response_sha256=found["response_sha256"],
        key_id=found["key_id"],
    )


def check_decision(
    receipt: Mapping[str, Any] | None,
    public_key: str | bytes | Sequence[str | bytes],
    *,
    task_id: str,
    response: Any,
    shown: str | None = None,
) -> VerifiedReceipt:
    """What ``await_human`` checks before it returns an answer: a receipt came, it is
    signed by the server, and it is for this task, this answer and (``shown``, the hash
    the SDK computed of what it sent) this question.

    Raises:
        ReceiptInvalidError: As :func:`verify_receipt`, or ``reason="missing"`` /
            ``"mismatch"``.
    """
    if receipt is None:
        raise ReceiptInvalidError(
            f"Task {task_id} was answered without a decision receipt, and a receipt public"
            f" key is configured ({PUBLIC_KEY_ENV}): the server does not sign its answers"
            " (an older version?).",
            reason="missing",
            task_id=task_id,
        )
    verified = verify_receipt(receipt, public_key)
    problems = []
    if verified.task_id != task_id:
        problems.append(f"it is for task {verified.task_id}")
    if verified.response_sha256 != sha256_of(response):
        problems.append("its answer hash is not that of the answer returned")
    if shown is not None and verified.shown_sha256 != shown:
        problems.append("what the person was shown is not what this call sent")
    if problems:
        raise ReceiptInvalidError(
            f"The receipt of task {task_id} is signed but does not match: {'; '.join(problems)}.",
            reason="mismatch",
            task_id=task_id,
        )
    return verified


#: What ``await_human`` runs on a completed poll before returning its answer.
DecisionCheck = Callable[[str, PollResponse], None]


def receipt_check(body: CreateTaskRequest) -> DecisionCheck | None:
    """The receipt check for one ``await_human`` call, when ``AWAITHUMANS_RECEIPT_PUBLIC_KEY``
    is set (else None): built before the task is created, so a malformed key or a missing
    ``cryptography`` fails the call at once, not after a person has answered.

    Raises:
        ReceiptInvalidError: The configured key is not an Ed25519 public key.
        MissingExtraError: ``cryptography`` is not installed (``awaithumans[receipts]``).
    """
    configured = os.environ.get(PUBLIC_KEY_ENV, "").strip()
    if not configured:
        return None
    require_crypto()
    keys = list(parse_public_keys(configured).values())
    # What this call sends is what the person must have been shown.
    shown = None
    if body.form_definition is not None:
        shown = shown_sha256(body.payload, body.form_definition, body.response_schema)

    def check(task_id: str, poll: PollResponse) -> None:
        check_decision(poll.receipt, keys, task_id=task_id, response=poll.response, shown=shown)

    return check
