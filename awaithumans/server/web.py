"""What the JSON API and the dashboard share about requests and responses.

The services below them take plain values (an address, a session id); this module reads
those off a request and writes the session cookie on a response.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from awaithumans.server.auth import SESSION_COOKIE
from awaithumans.server.context import ServerContext
from awaithumans.server.errors import ApiError
from awaithumans.server.security import Door, client_address, too_many
from awaithumans.server.settings import Settings


def client_ip(request: Request) -> str:
    """The client's address, for every rate limit and every log line that names one.

    The socket peer, unless it is one of ``AWAITHUMANS_TRUSTED_PROXIES``: then the address
    that proxy forwarded (:func:`awaithumans.server.security.client_address`).
    """
    ctx: ServerContext = request.app.state.ctx
    peer = request.client.host if request.client else None
    forwarded = request.headers.getlist("x-forwarded-for")
    return client_address(peer, forwarded, ctx.settings.trusted_proxies)


_TOO_MANY = {
    Door.SETUP: "Too many setup attempts from your address",
    Door.HANDOFF: "Too many sign-in links opened from your address",
    Door.ONE_CLICK: "Too many answer links opened from your address",
}


def door_refusal(request: Request, door: Door) -> ApiError | None:
    """Count this request at ``door`` for its client address; the 429 (with
    ``Retry-After``) to answer instead when that address is over the door's limit."""
    ctx: ServerContext = request.app.state.ctx
    wait = ctx.door_limits.hit(door, client_ip(request))
    return None if wait is None else too_many(wait, _TOO_MANY[door])


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
