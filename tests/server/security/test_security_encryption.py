"""AES-GCM sealing: roundtrips, tamper detection, key and aad binding."""

from __future__ import annotations

import pytest

from awaithumans.server.security import DecryptionError, KeyRing, Sealer


@pytest.fixture
def sealer() -> Sealer:
    return Sealer(KeyRing(bytes(range(32))))


def test_roundtrip_and_layout(sealer: Sealer) -> None:
    blob = sealer.seal(b"hello", aad=b"task-1")
    assert blob[0] == 2
    assert blob[1:9] == KeyRing(bytes(range(32))).key_id
    assert len(blob) == 1 + 8 + 12 + len(b"hello") + 16
    assert sealer.open(blob, aad=b"task-1") == b"hello"
    assert sealer.is_current(blob)


def test_empty_plaintext(sealer: Sealer) -> None:
    assert sealer.open(sealer.seal(b"")) == b""


def test_nonces_differ(sealer: Sealer) -> None:
    assert sealer.seal(b"same") != sealer.seal(b"same")


def test_every_flipped_byte_is_detected(sealer: Sealer) -> None:
    blob = sealer.seal(b"payload", aad=b"a")
    for index in range(len(blob)):
        tampered = bytearray(blob)
        tampered[index] ^= 0x01
        with pytest.raises(DecryptionError):
            sealer.open(bytes(tampered), aad=b"a")


def test_truncated_and_garbage_blobs(sealer: Sealer) -> None:
    blob = sealer.seal(b"payload")
    for bad in (b"", b"\x01", blob[:-1], blob[: 1 + 8 + 12 + 16 - 1], b"\x03" + blob[1:]):
        with pytest.raises(DecryptionError):
            sealer.open(bad)


def test_wrong_key_fails(sealer: Sealer) -> None:
    other = Sealer(KeyRing(bytes(32)))
    with pytest.raises(DecryptionError):
        other.open(sealer.seal(b"secret"))


def test_aad_must_match(sealer: Sealer) -> None:
    blob = sealer.seal(b"secret", aad=b"task-1")
    with pytest.raises(DecryptionError):
        sealer.open(blob, aad=b"task-2")
    with pytest.raises(DecryptionError):
        sealer.open(blob)


def test_uses_the_payload_encryption_key_not_the_root() -> None:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    ring = KeyRing(bytes(range(32)))
    blob = Sealer(ring).seal(b"x")
    nonce, body = blob[9:21], blob[21:]
    derived = AESGCM(ring.derive("payload-encryption"))
    assert derived.decrypt(nonce, body, blob[:9]) == b"x"


def test_json_roundtrip_is_compact(sealer: Sealer) -> None:
    value = {"name": "Zoë", "answer": [1, 2.5, None, True], "nested": {"k": "v"}}
    blob = sealer.seal_json(value, b"row")
    assert sealer.open_json(blob, b"row") == value
    assert sealer.open(blob, aad=b"row") == (
        b'{"name":"Zo\xc3\xab","answer":[1,2.5,null,true],"nested":{"k":"v"}}'
    )
    with pytest.raises(DecryptionError):
        sealer.open_json(blob, b"other-row")


def test_json_rejects_unserialisable(sealer: Sealer) -> None:
    with pytest.raises(TypeError):
        sealer.seal_json({"x": object()})


def test_repr_hides_key(sealer: Sealer) -> None:
    assert "redacted" in repr(sealer)


# --- rotation -------------------------------------------------------------------------------

OLD, NEW, OTHER = bytes(range(32)), bytes(range(1, 33)), bytes(32)


def _legacy_seal(root: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """A blob as the server wrote it before blobs carried a key id (version 1)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = bytes(12)
    key = KeyRing(root).derive("payload-encryption")
    return b"\x01" + nonce + AESGCM(key).encrypt(nonce, plaintext, b"\x01" + aad)


def test_a_rotated_ring_opens_what_the_old_key_sealed_and_seals_with_the_new() -> None:
    old_blob = Sealer(KeyRing(OLD)).seal(b"before", aad=b"t")
    rotated = Sealer(KeyRing(NEW, previous=[OLD]))
    assert rotated.open(old_blob, aad=b"t") == b"before"
    assert not rotated.is_current(old_blob)
    new_blob = rotated.seal(b"after", aad=b"t")
    assert rotated.is_current(new_blob)
    assert new_blob[1:9] == KeyRing(NEW).key_id
    # The old key alone cannot open what the new one sealed; nor can a stranger's ring.
    with pytest.raises(DecryptionError):
        Sealer(KeyRing(OLD)).open(new_blob, aad=b"t")
    with pytest.raises(DecryptionError, match="does not have"):
        Sealer(KeyRing(OTHER)).open(old_blob, aad=b"t")


def test_legacy_blobs_open_with_whichever_key_sealed_them() -> None:
    for root in (OLD, NEW):
        blob = _legacy_seal(root, b"v1", b"row")
        sealer = Sealer(KeyRing(NEW, previous=[OLD]))
        assert sealer.open(blob, aad=b"row") == b"v1"
        assert not sealer.is_current(blob)
    with pytest.raises(DecryptionError):
        Sealer(KeyRing(OTHER)).open(_legacy_seal(OLD, b"v1", b"row"), aad=b"row")
    with pytest.raises(DecryptionError):
        Sealer(KeyRing(OLD)).open(_legacy_seal(OLD, b"v1", b"row"), aad=b"other")


def test_key_ids_name_roots_without_revealing_them() -> None:
    assert KeyRing(OLD).key_id != KeyRing(NEW).key_id
    assert len(KeyRing(OLD).key_id) == 8
    assert KeyRing(OLD).key_id not in OLD
    ring = KeyRing(NEW, previous=[OLD, NEW])  # the current root listed again is ignored
    assert [r.key_id for r in ring.previous] == [KeyRing(OLD).key_id]
    assert ring.verifying_keys("session") == (
        KeyRing(NEW).derive("session"),
        KeyRing(OLD).derive("session"),
    )
