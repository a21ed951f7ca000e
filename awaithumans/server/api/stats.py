"""``GET /api/stats``: the Analytics page's figures as JSON, for operators."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from awaithumans.server.api.deps import Ctx, Operator
from awaithumans.server.api.errors import error_responses
from awaithumans.server.services.stats import (
    MAX_TITLE_CHARS,
    GroupBy,
    Stats,
    parse_period,
    task_stats,
)

router = APIRouter(prefix="/api", tags=["stats"], responses=error_responses(401, 403, 422))


@router.get("/stats", response_model=Stats)
async def get_stats(
    ctx: Ctx,
    _op: Operator,
    since: Annotated[
        str | None, Query(max_length=40, description="ISO date or date-time (UTC if no offset)")
    ] = None,
    until: Annotated[
        str | None,
        Query(max_length=40, description="ISO date (that day included) or date-time; now"),
    ] = None,
    group_by: GroupBy | None = None,
    title: Annotated[
        str | None, Query(max_length=MAX_TITLE_CHARS, description="substring of the title")
    ] = None,
) -> Stats:
    """Counts, completion rate, time to first view and time to answer (p50/p90) of the
    tasks created in the period (default: the last 7 days), overall and by ``channel`` or
    ``assignee``."""
    period = parse_period(since, until)
    return await task_stats(ctx.engine, period, group_by=group_by, title=title)
