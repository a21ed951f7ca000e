"""Root key parsing and per-purpose derivation."""

from __future__ import annotations

import base64

import pytest

from awaithumans.server.security import (
    PURPOSES,
    KeyRing,
    generate_payload_key,
    parse_payload_key,
)

RAW = bytes(range(32))


def test_generated_key_parses_to_32_bytes() -> None:
    text = generate_payload_key()
    assert len(text) == 43
    assert len(parse_payload_key(text)) == 32
    assert generate_payload_key() != text


@pytest.mark.parametrize(
    "text",
    [
        base64.urlsafe_b64encode(RAW).decode(),  # 44 chars, padded
        base64.urlsafe_b64encode(RAW).decode().rstrip("="),  # 43 chars
        base64.b64encode(RAW).decode(),  # standard alphabet, as openssl prints it
        RAW.hex(),
        RAW.hex().upper(),
        f"  {RAW.hex()}\n",
    ],
)
def test_accepted_formats(text: str) -> None:
    assert parse_payload_key(text) == RAW


@pytest.mark.parametrize(
    "text",
    [
        "",
        "short",
        RAW.hex()[:-2],  # 31 bytes of hex
        RAW.hex() + "00",  # 33 bytes of hex
        "g" * 64,  # right length, not hex, not base64 of 32 bytes
        base64.urlsafe_b64encode(bytes(31)).decode(),
        base64.urlsafe_b64encode(bytes(33)).decode(),
        "!" * 43,
    ],
)
def test_rejected_formats_explain_the_format(text: str) -> None:
    with pytest.raises(ValueError, match="AWAITHUMANS_PAYLOAD_KEY must be 32 random bytes"):
        parse_payload_key(text)


def test_error_does_not_echo_the_secret() -> None:
    secret = "s3cr3t-value-that-must-not-leak"
    with pytest.raises(ValueError, match="invalid payload key") as info:
        parse_payload_key(secret)
    assert secret not in str(info.value)


def test_derivation_is_stable_distinct_and_root_dependent() -> None:
    ring = KeyRing(RAW)
    keys = {purpose: ring.derive(purpose) for purpose in sorted(PURPOSES)}  # type: ignore[arg-type]
    assert len(set(keys.values())) == len(PURPOSES)
    assert all(len(key) == 32 for key in keys.values())
    assert KeyRing(RAW).derive("session") == keys["session"]
    assert ring.derive("session") is ring.derive("session")  # cached
    assert KeyRing(bytes(32)).derive("session") != keys["session"]
    assert RAW not in keys.values()


def test_derivation_matches_hkdf_definition() -> None:
    # Pin the derivation so a refactor cannot silently change every key in production.
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    expected = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"awaithumans:csrf"
    ).derive(RAW)
    assert KeyRing(RAW).derive("csrf") == expected


def test_unknown_purpose_and_bad_root_are_rejected() -> None:
    ring = KeyRing(RAW)
    with pytest.raises(ValueError, match="unknown key purpose"):
        ring.derive("sesion")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="32 bytes"):
        KeyRing(b"too short")


def test_from_text_and_repr_hides_secret() -> None:
    ring = KeyRing.from_text(RAW.hex())
    assert ring.derive("webhook") == KeyRing(RAW).derive("webhook")
    assert RAW.hex() not in repr(ring)
