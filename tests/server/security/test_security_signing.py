"""Signed tokens: roundtrips, tampering, wrong keys and expiry."""

from __future__ import annotations

import base64
import json
import time

import pytest

from awaithumans.server.security import (
    ExpiredTokenError,
    InvalidSignatureError,
    KeyRing,
    TokenError,
    sign,
    verify,
)

RING = KeyRing(bytes(range(32)))
KEY = RING.derive("session")
NOW = 1_700_000_000


def test_roundtrip() -> None:
    token = sign(KEY, {"sid": "s_123", "uid": "u_1"}, expires_at=NOW + 60)
    assert token.count(".") == 1
    assert verify(KEY, token, now=NOW) == {"sid": "s_123", "uid": "u_1", "exp": NOW + 60}


def test_default_clock() -> None:
    token = sign(KEY, {"a": 1}, expires_at=int(time.time()) + 60)
    assert verify(KEY, token)["a"] == 1
    old = sign(KEY, {"a": 1}, expires_at=int(time.time()) - 1)
    with pytest.raises(ExpiredTokenError):
        verify(KEY, old)


def test_expiry_boundary() -> None:
    token = sign(KEY, {}, expires_at=NOW)
    assert verify(KEY, token, now=NOW - 1) == {"exp": NOW}
    with pytest.raises(ExpiredTokenError):
        verify(KEY, token, now=NOW)
    with pytest.raises(TokenError):
        verify(KEY, token, now=NOW + 3600)


def test_wrong_key_and_cross_purpose_rejected() -> None:
    token = sign(KEY, {"sid": "s"}, expires_at=NOW + 60)
    with pytest.raises(InvalidSignatureError):
        verify(RING.derive("csrf"), token, now=NOW)
    with pytest.raises(InvalidSignatureError):
        verify(KeyRing(bytes(32)).derive("session"), token, now=NOW)


def test_tampered_payload_rejected() -> None:
    token = sign(KEY, {"uid": "u_1"}, expires_at=NOW + 60)
    _, mac = token.split(".")
    forged = json.dumps({"uid": "admin", "exp": NOW + 60}).encode()
    forged_body = base64.urlsafe_b64encode(forged).rstrip(b"=").decode()
    with pytest.raises(InvalidSignatureError):
        verify(KEY, f"{forged_body}.{mac}", now=NOW)


def test_every_changed_character_rejected() -> None:
    token = sign(KEY, {"uid": "u_1"}, expires_at=NOW + 60)
    for index, char in enumerate(token):
        replacement = "A" if char != "A" else "B"
        altered = token[:index] + replacement + token[index + 1 :]
        with pytest.raises(InvalidSignatureError):
            verify(KEY, altered, now=NOW)


def test_expired_token_with_bad_signature_reports_signature() -> None:
    token = sign(KEY, {}, expires_at=NOW - 10)
    with pytest.raises(InvalidSignatureError):
        verify(RING.derive("handoff"), token, now=NOW)


@pytest.mark.parametrize(
    "token",
    ["", ".", "abc", "abc.", ".abc", "a.b.c", "a b.c", "é.é", "x" * 9000 + ".y"],
)
def test_malformed_tokens(token: str) -> None:
    with pytest.raises(InvalidSignatureError):
        verify(KEY, token, now=NOW)


def test_signed_non_object_or_missing_exp_rejected() -> None:
    # Hand-craft correctly signed tokens whose content we never produce.
    import hashlib
    import hmac

    def craft(body: bytes) -> str:
        seg = base64.urlsafe_b64encode(body).rstrip(b"=").decode()
        mac = hmac.digest(KEY, seg.encode(), hashlib.sha256)
        return seg + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    for body in (b"[1,2]", b'{"a":1}', b'{"exp":"soon"}', b'{"exp":true}', b"\xff\xfe"):
        with pytest.raises(InvalidSignatureError):
            verify(KEY, craft(body), now=NOW)


def test_sign_argument_checks() -> None:
    with pytest.raises(ValueError, match="reserved"):
        sign(KEY, {"exp": 1}, expires_at=NOW)
    with pytest.raises(TypeError):
        sign(KEY, {}, expires_at=float(NOW))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        sign(KEY, {}, expires_at=True)
    with pytest.raises(ValueError, match="at least 16 bytes"):
        sign(b"short", {}, expires_at=NOW)
    with pytest.raises(ValueError, match="at least 16 bytes"):
        verify(b"short", "a.b", now=NOW)


def test_unicode_payload() -> None:
    token = sign(KEY, {"name": "Zoë 🙂"}, expires_at=NOW + 1)
    assert token.isascii()
    assert verify(KEY, token, now=NOW)["name"] == "Zoë 🙂"


def test_a_token_signed_with_a_previous_key_verifies_during_rotation() -> None:
    from awaithumans.server.security import KeyRing

    old, new = KeyRing(bytes(range(32))), KeyRing(bytes(range(1, 33)), previous=[bytes(range(32))])
    expires = int(time.time()) + 60
    token = sign(old.derive("handoff"), {"uid": "u"}, expires_at=expires)
    assert verify(new.verifying_keys("handoff"), token)["uid"] == "u"
    with pytest.raises(InvalidSignatureError):
        verify(new.derive("handoff"), token)  # the new key alone does not accept it
    with pytest.raises(InvalidSignatureError):
        verify(new.verifying_keys("session"), token)  # nor does another purpose
    fresh = sign(new.derive("handoff"), {"uid": "v"}, expires_at=expires)
    assert verify(new.verifying_keys("handoff"), fresh)["uid"] == "v"
    with pytest.raises(ExpiredTokenError):
        verify(new.verifying_keys("handoff"), token, now=expires)
