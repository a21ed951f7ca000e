"""FastAPI dependencies: the server context and the caller's principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import Response

from awaithumans.server.context import ServerContext
from awaithumans.server.errors import ApiError
from awaithumans.server.principals import Principal


def get_ctx(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ServerContext, Depends(get_ctx)]


async def optional_principal(request: Request, ctx: Ctx) -> Principal | None:
    assert ctx.auth is not None
    return await ctx.auth.principal(request)


async def require_principal(
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    if principal is None:
        raise ApiError(
            401,
            "UNAUTHORIZED",
            "Sign in, or send 'Authorization: Bearer <token>' (an agent key or the admin token).",
        )
    return principal


async def require_human(principal: Annotated[Principal, Depends(require_principal)]) -> Principal:
    if not principal.can_answer:
        raise ApiError(403, "FORBIDDEN", "Agent keys may create and read tasks, not answer them.")
    return principal


async def require_operator(
    principal: Annotated[Principal, Depends(require_principal)],
) -> Principal:
    if not principal.is_operator:
        raise ApiError(403, "FORBIDDEN", "Only operators may do this.")
    return principal


AnyPrincipal = Annotated[Principal, Depends(require_principal)]
Human = Annotated[Principal, Depends(require_human)]
Operator = Annotated[Principal, Depends(require_operator)]


def json_response(
    body: str, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A pre-serialised JSON body (pydantic's Rust serializer; skips a second validation)."""
    return Response(body, status_code=status_code, media_type="application/json", headers=headers)
