"""What the JSON API and the dashboard share about requests and responses.

The services below them take plain values (an address, a session id); this module reads
those off a request and writes the session cookie on a response.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from awaithumans.server.auth import SESSION_COOKIE
from awaithumans.server.settings import Settings


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def session_id(request: Request) -> str | None:
    """The session the request was authenticated through (set by the authentication step)."""
    found = getattr(request.state, "session_id", None)
    return found if isinstance(found, str) else None


def set_session_cookie(response: Response, settings: Settings, cookie: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=settings.session_ttl_seconds,
        httponly=True,
        samesite="lax",
        secure=settings.cookies_secure,
        path="/",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
