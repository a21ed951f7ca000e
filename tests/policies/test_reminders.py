"""Reminders, with a moved clock and real servers: each step once, across restarts and replicas.

The clock is moved in the database (a task's ``created_at`` and ``next_nudge_at`` made hours
older) while the server is down, or from outside while it runs; mail goes to a real SMTP
server (aiosmtpd). Each step is one audit row and one outbox job per route, on SQLite and
PostgreSQL; two replicas racing for the same due steps take each once.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from awaithumans.server.services.nudge_notice import duration_words, nudge_body, nudge_of
from awaithumans.server.services.nudge_plan import plan_of
from awaithumans.server.services.policy import TaskPolicy
from awaithumans.testing import ServerProcess
from tests._api import admin, create
from tests._waiting import until
from tests.email.conftest import smtp_env
from tests.policies._nudges import audit, move_clock, nudge_jobs, nudge_state
from tests.support.smtp_sink import Received, SmtpSink

HOURS = timedelta(hours=1)
SUBJECT = "Review: Refund $42 for ord_7?"


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


def to(mails: list[Received], address: str) -> list[Received]:
    return [m for m in mails if m.rcpt_tos == [address]]


async def mails_to(sink: SmtpSink, address: str, count: int) -> list[Received]:
    """Wait until ``address`` has ``count`` mails; return them, oldest first."""

    async def check() -> list[Received] | None:
        found = to(list(sink.messages), address)
        return found if len(found) >= count else None

    found: list[Received] = await until(check, timeout=30)
    return found


async def test_a_reminder_due_while_the_server_was_down_arrives_once(
    database_url: str, tmp_path: Path, sink: SmtpSink
) -> None:
    with ServerProcess(database_url=database_url, workdir=tmp_path, env=smtp_env(sink)) as server:
        made = await create(
            server,
            ["email:dana@acme.test"],
            reminders=[4 * HOURS, 8 * HOURS],
            timeout_seconds=86_400,
        )
        (ask,) = await mails_to(sink, "dana@acme.test", 1)
        assert ask.header("Subject") == SUBJECT
        before = await nudge_state(database_url, made["id"])
        assert before.nudges_done == 0
        assert before.next_nudge_at == before.created_at + 4 * HOURS

        # Five hours pass while the server is down.
        server.stop()
        await move_clock(database_url, 5 * HOURS, [made["id"]])
        server.start()

        ask_again, reminder = await mails_to(sink, "dana@acme.test", 2)
        assert ask_again is ask
        assert reminder.header("Subject") == f"Reminder: {SUBJECT}"
        for body in (reminder.text(), reminder.html()):
            assert "Reminder: still waiting for your answer" in body
            assert "ord_7" in body  # the ask again, details and all
        assert reminder.header("Message-ID") != ask.header("Message-ID")
        (row,) = await audit(server, made["id"], "reminder")
        assert row["channel"] == "scheduler"
        assert row["actor_label"] == "reminder scheduler"
        assert row["from_status"] == row["to_status"]
        assert row["detail"]["step"] == 1
        assert row["detail"]["routes"] == ["email:dana@acme.test"]
        assert row["detail"]["reassigned_to"] is None
        after = await nudge_state(database_url, made["id"])
        assert after.nudges_done == 1
        assert after.next_nudge_at == after.created_at + 8 * HOURS
        (job,) = await nudge_jobs(database_url, made["id"])
        assert (job["target"], job["nudge"], job["step"]) == ("email:dana@acme.test", "reminder", 1)

        # Another restart sends nothing again. A second task's reminder, due while the
        # server is down, shows the scheduler has made its first pass after the start.
        sentinel = await create(
            server, ["email:sam@acme.test"], reminders=[4 * HOURS], timeout_seconds=86_400
        )
        await mails_to(sink, "sam@acme.test", 1)
        server.stop()
        await move_clock(database_url, 5 * HOURS, [sentinel["id"]])
        server.start()
        await mails_to(sink, "sam@acme.test", 2)
        assert len(to(list(sink.messages), "dana@acme.test")) == 2
        assert len(await audit(server, made["id"], "reminder")) == 1
        assert (await nudge_state(database_url, made["id"])).nudges_done == 1
        assert len(await nudge_jobs(database_url, made["id"])) == 1


async def test_reminders_missed_during_an_outage_are_one_reminder(
    tmp_path: Path, sink: SmtpSink
) -> None:
    with ServerProcess(workdir=tmp_path, env=smtp_env(sink)) as server:
        made = await create(
            server,
            ["email:dana@acme.test", "email:eve@acme.test"],
            reminders=[1 * HOURS, 2 * HOURS, 3 * HOURS, 9 * HOURS],
            timeout_seconds=86_400,
        )
        await mails_to(sink, "eve@acme.test", 1)
        server.stop()
        await move_clock(server.database_url, 4 * HOURS, [made["id"]])
        server.start()
        # Three reminders fell due: each person gets the latest, once.
        for address in ("dana@acme.test", "eve@acme.test"):
            _, reminder = await mails_to(sink, address, 2)
            assert reminder.header("Subject") == f"Reminder: {SUBJECT}"
        (row,) = await audit(server, made["id"], "reminder")
        assert row["detail"]["step"] == 3
        assert row["detail"]["skipped"] == 2
        state = await nudge_state(server.database_url, made["id"])
        assert state.nudges_done == 3
        assert state.next_nudge_at == state.created_at + 9 * HOURS
        jobs = await nudge_jobs(server.database_url, made["id"])
        assert sorted(j["target"] for j in jobs) == ["email:dana@acme.test", "email:eve@acme.test"]


async def test_a_task_answered_before_its_reminder_gets_none(
    database_url: str, tmp_path: Path, sink: SmtpSink
) -> None:
    with ServerProcess(database_url=database_url, workdir=tmp_path, env=smtp_env(sink)) as server:
        answered = await create(
            server, ["email:dana@acme.test"], reminders=[4 * HOURS], timeout_seconds=86_400
        )
        await mails_to(sink, "dana@acme.test", 1)
        async with admin(server) as http:
            done = await http.post(
                f"/api/tasks/{answered['id']}/complete", json={"response": {"approved": True}}
            )
        assert done.status_code == 200, done.text
        sentinel = await create(
            server, ["email:sam@acme.test"], reminders=[4 * HOURS], timeout_seconds=86_400
        )
        await mails_to(sink, "sam@acme.test", 1)
        # The clock moves past both reminders while the server runs.
        await move_clock(database_url, 5 * HOURS)
        await mails_to(sink, "sam@acme.test", 2)
        assert len(to(list(sink.messages), "dana@acme.test")) == 1
        assert await audit(server, answered["id"], "reminder") == []
        assert await nudge_jobs(database_url, answered["id"]) == []
        assert (await nudge_state(database_url, answered["id"])).nudges_done == 0
        (row,) = await audit(server, sentinel["id"], "reminder")
        assert row["detail"]["step"] == 1


async def test_a_task_without_notify_routes_still_records_its_reminder(
    tmp_path: Path, sink: SmtpSink
) -> None:
    with ServerProcess(workdir=tmp_path, env=smtp_env(sink)) as server:
        made = await create(server, [], reminders=[4 * HOURS], timeout_seconds=86_400)
        await move_clock(server.database_url, 5 * HOURS, [made["id"]])

        async def reminded() -> list[dict[str, object]]:
            return await audit(server, made["id"], "reminder")

        (row,) = await until(reminded, timeout=20, why=server.logs)
        assert row["detail"]["routes"] == []
        assert await nudge_jobs(server.database_url, made["id"]) == []
        state = await nudge_state(server.database_url, made["id"])
        assert state.nudges_done == 1
        assert state.next_nudge_at is None


async def test_two_replicas_take_each_step_once(
    postgres_url: str, tmp_path: Path, sink: SmtpSink
) -> None:
    env = smtp_env(sink)
    first = ServerProcess(database_url=postgres_url, workdir=tmp_path / "a", env=env)
    second = ServerProcess(
        database_url=postgres_url,
        workdir=tmp_path / "b",
        env=env,
        payload_key=first.payload_key,
        admin_token=first.admin_token,
    )
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with first, second:
        made = [
            await create(
                first if i % 2 else second,
                [f"email:r{i}@acme.test"],
                reminders=[4 * HOURS],
                timeout_seconds=86_400,
            )
            for i in range(12)
        ]
        await until(lambda: _count(sink, 12), timeout=30)
        # Every reminder falls due at once; both schedulers see them on their next pass.
        await move_clock(postgres_url, 5 * HOURS)
        await until(lambda: _count(sink, 24), timeout=30)
        for i, task in enumerate(made):
            state = await nudge_state(postgres_url, task["id"])
            assert state.nudges_done == 1
            assert len(await audit(first, task["id"], "reminder")) == 1
            (job,) = await nudge_jobs(postgres_url, task["id"])
            assert job["target"] == f"email:r{i}@acme.test"
        reminders = [
            m for m in sink.messages if (m.header("Subject") or "").startswith("Reminder:")
        ]
        assert sorted(m.rcpt_tos[0] for m in reminders) == sorted(
            f"r{i}@acme.test" for i in range(12)
        )


async def _count(sink: SmtpSink, count: int) -> bool:
    return len(sink.messages) >= count


# -- the plan and the words, pure -------------------------------------------------------------


def test_the_plan_orders_reminders_and_the_escalation_by_due_time() -> None:
    policy = TaskPolicy(
        reminder_seconds=(3600, 4 * 3600, 30 * 3600),
        escalate_after_seconds=4 * 3600,
        escalate_to=("email:lead@acme.test",),
    )
    assert [(s.number, s.kind, s.offset_seconds) for s in plan_of(policy)] == [
        (1, "reminder", 3600),
        (2, "reminder", 4 * 3600),  # at the escalation's time: the reminder goes first
        (3, "escalation", 4 * 3600),
        (4, "reminder", 30 * 3600),
    ]
    assert plan_of(TaskPolicy()) == ()


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(60, "1 min"), (45 * 60, "45 min"), (5400, "1 h 30 min"), (86_400, "24 h"),
     (2 * 86_400, "48 h"), (3 * 86_400, "3 d")],
)  # fmt: skip
def test_durations_read_short(seconds: int, words: str) -> None:
    assert duration_words(seconds) == words


def test_a_first_ask_carries_no_nudge() -> None:
    assert nudge_of({"event": "task.created"}) is None
    reminder = nudge_of(nudge_body("task.created", "reminder", 2, 3600, False))
    assert reminder is not None
    assert (reminder.prefix, reminder.step) == ("Reminder:", 2)
    escalation = nudge_of(nudge_body("task.created", "escalation", 3, 8 * 3600, True))
    assert escalation is not None
    assert escalation.headline == "Escalated: nobody answered in 8 h of business hours"
