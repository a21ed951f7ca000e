"""Decision receipts checked offline: the server's signer against ``verify_receipt``.

No server and no database: a receipt made by ``security/receipts.py`` from a real key ring
verifies with its public key in every accepted form, and any change to any field, to the
signature, or a key that did not sign it is refused with the reason that says which.
"""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key

from awaithumans import ErrorCode, ReceiptInvalidError, VerifiedReceipt, verify_receipt
from awaithumans.core._receipts import canonical_bytes, sha256_of, shown_sha256
from awaithumans.server.security import KeyRing, generate_payload_key
from awaithumans.server.security.receipts import (
    chain_hash,
    decision_receipt,
    format_at,
    signer_for,
)

PAYLOAD = {"order_id": "ord_7", "amount_usd": 42.0, "note": "café ✓"}
FORM: dict[str, Any] = {"fields": [{"name": "approved", "kind": "switch"}]}
SCHEMA: dict[str, Any] = {"type": "object", "properties": {"approved": {"type": "boolean"}}}
ANSWER = {"approved": True}
AT = datetime(2026, 12, 6, 11, 0, 0, 123456, tzinfo=UTC)


def make(ring: KeyRing, **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "task_id": "tsk_0123456789abcdef01234567",
        "task": "Refund $42 for ord_7?",
        "shown": shown_sha256(PAYLOAD, FORM, SCHEMA),
        "response": ANSWER,
        "answered_by": {"id": "usr_ann", "email": "ann@acme.test", "label": "Ann"},
        "channel": "dashboard",
        "status": "completed",
        "at": AT,
    }
    values.update(changes)
    return decision_receipt(signer_for(ring), **values)


@pytest.fixture(scope="module")
def ring() -> KeyRing:
    return KeyRing.from_text(generate_payload_key())


def test_a_receipt_verifies_and_says_what_it_proves(ring: KeyRing) -> None:
    receipt = make(ring)
    key = signer_for(ring).public_key()
    verified = verify_receipt(receipt, key)
    assert verified == VerifiedReceipt(
        task_id="tsk_0123456789abcdef01234567",
        task="Refund $42 for ord_7?",
        status="completed",
        answered_by_id="usr_ann",
        answered_by_email="ann@acme.test",
        answered_by_label="Ann",
        channel="dashboard",
        at=AT,
        shown_sha256=shown_sha256(PAYLOAD, FORM, SCHEMA),
        response_sha256=sha256_of(ANSWER),
        key_id=signer_for(ring).key_id,
    )
    assert receipt["at"] == "2026-12-06T11:00:00.123456Z"
    assert receipt["key_id"] == signer_for(ring).key_id
    assert len(key) == 43
    # JSON text (as a file holds it) verifies the same.
    assert verify_receipt(json.dumps(receipt), key) == verified
    assert "ann@acme.test via dashboard" in verified.summary()


def test_every_key_form_is_accepted(ring: KeyRing) -> None:
    receipt = make(ring)
    text = signer_for(ring).public_key()
    raw = base64.urlsafe_b64decode(text + "=")
    pem = (
        load_pem_public_key(_pem(raw)).public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    ).decode()
    forms: list[Any] = [
        text,
        raw,
        raw.hex(),
        base64.b64encode(raw).decode(),  # the standard alphabet, padded
        pem,
        [raw],
        f"{signer_for(KeyRing.from_text(generate_payload_key())).public_key()}, {text}",
    ]
    for form in forms:
        assert verify_receipt(receipt, form).key_id == receipt["key_id"], form


def _pem(raw: bytes) -> bytes:
    # SubjectPublicKeyInfo of an Ed25519 key: a fixed 12-byte prefix, then the 32 bytes.
    der = bytes.fromhex("302a300506032b6570032100") + raw
    body = base64.encodebytes(der).decode().replace("\n", "")
    return f"-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n".encode()


TAMPERED: list[tuple[str, Any]] = [
    ("task_id", "tsk_ffffffffffffffffffffffff"),
    ("task", "Refund $4,200 for ord_7?"),
    ("shown_sha256", "0" * 64),
    ("response_sha256", sha256_of({"approved": False})),
    ("answered_by", {"id": "usr_bob", "email": "bob@acme.test", "label": "Bob"}),
    ("channel", "api"),
    ("status", "cancelled"),
    ("at", "2026-12-07T11:00:00.123456Z"),
]


@pytest.mark.parametrize(("name", "value"), TAMPERED, ids=[n for n, _ in TAMPERED])
def test_a_changed_field_is_refused(ring: KeyRing, name: str, value: Any) -> None:
    receipt = make(ring)
    receipt[name] = value
    with pytest.raises(ReceiptInvalidError) as refused:
        verify_receipt(receipt, signer_for(ring).public_key())
    assert refused.value.reason == "signature"
    assert refused.value.code == ErrorCode.RECEIPT_INVALID
    assert refused.value.task_id == receipt["task_id"]


def test_a_changed_signature_or_a_nested_value_is_refused(ring: KeyRing) -> None:
    key = signer_for(ring).public_key()
    receipt = make(ring)
    flipped = bytearray(base64.urlsafe_b64decode(receipt["signature"] + "=="))
    flipped[10] ^= 1
    receipt["signature"] = base64.urlsafe_b64encode(bytes(flipped)).rstrip(b"=").decode()
    with pytest.raises(ReceiptInvalidError) as refused:
        verify_receipt(receipt, key)
    assert refused.value.reason == "signature"
    nested = make(ring)
    nested["answered_by"]["email"] = "mallory@acme.test"
    with pytest.raises(ReceiptInvalidError) as refused:
        verify_receipt(nested, key)
    assert refused.value.reason == "signature"


def test_another_servers_key_is_refused_by_id(ring: KeyRing) -> None:
    receipt = make(ring)
    other = signer_for(KeyRing.from_text(generate_payload_key()))
    with pytest.raises(ReceiptInvalidError) as refused:
        verify_receipt(receipt, other.public_key())
    assert refused.value.reason == "unknown_key"
    assert receipt["key_id"] in refused.value.message
    # A forger who also rewrites the key id to the verifier's still fails the signature.
    forged = {**receipt, "key_id": other.key_id}
    with pytest.raises(ReceiptInvalidError) as refused:
        verify_receipt(forged, other.public_key())
    assert refused.value.reason == "signature"


def test_a_previous_payload_key_still_verifies_what_it_signed() -> None:
    old, new = generate_payload_key(), generate_payload_key()
    before = make(KeyRing.from_text(old))
    rotated = signer_for(KeyRing.from_text(new, [old]))
    listed = rotated.public_keys()
    assert [k.current for k in listed] == [True, False]
    assert listed[1].public_key == signer_for(KeyRing.from_text(old)).public_key()
    assert listed[0].key_id != listed[1].key_id
    every = [k.public_key for k in listed]
    assert verify_receipt(before, every).key_id == listed[1].key_id
    after = make(KeyRing.from_text(new, [old]))
    assert verify_receipt(after, every).key_id == listed[0].key_id


MALFORMED: list[tuple[str, Any]] = [
    ("not JSON", "{nope"),
    ("a list", [1, 2]),
    ("version 2", {"version": 2}),
    ("a field missing", {"signature": None}),
    ("a field of the wrong type", {"answered_by": "ann"}),
    ("a bool for the version", {"version": True}),
    ("an unknown field", {"extra": 1}),
    ("another algorithm", {"algorithm": "RS256"}),
    ("a short hash", {"shown_sha256": "abc"}),
    ("a short signature", {"signature": "c2lnbmF0dXJl"}),
    ("a time without zone", {"at": "2026-12-06T11:00:00"}),
]


@pytest.mark.parametrize(("why", "change"), MALFORMED, ids=[w for w, _ in MALFORMED])
def test_a_malformed_receipt_is_refused_as_such(ring: KeyRing, why: str, change: Any) -> None:
    receipt: Any = change
    if isinstance(change, dict):
        receipt = copy.deepcopy(make(ring))
        for name, value in change.items():
            if value is None:
                del receipt[name]
            else:
                receipt[name] = value
    with pytest.raises(ReceiptInvalidError) as refused:
        verify_receipt(receipt, signer_for(ring).public_key())
    assert refused.value.reason == "malformed", why


@pytest.mark.parametrize("key", ["", "not-a-key", "ab" * 31, "A" * 42])
def test_a_bad_public_key_is_named(ring: KeyRing, key: str) -> None:
    with pytest.raises(ReceiptInvalidError) as refused:
        verify_receipt(make(ring), key)
    assert refused.value.reason == "public_key"


def test_canonical_form_is_stable_across_a_json_round_trip() -> None:
    # PostgreSQL's JSONB hands 1e20 back as an integer, 2.0 as 2.0: one form for both.
    assert canonical_bytes({"b": 1e20, "a": [2.0, 0.5]}) == canonical_bytes(
        {"a": [2, 0.5], "b": 100000000000000000000}
    )
    assert canonical_bytes({"é": "✓"}) == '{"é":"✓"}'.encode()
    # A lone surrogate does not make the hash (and the write it is part of) fail.
    assert canonical_bytes({"reason": "\ud800"}) == b'{"reason":"\xed\xa0\x80"}'


def test_the_chain_hash_covers_every_field_and_the_previous_hash() -> None:
    row: dict[str, Any] = {
        "task_id": "tsk_1",
        "at": AT,
        "action": "completed",
        "from_status": "created",
        "to_status": "completed",
        "actor_type": "user",
        "actor_id": "usr_ann",
        "actor_label": "ann@acme.test",
        "channel": "dashboard",
        "detail": {"fields": ["approved"]},
    }
    first = chain_hash(None, row)
    assert first == chain_hash("", row)
    # The time written as text (an export's row) hashes like the datetime.
    assert chain_hash(None, {**row, "at": format_at(AT)}) == first
    assert chain_hash(first, row) != first
    for name, value in [
        ("task_id", "tsk_2"),
        ("at", AT.replace(microsecond=1)),
        ("action", "cancelled"),
        ("from_status", None),
        ("to_status", "cancelled"),
        ("actor_type", "admin"),
        ("actor_id", "usr_bob"),
        ("actor_label", "bob@acme.test"),
        ("channel", "api"),
        ("detail", None),
    ]:
        assert chain_hash(None, {**row, name: value}) != first, name
    # The row's id is not covered (the database assigns it after the hash is made).
    assert chain_hash(None, {**row, "id": 7}) == first
