"""Escalation: after ``escalate_after`` nobody answered, ``escalate_to`` is asked, and with
``escalate_reassign`` the task goes to the first person those routes name who is in the
directory; the audit row says who. Real servers, real SMTP (aiosmtpd) and the Slack
stand-in; the clock is moved in the database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from awaithumans.testing import ServerProcess
from tests._api import add_user, admin, create, task
from tests._waiting import until
from tests.email.conftest import smtp_env
from tests.email.test_email_outbound import open_link
from tests.policies._nudges import audit, move_clock, nudge_jobs, nudge_state
from tests.policies.test_reminders import SUBJECT, mails_to, to
from tests.slack._helpers import buttons, posted, texts
from tests.support.slack_standin import SlackStandIn
from tests.support.smtp_sink import SmtpSink

HOURS = timedelta(hours=1)
FAST = {
    "AWAITHUMANS_OUTBOX_POLL_SECONDS": "0.3",
    "AWAITHUMANS_SCHEDULER_MAX_SLEEP_SECONDS": "0.2",
}


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


async def test_escalation_asks_the_next_level_and_reassigns_to_the_first_person_known(
    database_url: str, tmp_path: Path, sink: SmtpSink
) -> None:
    with ServerProcess(database_url=database_url, workdir=tmp_path, env=smtp_env(sink)) as server:
        dana = await add_user(server, "Dana Doe", email="dana@acme.test")
        lead = await add_user(server, "Lee Lead", email="lead@acme.test")
        made = await create(
            server,
            ["email:dana@acme.test"],
            assign_to={"user_id": dana},
            escalate_after=24 * HOURS,
            # Nobody in the directory has the first address: the lead is the first known.
            escalate_to=["email:outsider@elsewhere.test", "email:LEAD@acme.test"],
            escalate_reassign=True,
            timeout_seconds=3 * 86_400,
        )
        await mails_to(sink, "dana@acme.test", 1)
        state = await nudge_state(database_url, made["id"])
        assert state.next_nudge_at == state.created_at + 24 * HOURS

        server.stop()
        await move_clock(database_url, 25 * HOURS, [made["id"]])
        server.start()

        (to_lead,) = await mails_to(sink, "LEAD@acme.test", 1)
        (to_outsider,) = await mails_to(sink, "outsider@elsewhere.test", 1)
        for mail in (to_lead, to_outsider):
            assert mail.header("Subject") == f"Escalated: {SUBJECT}"
            assert "Escalated: nobody answered in 24 h" in mail.text()
            assert "Escalated: nobody answered in 24 h" in mail.html()
        # The task is the lead's now: their mail signs them in to it and answers it in one
        # click; the outsider is told, with the task's page.
        assert open_link(to_lead).startswith(f"{server.url}/handoff?t=")
        assert "/api/channels/email/answer" in to_lead.text()
        assert open_link(to_outsider) == f"{server.url}/task?id={made['id']}"
        found = await task(server, made["id"])
        assert found["assigned_to_user_id"] == lead
        assert found["status"] == "assigned"  # the status stays; the person changes
        (row,) = await audit(server, made["id"], "escalation")
        assert row["channel"] == "scheduler"
        assert row["detail"]["step"] == 1
        assert row["detail"]["routes"] == [
            "email:outsider@elsewhere.test",
            "email:LEAD@acme.test",
        ]
        assert row["detail"]["reassigned_to"] == lead
        assert row["detail"]["message"].endswith("; reassigned to lead@acme.test")
        # Dana was not asked again, and the plan is done.
        assert len(to(list(sink.messages), "dana@acme.test")) == 1
        state = await nudge_state(database_url, made["id"])
        assert state.nudges_done == 1
        assert state.next_nudge_at is None
        jobs = await nudge_jobs(database_url, made["id"])
        assert [(j["target"], j["nudge"]) for j in jobs] == [
            ("email:outsider@elsewhere.test", "escalation"),
            ("email:LEAD@acme.test", "escalation"),
        ]


async def test_reminders_then_escalation_in_order_without_reassigning(
    tmp_path: Path, sink: SmtpSink
) -> None:
    with ServerProcess(workdir=tmp_path, env=smtp_env(sink)) as server:
        await add_user(server, "Lee Lead", email="lead@acme.test")
        made = await create(
            server,
            ["email:dana@acme.test"],
            reminders=[2 * HOURS],
            escalate_after=4 * HOURS,
            escalate_to=["email:lead@acme.test"],
            timeout_seconds=86_400,
        )
        await mails_to(sink, "dana@acme.test", 1)
        dana = (await task(server, made["id"]))["assigned_to_user_id"]
        assert dana is not None  # the mail made her the assignee
        await move_clock(server.database_url, 3 * HOURS, [made["id"]])
        _, reminder = await mails_to(sink, "dana@acme.test", 2)
        assert reminder.header("Subject") == f"Reminder: {SUBJECT}"
        assert to(list(sink.messages), "lead@acme.test") == []
        await move_clock(server.database_url, 2 * HOURS, [made["id"]])
        (escalated,) = await mails_to(sink, "lead@acme.test", 1)
        assert "Escalated: nobody answered in 4 h" in escalated.text()
        rows = await audit(server, made["id"], "reminder", "escalation")
        assert [(r["action"], r["detail"]["step"]) for r in rows] == [
            ("reminder", 1),
            ("escalation", 2),
        ]
        assert rows[1]["detail"]["reassigned_to"] is None
        # Without escalate_reassign the task stays with Dana.
        assert (await task(server, made["id"]))["assigned_to_user_id"] == dana
        assert (await nudge_state(server.database_url, made["id"])).next_nudge_at is None


async def test_in_slack_a_reminder_and_an_escalation_are_fresh_marked_posts(
    tmp_path: Path,
) -> None:
    with (
        SlackStandIn() as slack,
        ServerProcess(workdir=tmp_path, env={**slack.env(), **FAST}) as server,
    ):
        lead = await add_user(server, "Bob Baker", email="bob@acme.com", slack_user_id="U0BOB0002")
        made = await create(
            server,
            ["slack:#approvals"],
            reminders=[1 * HOURS],
            escalate_after=2 * HOURS,
            escalate_to=["slack:#general", "slack:U0BOB0002"],
            escalate_reassign=True,
            timeout_seconds=86_400,
        )
        (ask,) = await posted(slack, server)
        await move_clock(server.database_url, timedelta(minutes=90), [made["id"]])
        _, reminder = await posted(slack, server, 2)
        assert reminder.channel == ask.channel
        assert reminder.thread_ts is None  # a new post, not a thread reply
        assert reminder.text == "Reminder: Review needed: Refund $42 for ord_7?"
        assert "Reminder: still waiting for your answer" in texts(reminder)
        assert [b["text"]["text"] for b in buttons(reminder)] == ["Claim this task"]

        await move_clock(server.database_url, 1 * HOURS, [made["id"]])
        messages = await posted(slack, server, 4)
        escalations = messages[2:]
        assert {m.channel for m in escalations} == {"C0GENERAL1", slack.dm_channel("U0BOB0002")}
        for message in escalations:
            assert message.text.startswith("Escalated: ")
            assert "Escalated: nobody answered in 2 h" in texts(message)
        # The channel is passed over; the member linked to a directory user gets the task.
        assert (await task(server, made["id"]))["assigned_to_user_id"] == lead
        (row,) = await audit(server, made["id"], "escalation")
        assert row["detail"]["reassigned_to"] == lead

        # The ending rewrites every post of the task, the nudges' too: no button left.
        async with admin(server) as http:
            done = await http.post(
                f"/api/tasks/{made['id']}/complete", json={"response": {"approved": True}}
            )
        assert done.status_code == 200, done.text

        async def all_closed() -> bool:
            return all(buttons(m) == [] for m in slack.posted())

        await until(all_closed, timeout=20, why=server.logs)


async def test_reassigning_to_someone_away_gives_the_task_to_their_delegate(
    tmp_path: Path,
) -> None:
    with ServerProcess(workdir=tmp_path, env=FAST) as server:
        lead = await add_user(server, "Lee Lead", email="lead@acme.test")
        deputy = await add_user(server, "Dee Deputy", email="deputy@acme.test")
        back = (datetime.now(UTC) + timedelta(days=7)).isoformat()
        async with admin(server) as http:
            away = await http.patch(
                f"/api/admin/users/{lead}",
                json={"away_until": back, "delegate_to_user_id": deputy},
            )
        assert away.status_code == 200, away.text
        made = await create(
            server,
            [],
            escalate_after=1 * HOURS,
            escalate_to=["email:lead@acme.test"],
            escalate_reassign=True,
            timeout_seconds=86_400,
        )
        await move_clock(server.database_url, 2 * HOURS, [made["id"]])

        async def escalated() -> list[dict[str, Any]]:
            return await audit(server, made["id"], "escalation")

        (row,) = await until(escalated, timeout=20, why=server.logs)
        assert row["detail"]["reassigned_to"] == deputy
        (hop,) = row["detail"]["delegated"]
        assert (hop["from"], hop["to"]) == (lead, deputy)
        assert row["detail"]["message"].endswith("; reassigned to deputy@acme.test")
        assert (await task(server, made["id"]))["assigned_to_user_id"] == deputy
