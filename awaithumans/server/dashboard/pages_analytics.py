"""The Analytics page (/analytics, operators): the figures of ``GET /api/stats``, by channel
and by assignee, for the last 7, 30 or 90 days or dates the operator picks.

A plain GET form and links, no script: the period and the title filter live in the address,
so a view can be bookmarked or shared. A bad period re-renders the form with the problem.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import Response

from awaithumans.server.dashboard.access import ctx_of, require_operator
from awaithumans.server.dashboard.render import render
from awaithumans.server.db.types import utcnow
from awaithumans.server.errors import ApiError
from awaithumans.server.services.stats import (
    MAX_TITLE_CHARS,
    Percentiles,
    Period,
    parse_period,
    task_stats,
)

router = APIRouter(include_in_schema=False)

PRESET_DAYS = (7, 30, 90)


def _duration(seconds: float | None) -> str:
    """'45s', '12m', '3.5h', '2.1d': short enough for a table cell."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _percentiles(p: Percentiles) -> dict[str, str]:
    return {"p50": _duration(p.p50), "p90": _duration(p.p90)}


def _query(request: Request) -> tuple[dict[str, str], int | None]:
    """The form's values as given, and the preset number of days, if one was picked."""
    params = request.query_params
    values = {
        "since": params.get("since", "")[:40],
        "until": params.get("until", "")[:40],
        "title": params.get("title", "")[:MAX_TITLE_CHARS],
    }
    days_text = params.get("days", "")
    days = int(days_text) if days_text in {str(d) for d in PRESET_DAYS} else None
    if days is None and not values["since"] and not values["until"]:
        days = PRESET_DAYS[0]
    return values, days


def _period(values: dict[str, str], days: int | None) -> Period:
    if days is not None:
        now = utcnow()
        return Period(now - timedelta(days=days), now)
    return parse_period(values["since"] or None, values["until"] or None)


@router.get("/analytics")
async def analytics_page(request: Request) -> Response:
    await require_operator(request)
    values, days = _query(request)
    title = values["title"].strip() or None
    presets = [
        {
            "days": d,
            "url": "/analytics?" + urlencode({"days": d, **({"title": title} if title else {})}),
            "current": d == days,
        }
        for d in PRESET_DAYS
    ]
    context: dict[str, Any] = {"form": values, "presets": presets, "days": days, "error": None}
    try:
        period = _period(values, days)
    except ApiError as exc:
        context["error"] = exc.message.removeprefix("Invalid request: ")
        return render(request, "analytics.html", context, status_code=422)
    engine = ctx_of(request).engine
    by_channel = await task_stats(engine, period, group_by="channel", title=title)
    by_assignee = await task_stats(engine, period, group_by="assignee", title=title)
    context.update(
        stats=by_channel,
        totals=by_channel.totals,
        answer=_percentiles(by_channel.totals.time_to_answer_seconds),
        first_view=_percentiles(by_channel.totals.time_to_first_view_seconds),
        rate=_rate(by_channel.totals.completion_rate),
        tables=[
            {"id": "by-channel", "title": "By channel", "column": "Channel", "rows": by_channel},
            {
                "id": "by-assignee",
                "title": "By assignee",
                "column": "Assignee",
                "rows": by_assignee,
            },
        ],
        fmt_rate=_rate,
        fmt_percentiles=_percentiles,
    )
    return render(request, "analytics.html", context)
