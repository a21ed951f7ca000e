"""First operator setup, login, logout, and who-am-I."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from awaithumans.core._codes import ErrorCode
from awaithumans.server.api.deps import Ctx, optional_principal
from awaithumans.server.api.errors import error_responses
from awaithumans.server.errors import ApiError
from awaithumans.server.principals import Principal
from awaithumans.server.security import Door
from awaithumans.server.services.sessions import (
    create_first_operator,
    sign_in,
    sign_out,
)
from awaithumans.server.web import (
    clear_session_cookie,
    client_ip,
    door_refusal,
    session_id,
    set_session_cookie,
)

router = APIRouter(
    prefix="/api",
    tags=["auth"],
    responses=error_responses(400, 401, 403, 409, 413, 422, 429),
)

Email = Annotated[str, Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]


class SetupRequest(BaseModel):
    token: str = Field(min_length=1, max_length=200)
    email: Email
    display_name: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1024)


class LoginRequest(BaseModel):
    email: Email
    password: str = Field(min_length=1, max_length=1024)


class Me(BaseModel):
    kind: str
    id: str
    email: str | None = None
    display_name: str | None = None
    is_operator: bool


@router.post("/setup/operator", status_code=201, response_model=Me)
async def setup_operator(body: SetupRequest, request: Request, ctx: Ctx) -> Me:
    refusal = door_refusal(request, Door.SETUP)
    if refusal is not None:
        raise refusal
    values = await create_first_operator(
        ctx,
        token=body.token,
        email=body.email,
        display_name=body.display_name,
        password=body.password,
    )
    return Me(
        kind="user",
        id=str(values["id"]),
        email=str(values["email"]),
        display_name=str(values["display_name"]),
        is_operator=True,
    )


@router.post("/auth/login", response_model=Me)
async def login(body: LoginRequest, request: Request, ctx: Ctx) -> Response:
    user, cookie = await sign_in(ctx, client_ip(request), body.email, body.password)
    me = Me(
        kind="user",
        id=user["id"],
        email=user["email"],
        display_name=user["display_name"],
        is_operator=user["is_operator"],
    )
    response = JSONResponse(me.model_dump())
    set_session_cookie(response, ctx.settings, cookie)
    return response


@router.post("/auth/logout", status_code=204)
async def logout(
    request: Request,
    ctx: Ctx,
    who: Annotated[Principal | None, Depends(optional_principal)],
) -> Response:
    response = Response(status_code=204)
    await sign_out(ctx, session_id(request))
    clear_session_cookie(response)
    return response


@router.get("/auth/me", response_model=Me)
async def me(who: Annotated[Principal | None, Depends(optional_principal)]) -> Me:
    if who is None:
        raise ApiError(401, ErrorCode.UNAUTHORIZED, "Not signed in.")
    return Me(
        kind=who.kind,
        id=who.id,
        email=who.email,
        display_name=who.display_name or who.label,
        is_operator=who.is_operator,
    )
