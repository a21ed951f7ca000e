"""FastAPI dependencies: the server context and the caller's principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import Response

from awaithumans.core._codes import ErrorCode
from awaithumans.server.auth import SESSION_COOKIE, Credentials
from awaithumans.server.context import ServerContext
from awaithumans.server.errors import ApiError
from awaithumans.server.principals import Principal


async def get_ctx(request: Request) -> ServerContext:
    # async on purpose: FastAPI runs a plain-def dependency in a worker thread, a hop that
    # cost every request (and every idle re-poll) measurable CPU.
    ctx: ServerContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ServerContext, Depends(get_ctx)]


def credentials(request: Request) -> Credentials:
    """What the request presents to the authenticator."""
    headers = request.headers
    return Credentials(
        authorization=headers.get("authorization"),
        session_cookie=request.cookies.get(SESSION_COOKIE),
        method=request.method,
        origin=headers.get("origin"),
        host=headers.get("host", ""),
    )


async def optional_principal(request: Request, ctx: Ctx) -> Principal | None:
    found = await ctx.auth.authenticate(credentials(request))
    if found is None:
        return None
    if found.session_id is not None:
        request.state.session_id = found.session_id
    return found.principal


async def require_principal(
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    if principal is None:
        raise ApiError(
            401,
            ErrorCode.UNAUTHORIZED,
            "Sign in, or send 'Authorization: Bearer <token>' (an agent key or the admin token).",
        )
    return principal


async def require_human(principal: Annotated[Principal, Depends(require_principal)]) -> Principal:
    if not principal.can_answer:
        raise ApiError(
            403, ErrorCode.FORBIDDEN, "Agent keys may create and read tasks, not answer them."
        )
    return principal


async def require_operator(
    principal: Annotated[Principal, Depends(require_principal)],
) -> Principal:
    if not principal.is_operator:
        raise ApiError(403, ErrorCode.FORBIDDEN, "Only operators may do this.")
    return principal


AnyPrincipal = Annotated[Principal, Depends(require_principal)]
Human = Annotated[Principal, Depends(require_human)]
Operator = Annotated[Principal, Depends(require_operator)]


def json_response(
    body: str, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A pre-serialised JSON body (pydantic's Rust serializer; skips a second validation)."""
    return Response(body, status_code=status_code, media_type="application/json", headers=headers)
