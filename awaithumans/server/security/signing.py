"""Compact HMAC-SHA256 signed tokens for cookies and links.

A token is ``base64url(json) "." base64url(mac)`` without padding, where the JSON is the
caller's payload plus an ``exp`` claim (Unix seconds) and the MAC covers the first segment
exactly as sent. Payloads are signed, not encrypted: anyone holding the token can read them,
so put ids in them, never secrets.

Tokens carry no type field. Callers keep different kinds apart by signing each kind with its
own derived key (``KeyRing.derive("session")``, ``"handoff"``, ``"email-action"``, ``"csrf"``),
so a token minted for one purpose fails verification for every other. Session payloads carry
a session id so that a session can be revoked server-side before the cookie expires.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Sequence
from typing import Any, Final

EXPIRY_CLAIM: Final = "exp"
MIN_KEY_BYTES: Final = 16
# Longer than any token we mint; refusing early bounds the work an attacker can make us do.
MAX_TOKEN_CHARS: Final = 8192

_SEGMENT_RE: Final = re.compile(r"[A-Za-z0-9_-]+")


class TokenError(Exception):
    """Base class: the token must not be trusted."""


class InvalidSignatureError(TokenError):
    """The token is malformed, was altered, or was signed with another key."""


class ExpiredTokenError(TokenError):
    """The token is authentic but its ``exp`` time has passed."""


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, segment: str) -> str:
    return _b64encode(hmac.digest(key, segment.encode("ascii"), hashlib.sha256))


def _check_key(key: bytes) -> None:
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"signing key must be at least {MIN_KEY_BYTES} bytes")


def sign(key: bytes, payload: dict[str, Any], *, expires_at: int) -> str:
    """Create a signed token.

    Args:
        key: A purpose key from ``KeyRing.derive`` (at least 16 bytes).
        payload: JSON-serialisable claims. The key ``"exp"`` is reserved.
        expires_at: Unix time in whole seconds after which :func:`verify` rejects the token.

    Returns:
        The token, safe to put in a cookie or a URL without further escaping.

    Raises:
        ValueError: If the key is too short or ``payload`` already contains ``"exp"``.
        TypeError: If ``expires_at`` is not an int or ``payload`` is not serialisable.
    """
    _check_key(key)
    # bool is an int subclass; `expires_at=True` is always a bug, so refuse it.
    if not isinstance(expires_at, int) or isinstance(expires_at, bool):
        raise TypeError("expires_at must be an int (Unix seconds)")
    if EXPIRY_CLAIM in payload:
        raise ValueError(f"payload must not contain the reserved claim {EXPIRY_CLAIM!r}")
    claims = {**payload, EXPIRY_CLAIM: expires_at}
    body = json.dumps(claims, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    segment = _b64encode(body.encode("utf-8"))
    return f"{segment}.{_mac(key, segment)}"


def verify(key: bytes | Sequence[bytes], token: str, *, now: int | None = None) -> dict[str, Any]:
    """Check a token's signature and expiry and return its claims.

    The signature is checked first, in constant time, so an expired-token error is only ever
    reported for a token we really issued.

    Args:
        key: The same purpose key that signed it, or the keys it may have been signed with
            (``KeyRing.verifying_keys``: during a key rotation, tokens the previous root
            signed stay valid until they expire).
        token: The token as received.
        now: Current Unix time in seconds; defaults to the system clock (tests inject it).

    Returns:
        The signed payload, including the ``"exp"`` claim.

    Raises:
        InvalidSignatureError: If the token is malformed, modified or signed with another key.
        ExpiredTokenError: If the token is authentic but ``now >= exp``.
        ValueError: If the key is too short.
    """
    keys = (key,) if isinstance(key, bytes) else tuple(key)
    for each in keys:
        _check_key(each)
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        raise InvalidSignatureError("malformed token")
    segment, dot, mac = token.partition(".")
    if not dot or not _SEGMENT_RE.fullmatch(segment) or not _SEGMENT_RE.fullmatch(mac):
        raise InvalidSignatureError("malformed token")
    # Compare the encoded MACs: every MAC has exactly one canonical encoding here, so no
    # alternative spelling of a valid token is accepted.
    # Every key is tried (no early exit), so the time taken does not say which one matched.
    matched = [hmac.compare_digest(_mac(each, segment), mac) for each in keys]
    if not any(matched):
        raise InvalidSignatureError("bad token signature")
    try:
        claims = json.loads(_b64decode(segment))
    except ValueError:  # covers binascii.Error, UnicodeDecodeError and JSONDecodeError
        raise InvalidSignatureError("malformed token payload") from None
    if not isinstance(claims, dict):
        raise InvalidSignatureError("malformed token payload")
    expires_at = claims.get(EXPIRY_CLAIM)
    if not isinstance(expires_at, int) or isinstance(expires_at, bool):
        raise InvalidSignatureError("token has no valid expiry")
    current = int(time.time()) if now is None else now
    if current >= expires_at:
        raise ExpiredTokenError("token has expired")
    return claims
