"""Operator endpoints for email sender identities (the routes' ``email+NAME:``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field

from awaithumans.core._codes import ErrorCode
from awaithumans.server.api.deps import Ctx, Operator
from awaithumans.server.api.errors import error_responses
from awaithumans.server.errors import ApiError
from awaithumans.server.notify.email.identities import (
    Identity,
    IdentityTransport,
    RemoveIdentity,
    SaveIdentity,
    list_identities,
    problems,
)

router = APIRouter(
    prefix="/api/admin/email-identities",
    tags=["admin"],
    responses=error_responses(400, 401, 403, 404, 413, 422),
)

IdentityName = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[a-z0-9_-]+$")]


class IdentityIn(BaseModel):
    from_address: str = Field(max_length=254)
    from_name: str | None = Field(default=None, max_length=200)
    reply_to: str | None = Field(default=None, max_length=254)
    transport: IdentityTransport = "server"
    smtp_host: str | None = Field(default=None, max_length=255)
    smtp_port: int | None = None
    smtp_username: str | None = Field(default=None, max_length=254)
    smtp_start_tls: bool = True
    smtp_use_tls: bool = False
    #: The SMTP password or the Resend API key; stored sealed, never returned. Leave it
    #: out to keep the one already stored.
    secret: str | None = Field(default=None, max_length=1024)


class IdentityOut(BaseModel):
    name: str
    from_address: str
    from_name: str | None
    reply_to: str | None
    transport: IdentityTransport
    smtp_host: str | None
    smtp_port: int | None
    smtp_username: str | None
    smtp_start_tls: bool
    smtp_use_tls: bool
    has_secret: bool


def _out(identity: Identity) -> IdentityOut:
    return IdentityOut.model_validate(identity, from_attributes=True)


@router.get("", response_model=list[IdentityOut])
async def list_all(ctx: Ctx, _op: Operator) -> list[IdentityOut]:
    return [_out(i) for i in await list_identities(ctx.engine)]


@router.put("/{name}", response_model=IdentityOut)
async def save(name: IdentityName, body: IdentityIn, ctx: Ctx, _op: Operator) -> IdentityOut:
    identity = Identity(name=name, **body.model_dump(exclude={"secret"}))
    current = {i.name: i for i in await list_identities(ctx.engine)}.get(name)
    kept = current is not None and current.has_secret and current.transport == body.transport
    wrong = problems(identity, body.secret or ("kept" if kept else None))
    if wrong:
        details = [{"loc": ["body", k], "msg": v, "type": "value_error"} for k, v in wrong.items()]
        raise ApiError(422, ErrorCode.VALIDATION_ERROR, next(iter(wrong.values())), details=details)
    await ctx.writer.submit(SaveIdentity(ctx.sealer, identity, body.secret))
    saved = {i.name: i for i in await list_identities(ctx.engine)}[name]
    return _out(saved)


@router.delete("/{name}", status_code=204)
async def remove(name: IdentityName, ctx: Ctx, _op: Operator) -> Response:
    if not await ctx.writer.submit(RemoveIdentity(name)):
        raise ApiError(404, ErrorCode.NOT_FOUND, f"No email identity {name!r}.")
    return Response(status_code=204)
