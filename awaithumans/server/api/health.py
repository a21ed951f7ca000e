"""Public liveness and version endpoints."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import text

from awaithumans.core._codes import ErrorCode
from awaithumans.server.api.deps import Ctx
from awaithumans.server.api.errors import error_responses
from awaithumans.server.errors import ApiError
from awaithumans.server.version import __version__

router = APIRouter(prefix="/api", tags=["health"])


class Health(BaseModel):
    status: str
    database: str
    waiting_polls: int


class Version(BaseModel):
    version: str
    api: str = "1"


@router.get("/health", response_model=Health, responses=error_responses(503))
async def health(ctx: Ctx) -> Health:
    try:
        async with ctx.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:
        raise ApiError(
            503, ErrorCode.DATABASE_UNAVAILABLE, "The database is not reachable."
        ) from None
    return Health(status="ok", database=ctx.engine.dialect.name, waiting_polls=ctx.hub.waiting)


@router.get("/version", response_model=Version)
async def version() -> Version:
    return Version(version=__version__)
