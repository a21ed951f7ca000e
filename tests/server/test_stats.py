"""``GET /api/stats``: every figure exactly, overall, by channel, by assignee and by title,
on SQLite and PostgreSQL; bad periods refused with 422; operators only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from awaithumans.server.services.stats import parse_period, percentile
from tests.server._stats_world import DAY, RITA, SAM, StatsWorld, stats_world


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[StatsWorld]:
    async with stats_world(database_url) as made:
        yield made


def figures(
    created: int,
    completed: int = 0,
    timed_out: int = 0,
    cancelled: int = 0,
    open: int = 0,
    rate: float | None = None,
    p50: float | None = None,
    p90: float | None = None,
    view: tuple[float | None, float | None] = (None, None),
) -> dict[str, Any]:
    return {
        "created": created,
        "completed": completed,
        "timed_out": timed_out,
        "cancelled": cancelled,
        "verification_exhausted": 0,
        "open": open,
        "completion_rate": rate,
        "time_to_answer_seconds": {"p50": p50, "p90": p90},
        "time_to_first_view_seconds": {"p50": view[0], "p90": view[1]},
    }


async def stats(world: StatsWorld, **params: str) -> dict[str, Any]:
    got = await world.admin.get("/api/stats", params={"since": DAY, "until": DAY, **params})
    assert got.status_code == 200, got.text
    body: dict[str, Any] = got.json()
    return body


def by_key(body: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    return {g["key"]: (g["label"], g["figures"]) for g in body["groups"]}


async def test_every_figure_overall_by_channel_by_assignee_and_by_title(
    world: StatsWorld,
) -> None:
    overall = await stats(world)
    assert overall["since"].startswith("2026-03-10T00:00:00")
    assert overall["until"].startswith("2026-03-11T00:00:00")
    assert (overall["tasks_in_period"], overall["truncated"], overall["max_tasks"]) == (
        6,
        False,
        50_000,
    )
    # 6 created in the period (the 7th a second before it); answers after 60, 120, 600 s:
    # nearest-rank p50 is the 2nd of 3, p90 the 3rd; 3 completed of 5 finished. First
    # opened after 30, 45 and 300 s (three tasks; the rest never opened).
    assert overall["totals"] == figures(
        6, 3, 1, 1, 1, rate=0.6, p50=120.0, p90=600.0, view=(45.0, 300.0)
    )
    assert overall["groups"] == []
    assert overall["group_by"] is None

    channels = by_key(await stats(world, group_by="channel"))
    assert channels == {
        "dashboard": (
            "dashboard",
            figures(2, 2, rate=1.0, p50=60.0, p90=120.0, view=(30.0, 45.0)),
        ),
        "api": ("api", figures(2, 1, cancelled=1, rate=0.5, p50=600.0, p90=600.0)),
        "scheduler": ("scheduler", figures(1, timed_out=1, rate=0.0)),
        "open": ("open", figures(1, open=1, view=(300.0, 300.0))),
    }

    people = by_key(await stats(world, group_by="assignee"))
    assert people == {
        world.users[RITA]: (
            "Rita Reviewer",
            figures(2, 2, rate=1.0, p50=60.0, p90=120.0, view=(30.0, 45.0)),
        ),
        world.users[SAM]: (
            "Sam Second",
            figures(2, timed_out=1, open=1, rate=0.0, view=(300.0, 300.0)),
        ),
        # Unassigned, answered with the admin token: the one who answered.
        "admin": ("admin token", figures(1, 1, rate=1.0, p50=600.0, p90=600.0)),
        "unassigned": ("unassigned", figures(1, cancelled=1, rate=0.0)),
    }

    # Title: a substring in any case; LIKE's wildcards are matched as themselves.
    refunds = await stats(world, title="REFUND order")
    assert refunds["title"] == "REFUND order"
    assert refunds["totals"] == figures(3, 3, rate=1.0, p50=120.0, p90=600.0, view=(30.0, 45.0))
    invoices = by_key(await stats(world, title="invoice", group_by="assignee"))
    assert set(invoices) == {world.users[SAM], "unassigned"}
    assert (await stats(world, title="%"))["totals"] == figures(0)


async def test_a_period_takes_datetimes_and_the_bound_cuts_to_the_newest(
    world: StatsWorld,
) -> None:
    # 09:01 to 09:03 holds r2 and r3 (created 09:01 and 09:02).
    got = await world.admin.get(
        "/api/stats",
        params={"since": "2026-03-10T09:01:00Z", "until": "2026-03-10T10:03:00+01:00"},
    )
    assert got.status_code == 200, got.text
    assert got.json()["totals"] == figures(2, 2, rate=1.0, p50=120.0, p90=600.0, view=(45.0, 45.0))
    # The default period (the last 7 days) holds none of these tasks.
    recent = await world.admin.get("/api/stats")
    assert recent.status_code == 200
    assert recent.json()["tasks_in_period"] == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "2026-03-10", "until": "2026-03-09"}, "until"),
        ({"since": "2026-03-10T10:00:00Z", "until": "2026-03-10T10:00:00Z"}, "until"),
        ({"since": "2025-01-01", "until": "2026-03-10"}, "since"),
        ({"since": "last tuesday"}, "since"),
        ({"until": "2026-13-01"}, "until"),
        ({"group_by": "colour"}, "group_by"),
        # Past the last representable day, or a week before the first.
        ({"until": "9999-12-31"}, "until"),
        ({"until": "0001-01-01T00:00:00"}, "until"),
        ({"since": "0001-01-01T00:00:00+05:00", "until": "0001-01-02"}, "since"),
        ({"since": "x" * 41}, "since"),
    ],
)
async def test_a_bad_period_or_grouping_is_a_422(
    world: StatsWorld, params: dict[str, str], field: str
) -> None:
    got = await world.admin.get("/api/stats", params=params)
    assert got.status_code == 422, got.text
    body = got.json()
    assert body["error"] == "VALIDATION_ERROR"
    assert body["details"][0]["loc"][-1] == field


async def test_reviewers_and_signed_out_callers_are_refused(world: StatsWorld) -> None:
    async with world.browser() as anon:
        assert (await anon.get("/api/stats")).status_code == 401
    async with world.signed_in(RITA) as rita:
        refused = await rita.get("/api/stats")
        assert refused.status_code == 403
        assert refused.json()["error"] == "FORBIDDEN"


def test_percentiles_are_nearest_rank() -> None:
    assert percentile([], 0.5) is None
    assert percentile([5.0], 0.9) == 5.0
    values = [float(v) for v in range(1, 11)]
    assert (percentile(values, 0.5), percentile(values, 0.9)) == (5.0, 9.0)
    assert percentile(list(reversed(values)), 0.9) == 9.0


def test_the_default_period_is_the_last_seven_days() -> None:
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    period = parse_period(None, None, now=now)
    assert (period.since, period.until) == (now - timedelta(days=7), now)
    # A whole year (366 days with a leap day) is allowed; one day more is not.
    assert parse_period("2024-01-01", "2024-12-31").until == datetime(2025, 1, 1, tzinfo=UTC)
