"""CSRF protection for every dashboard form (signed double-submit).

Each browser gets a random ``ah_csrf`` cookie (HttpOnly, SameSite=Strict); forms carry
HMAC(key, cookie). A foreign site can make the browser send the cookie, but can neither
read it nor compute the HMAC, so it cannot produce a matching form field. Works before
sign-in too (setup and login forms), unlike a token tied to the session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence

from fastapi import Request
from starlette.responses import Response

CSRF_COOKIE = "ah_csrf"
CSRF_FIELD = "csrf_token"


def _browser_secret(request: Request) -> str:
    existing = request.cookies.get(CSRF_COOKIE)
    if existing and 20 <= len(existing) <= 100:
        return existing
    made: str | None = getattr(request.state, "new_csrf_cookie", None)
    if made is None:
        made = secrets.token_urlsafe(24)
        request.state.new_csrf_cookie = made
    return made


def csrf_token(key: bytes, request: Request) -> str:
    """The token this browser's forms must carry (``key``: the server's CSRF key)."""
    mac = hmac.new(key, _browser_secret(request).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def csrf_ok(keys: Sequence[bytes], request: Request, submitted: object) -> bool:
    """Whether ``submitted`` (a form's token field) matches this browser's cookie.

    ``keys``: the current CSRF key, then those of the payload keys it replaced
    (``KeyRing.verifying_keys``): a page loaded before a key rotation still submits.
    """
    if not isinstance(submitted, str) or not request.cookies.get(CSRF_COOKIE):
        return False
    return any(hmac.compare_digest(submitted, csrf_token(key, request)) for key in keys)


def set_csrf_cookie(request: Request, response: Response, *, secure: bool) -> None:
    """Send the cookie when this request had to make one (``secure``: HTTPS only)."""
    made = getattr(request.state, "new_csrf_cookie", None)
    if made:
        response.set_cookie(
            CSRF_COOKIE,
            made,
            httponly=True,
            samesite="strict",
            secure=secure,
            path="/",
        )
