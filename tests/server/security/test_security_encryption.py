"""AES-GCM sealing: roundtrips, tamper detection, key and aad binding."""

from __future__ import annotations

import pytest

from awaithumans.server.security import DecryptionError, KeyRing, Sealer


@pytest.fixture
def sealer() -> Sealer:
    return Sealer(KeyRing(bytes(range(32))))


def test_roundtrip_and_layout(sealer: Sealer) -> None:
    blob = sealer.seal(b"hello", aad=b"task-1")
    assert blob[0] == 1
    assert len(blob) == 1 + 12 + len(b"hello") + 16
    assert sealer.open(blob, aad=b"task-1") == b"hello"


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
    for bad in (b"", b"\x01", blob[:-1], blob[: 1 + 12 + 16 - 1], b"\x02" + blob[1:]):
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
    nonce, body = blob[1:13], blob[13:]
    derived = AESGCM(ring.derive("payload-encryption"))
    assert derived.decrypt(nonce, body, b"\x01") == b"x"


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
