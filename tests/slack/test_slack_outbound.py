"""Posting to Slack: a broadcast in a channel, a DM to a member, the rewrite at the end,
and Slack's failures handled without ever slowing or failing task creation."""

from __future__ import annotations

import time

from awaithumans.testing import ServerProcess
from tests._waiting import until
from tests.slack._helpers import (
    add_user,
    admin,
    buttons,
    create,
    deliveries,
    posted,
    task,
    texts,
)
from tests.slack.conftest import ServerFactory
from tests.support.slack_standin import BOT_TOKEN, SlackStandIn


async def _status(server: ServerProcess, task_id: str, status: str) -> dict[str, object]:
    async def check() -> dict[str, object] | None:
        found = await task(server, task_id)
        return found if found["status"] == status else None

    found: dict[str, object] = await until(check, timeout=15, why=server.logs)
    return found


async def test_a_channel_gets_a_broadcast_with_a_claim_button(
    server: ServerProcess, slack: SlackStandIn
) -> None:
    made = await create(server, ["slack:#approvals"])
    (message,) = await posted(slack, server)
    assert message.channel == "C0APPROVAL"
    shown = texts(message)
    assert "Refund $42 for ord_7?" in shown
    assert "*order_id*\nord_7" in shown
    assert "the first to claim answers it" in shown
    (claim,) = buttons(message)
    assert (claim["text"]["text"], claim["value"]) == ("Claim this task", made["id"])
    assert slack.calls_to("chat.postMessage")[0].token == BOT_TOKEN
    await _status(server, made["id"], "notified")
    (job,) = await deliveries(server, made["id"])
    assert (job["target"], job["status"]) == ("slack:#approvals", "delivered")


async def test_a_member_gets_a_dm_and_becomes_the_assignee(
    server: ServerProcess, slack: SlackStandIn
) -> None:
    alice = await add_user(server, "Alice Archer", email="alice@acme.com",
                           slack_user_id="U0ALICE01")  # fmt: skip
    by_handle = await create(server, ["slack:@alice"], task="By handle?")
    by_email = await create(server, ["slack:alice@acme.com"], task="By email?")
    by_id = await create(server, ["slack:U0ALICE01"], task="By id?")
    messages = await posted(slack, server, 3)
    assert {m.channel for m in messages} == {slack.dm_channel("U0ALICE01")}
    for message in messages:
        answer, dashboard = buttons(message)
        assert answer["text"]["text"] == "Approve in Slack"
        assert dashboard["text"]["text"] == "Open in Dashboard"
        assert dashboard["url"].startswith(server.url)
    # Named by id or email, the recipient is the assignee from the start; by handle, once
    # Slack has said who @alice is (the DM went out).
    for made in (by_email, by_id):
        assert made["assigned_to_user_id"] == alice
        assert made["status"] == "assigned"
    assert by_handle["assigned_to_user_id"] is None
    found = await _status(server, by_handle["id"], "assigned")
    assert found["assigned_to_user_id"] == alice


async def test_every_ending_rewrites_the_messages(
    server: ServerProcess, slack: SlackStandIn
) -> None:
    answered = await create(server, ["slack:#approvals", "slack:U0BOB0002"], task="Answered?")
    cancelled = await create(server, ["slack:#approvals"], task="Cancelled?")
    await posted(slack, server, 3)
    async with admin(server) as http:
        done = await http.post(
            f"/api/tasks/{answered['id']}/complete",
            json={"response": {"approved": True, "notes": "ok"}},
        )
        assert done.status_code == 200, done.text
        gone = await http.post(f"/api/tasks/{cancelled['id']}/cancel", json={"reason": "dup"})
        assert gone.status_code == 200, gone.text

    async def rewritten() -> bool:
        return all(m.updates >= 1 for m in slack.posted())

    await until(rewritten, timeout=15, why=server.logs)
    by_title = {m.blocks[0]["text"]["text"]: m for m in slack.posted()}
    for message in slack.posted():
        assert buttons(message) == []  # nothing left to press
    assert "Completed by admin token via api" in texts(by_title["Answered?"])
    assert "Cancelled" in texts(by_title["Cancelled?"])


async def test_a_redacted_payload_stays_out_of_slack(
    server: ServerProcess, slack: SlackStandIn
) -> None:
    await create(server, ["slack:#approvals"], redact_payload=True)
    (message,) = await posted(slack, server)
    assert "order_id" not in texts(message)
    assert "Details hidden" in texts(message)


async def test_an_unknown_member_is_a_failed_delivery_not_a_failed_task(
    server: ServerProcess, slack: SlackStandIn
) -> None:
    made = await create(server, ["slack:@nobody"])

    async def failed() -> dict[str, object] | None:
        jobs = await deliveries(server, made["id"])
        return jobs[0] if jobs and jobs[0]["status"] == "failed" else None

    job = await until(failed, timeout=15, why=server.logs)
    assert "no Slack member @nobody" in str(job["last_error"])
    assert (await task(server, made["id"]))["status"] == "created"


async def test_rate_limits_wait_for_retry_after_and_final_errors_say_what_to_do(
    make_server: ServerFactory, slack: SlackStandIn
) -> None:
    slack.fail_next("chat.postMessage", status=429, retry_after=1)
    with make_server() as server:
        started = time.monotonic()
        made = await create(server, ["slack:#approvals"])
        await posted(slack, server)
        waited = time.monotonic() - started
        tries = slack.calls_to("chat.postMessage")
        assert len(tries) == 2
        assert tries[1].at - tries[0].at >= 1.0  # Retry-After honoured
        assert waited < 10
        await _status(server, made["id"], "notified")

        slack.fail_next("chat.postMessage", error="not_in_channel")
        stuck = await create(server, ["slack:C0GENERAL1"], task="Not in channel?")

        async def failed() -> dict[str, object] | None:
            jobs = await deliveries(server, stuck["id"])
            return jobs[0] if jobs and jobs[0]["status"] == "failed" else None

        job = await until(failed, timeout=15, why=server.logs)
    assert "not_in_channel" in str(job["last_error"])
    assert "/invite @awaithumans" in str(job["last_error"])
    assert len(slack.calls_to("chat.postMessage")) == 3  # the final error was not retried


async def test_slack_down_never_slows_task_creation(
    make_server: ServerFactory, slack: SlackStandIn
) -> None:
    slack.stop()
    with make_server() as server:
        started = time.monotonic()
        made = await create(server, ["slack:#approvals", "slack:@alice"])
        assert time.monotonic() - started < 2
        assert made["status"] == "created"

        async def retrying() -> bool:
            jobs = await deliveries(server, made["id"])
            return all(j["attempts"] >= 1 and j["status"] == "pending" for j in jobs)

        await until(retrying, timeout=15, why=server.logs)


async def test_a_connection_slack_dropped_is_retried(
    server: ServerProcess, slack: SlackStandIn
) -> None:
    # The server keeps its connections to Slack open between calls; Slack (here, the
    # stand-in restarted on the same port) may close them meanwhile.
    await create(server, ["slack:#approvals"], task="First")
    await posted(slack, server)
    slack.stop()
    slack.start()
    made = await create(server, ["slack:#approvals"], task="After the drop")

    async def delivered() -> dict[str, object] | None:
        jobs = await deliveries(server, made["id"])
        return jobs[0] if jobs and jobs[0]["status"] == "delivered" else None

    await until(delivered, timeout=30, why=server.logs)
    assert [m.text for m in slack.posted() if "After the drop" in m.text]
