"""Business hours: the grammar of AWAITHUMANS_BUSINESS_HOURS and the arithmetic of reminders.

Pure arithmetic (weekends, overnight, a start outside hours, daylight saving changes both
ways, several clauses and windows), the refusals with what is wrong, the setting as the
server reads it (a bad value stops ``awaithumans serve`` with one clear line), and a task's
nudge plan counted in business time from its create to its last step.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, time, timedelta
from html import unescape
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel
from sqlalchemy import select, update

from awaithumans.core import Ask
from awaithumans.server.db.models import TaskRow
from awaithumans.server.services.business_hours import (
    InvalidBusinessHours,
    parse_business_hours,
)
from awaithumans.server.settings import Settings
from tests._app_fixtures import make_settings, running_app
from tests._waiting import until
from tests.dashboard.test_task_page import PASSWORD, signed_in

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
OFFICE = parse_business_hours("Mon-Fri 09:00-17:00 Europe/Berlin")
HOUR = 3600


def berlin(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


def test_a_reminder_on_friday_afternoon_lands_on_monday() -> None:
    # 2026-12-04 is a Friday: one hour left that day, three on Monday.
    friday = berlin(2026, 12, 4, 16, 0)
    assert friday.weekday() == 4
    due = OFFICE.add(friday, 4 * HOUR)
    assert due.tzinfo is UTC
    assert due == berlin(2026, 12, 7, 12, 0)


def test_inside_one_day_it_is_plain_addition() -> None:
    assert OFFICE.add(berlin(2026, 12, 1, 10, 0), 2 * HOUR) == berlin(2026, 12, 1, 12, 0)
    ten = berlin(2026, 12, 1, 10, 0)
    assert OFFICE.add(ten, 90) == ten + timedelta(seconds=90)


def test_overnight_carries_to_the_next_morning() -> None:
    # Tuesday 15:00 + 4 h: 2 h on Tuesday, 2 h on Wednesday morning.
    assert OFFICE.add(berlin(2026, 12, 1, 15, 0), 4 * HOUR) == berlin(2026, 12, 2, 11, 0)


def test_ending_exactly_at_closing_time_is_closing_time() -> None:
    assert OFFICE.add(berlin(2026, 12, 1, 13, 0), 4 * HOUR) == berlin(2026, 12, 1, 17, 0)


@pytest.mark.parametrize(
    ("created", "due"),
    [
        # Saturday: counting starts on Monday at 09:00.
        (berlin(2026, 12, 5, 11, 0), berlin(2026, 12, 7, 13, 0)),
        # Before opening on a weekday.
        (berlin(2026, 12, 1, 6, 30), berlin(2026, 12, 1, 13, 0)),
        # After closing on Friday night.
        (berlin(2026, 12, 4, 22, 0), berlin(2026, 12, 7, 13, 0)),
    ],
)
def test_a_task_created_outside_hours_starts_counting_at_the_next_opening(
    created: datetime, due: datetime
) -> None:
    assert OFFICE.add(created, 4 * HOUR) == due


def test_a_long_offset_skips_weekends() -> None:
    # 24 business hours = three working days; from Thursday 09:00 that is Monday 17:00.
    assert OFFICE.add(berlin(2026, 12, 3, 9, 0), 24 * HOUR) == berlin(2026, 12, 7, 17, 0)


def test_wall_clock_hours_hold_across_the_spring_change() -> None:
    # Berlin moves from +01:00 to +02:00 on Sunday 2026-03-29. Friday 16:00 + 4 h is
    # Monday 12:00 on the wall clock, now two hours from UTC.
    due = OFFICE.add(berlin(2026, 3, 27, 16, 0), 4 * HOUR)
    assert due == datetime(2026, 3, 30, 10, 0, tzinfo=UTC)
    assert due.astimezone(BERLIN).hour == 12


def test_wall_clock_hours_hold_across_the_autumn_change() -> None:
    # Back to +01:00 on Sunday 2026-10-25.
    due = OFFICE.add(berlin(2026, 10, 23, 16, 0), 4 * HOUR)
    assert due == datetime(2026, 10, 26, 11, 0, tzinfo=UTC)
    assert due.astimezone(BERLIN).hour == 12


def test_a_window_across_the_change_counts_real_time() -> None:
    # A night window on the night the clocks go forward lasts five real hours, not six.
    nights = parse_business_hours("Sun 00:00-06:00 Europe/Berlin")
    start = berlin(2026, 3, 29, 0, 0)
    assert nights.business_seconds(start, start + timedelta(days=1)) == 5 * HOUR
    # Six hours of it reach the next Sunday.
    assert nights.add(start, 6 * HOUR) == berlin(2026, 4, 5, 1, 0)
    # And seven on the night they go back.
    autumn = berlin(2026, 10, 25, 0, 0)
    assert nights.business_seconds(autumn, autumn + timedelta(days=1)) == 7 * HOUR


def test_several_clauses_windows_and_a_wrapping_day_range() -> None:
    hours = parse_business_hours(
        "Sun-Thu 08:00-12:00, 13:00-17:00; fri 08:00-12:00 America/New_York"
    )
    friday = datetime(2026, 12, 4, 11, 0, tzinfo=NEW_YORK)
    # One hour on Friday, none on Saturday, then Sunday from 08:00 (lunch skipped).
    assert hours.add(friday, 6 * HOUR) == datetime(2026, 12, 6, 14, 0, tzinfo=NEW_YORK)
    assert hours.days[5] == ()  # Saturday


def test_a_night_shift_is_two_clauses() -> None:
    shift = parse_business_hours("Mon-Fri 22:00-24:00; Tue-Sat 00:00-06:00 UTC")
    monday = datetime(2026, 11, 30, 21, 0, tzinfo=UTC)
    assert shift.add(monday, 3 * HOUR) == datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


def test_the_utc_result_does_not_depend_on_the_start_s_zone() -> None:
    start = berlin(2026, 12, 4, 16, 0)
    assert OFFICE.add(start.astimezone(UTC), HOUR) == OFFICE.add(start, HOUR)


def test_zero_seconds_is_the_next_business_instant() -> None:
    assert OFFICE.add(berlin(2026, 12, 5, 12, 0), 0) == berlin(2026, 12, 7, 9, 0)


def test_a_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        OFFICE.add(datetime(2026, 12, 1, 10, 0), HOUR)  # naive on purpose


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("Mon-Fri 09:00-17:00", "'09:00-17:00' is not a time zone name"),
        ("Mon-Fri 09:00-17:00 Mars/Olympus", "'Mars/Olympus' is not a time zone name"),
        ("Mon-Fri 09:00-17:00 America", "'America' is not a time zone name"),
        ("Mo-Fri 09:00-17:00 UTC", "'Mo' is not a day"),
        ("Mon-Fry 09:00-17:00 UTC", "'Fry' is not a day"),
        ("Mon-Fri 9-17 UTC", "'9' is not a time HH:MM"),
        ("Mon-Fri 09:00-25:00 UTC", "'25:00' is not a time of day"),
        ("Mon-Fri 09:60-17:00 UTC", "'09:60' is not a time of day"),
        ("Mon-Fri 17:00-09:00 UTC", "ends before it starts"),
        ("Mon-Fri 09:00 UTC", "'09:00' is not a window HH:MM-HH:MM"),
        ("Mon-Fri 09:00-12:00,11:00-17:00 UTC", "the windows of Mon overlap"),
        ("Mon-Fri 09:00-17:00;; Sat 10:00-12:00 UTC", "empty clause"),
        ("Mon-Fri; Sat 10:00-12:00 UTC", "'Mon-Fri' needs hours after its days"),
        ("UTC", "needs days, hours and a time zone"),
    ],
)
def test_a_spec_off_the_grammar_is_refused_saying_what_is_wrong(spec: str, says: str) -> None:
    with pytest.raises(InvalidBusinessHours) as refused:
        parse_business_hours(spec)
    message = str(refused.value)
    assert says in message
    assert "Mon-Fri 09:00-17:00 Europe/Berlin" in message  # an example to copy


def test_the_setting_is_checked_and_tidied() -> None:
    settings = Settings(business_hours="  Mon-Fri   09:00-17:00  Europe/Berlin ")
    assert settings.business_hours == "Mon-Fri 09:00-17:00 Europe/Berlin"
    assert Settings(business_hours=" ").business_hours is None
    assert Settings().business_hours is None


def test_the_server_will_not_start_with_bad_business_hours(tmp_path: Path) -> None:
    env = dict(os.environ, AWAITHUMANS_BUSINESS_HOURS="Mon-Fri 9-17 Europe/Berlin")
    result = subprocess.run(
        [sys.executable, "-m", "awaithumans._cli_entry", "serve"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "AWAITHUMANS_BUSINESS_HOURS='Mon-Fri 9-17 Europe/Berlin' is not valid: Value error,"
        " '9' is not a time HH:MM; e.g. 'Mon-Fri 09:00-17:00 Europe/Berlin'."
    ]


# -- business hours in the nudge plan, on the in-process app ---------------------------------


class Refund(BaseModel):
    order_id: str


class Decision(BaseModel):
    approved: bool


def _ask(**policy: Any) -> dict[str, Any]:
    return (
        Ask(
            task="Refund order ord_1?",
            payload_schema=Refund,
            payload=Refund(order_id="ord_1"),
            response_schema=Decision,
            timeout_seconds=30 * 86_400,
            idempotency_key=f"bh-{uuid.uuid4().hex}",
            **policy,
        )
        .request()
        .model_dump(mode="json", exclude_none=True)
    )


def _a_friday_afternoon_weeks_ago() -> datetime:
    day = (datetime.now(BERLIN) - timedelta(days=21)).date()
    while day.weekday() != 4:
        day -= timedelta(days=1)
    return datetime.combine(day, time(16, 0), tzinfo=BERLIN)


async def test_steps_count_business_time_from_create_to_the_last_step(
    database_url: str,
) -> None:
    settings = make_settings(
        database_url, business_hours=OFFICE.spec, scheduler_max_sleep_seconds=0.2
    )
    async with running_app(settings) as (app, client):
        made = await client.post(
            "/api/tasks",
            json=_ask(
                reminders=[timedelta(hours=4), timedelta(hours=600)],
                escalate_after=timedelta(hours=8),
                escalate_to=["email:lead@acme.test"],
            ),
        )
        assert made.status_code == 201, made.text
        task_id = made.json()["id"]
        engine = app.state.ctx.engine
        created, next_at = await _nudge_times(engine, task_id)
        assert next_at == OFFICE.add(created, 4 * HOUR)

        # The task was created on a Friday at 16:00, weeks ago: the 4 h reminder (Monday
        # 12:00) and the 8 h escalation (Monday 16:00) are long due, the 600 h one is not.
        friday = _a_friday_afternoon_weeks_ago()
        async with engine.begin() as conn:
            await conn.execute(
                update(TaskRow)
                .where(TaskRow.id == task_id)
                .values(created_at=friday, next_nudge_at=OFFICE.add(friday, 4 * HOUR))
            )

        async def stepped() -> list[dict[str, Any]]:
            rows = (await client.get(f"/api/tasks/{task_id}/audit")).json()
            steps = [r for r in rows if r["action"] in ("reminder", "escalation")]
            return steps if len(steps) == 2 else []

        rows = await until(stepped, timeout=20)
        assert [(r["action"], r["detail"]["step"]) for r in rows] == [
            ("reminder", 1),
            ("escalation", 2),
        ]
        assert "Nobody answered in 8 h of business hours" in rows[1]["detail"]["message"]
        _, next_at = await _nudge_times(engine, task_id)
        assert next_at == OFFICE.add(friday, 600 * HOUR)
        assert next_at is not None
        assert next_at.astimezone(BERLIN).weekday() < 5

        # The task's page lists both steps in words.
        made_user = await client.post(
            "/api/admin/users",
            json={
                "email": "ops@acme.test",
                "display_name": "Olga Ops",
                "is_operator": True,
                "password": PASSWORD,
            },
        )
        assert made_user.status_code == 201, made_user.text
        async with signed_in(app, "ops@acme.test") as browser:
            page = unescape((await browser.get(f"/task?id={task_id}")).text)
        assert "Reminder 1 after 4 h of business hours: no notify routes" in page
        assert "Nobody answered in 8 h of business hours: escalated to email:lead@acme.test" in page


async def _nudge_times(engine: Any, task_id: str) -> tuple[datetime, datetime | None]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(TaskRow.created_at, TaskRow.next_nudge_at).where(TaskRow.id == task_id)
            )
        ).one()
    return row.created_at, row.next_nudge_at
