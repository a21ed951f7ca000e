"""Public liveness, readiness and version endpoints.

``/api/health`` is liveness: the process answers and reaches its database (restart it if
not). ``/api/ready`` is readiness, for a load balancer: the database answers, its schema is
the one this code was written for, and the process is not shutting down (send it no
traffic if not). During a rolling upgrade a replica of the older version sees a newer
schema and says so, rather than serving on a schema it does not know.
"""

from __future__ import annotations

import functools

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import text

from awaithumans.core._codes import ErrorCode
from awaithumans.server.api.deps import Ctx
from awaithumans.server.api.errors import error_responses
from awaithumans.server.db.engine import MIGRATIONS_DIR, current_revision
from awaithumans.server.errors import ApiError
from awaithumans.server.version import __version__

router = APIRouter(prefix="/api", tags=["health"])


class Health(BaseModel):
    status: str
    database: str
    waiting_polls: int


class Ready(BaseModel):
    status: str
    database: str
    #: The database's schema revision, which is the one this server needs.
    revision: str


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


@router.get("/ready", response_model=Ready, responses=error_responses(503))
async def ready(ctx: Ctx) -> Ready:
    """200 when this process can serve: database reachable, schema current, not stopping.

    503 otherwise, with the reason's code: ``DATABASE_UNAVAILABLE``, ``SCHEMA_NOT_CURRENT``
    (the database is behind or ahead of this code's migrations) or ``SERVER_RESTARTING``.
    """
    if ctx.hub.closing:
        raise ApiError(503, ErrorCode.SERVER_RESTARTING, "The server is shutting down.")
    try:
        current = await current_revision(ctx.engine)
    except Exception:
        raise ApiError(
            503, ErrorCode.DATABASE_UNAVAILABLE, "The database is not reachable."
        ) from None
    head = schema_head()
    if current != head:
        raise ApiError(
            503,
            ErrorCode.SCHEMA_NOT_CURRENT,
            f"The database schema is at revision {current or 'none'}; this server needs"
            f" {head}. Migrations run when a server of this version starts.",
        )
    return Ready(status="ready", database=ctx.engine.dialect.name, revision=head)


@functools.cache
def schema_head() -> str:
    """The newest migration this code ships (read once: the scripts do not change)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    if head is None:  # pragma: no cover - the package always ships its migrations
        raise RuntimeError("no migrations found")
    return head


@router.get("/version", response_model=Version)
async def version() -> Version:
    return Version(version=__version__)
