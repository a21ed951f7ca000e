"""``examples/slack-native`` as its README runs it: a server with a bot token and Socket
Mode (no public URL, no signing secret), the script as a subprocess, and the reviewer
answering in Slack's modal, all against the Slack stand-in."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from awaithumans.testing import ServerProcess
from tests._waiting import until
from tests.slack._helpers import action_payload, add_user, buttons, submission_payload, texts
from tests.support.slack_standin import APP_TOKEN, BOT_TOKEN, Message, SlackStandIn

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "slack-native"


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn() as running:
        yield running


@pytest.fixture
def server(slack: SlackStandIn, tmp_path: Path) -> Iterator[ServerProcess]:
    # The README's environment: the two tokens. Only the API URL differs (the stand-in).
    env = {
        "AWAITHUMANS_SLACK_BOT_TOKEN": BOT_TOKEN,
        "AWAITHUMANS_SLACK_APP_TOKEN": APP_TOKEN,
        "AWAITHUMANS_SLACK_API_URL": slack.api_url,
        "AWAITHUMANS_OUTBOX_POLL_SECONDS": "0.3",
    }
    with ServerProcess(workdir=tmp_path, env=env) as running:
        yield running


async def test_the_refund_dm_is_answered_in_slack(
    server: ServerProcess, slack: SlackStandIn
) -> None:
    assert await asyncio.to_thread(slack.socket_mode.wait_connected, 15), server.logs()
    # The person who set up the dashboard with their work email: the DM finds them by it.
    alice = await add_user(server, "Alice Archer", email="alice@acme.com")
    order = f"ord_{uuid.uuid4().hex[:6]}"
    env = {
        **os.environ,
        "AWAITHUMANS_URL": server.url,
        "AWAITHUMANS_API_KEY": server.admin_token,
    }
    script = await asyncio.create_subprocess_exec(
        sys.executable,
        "refund.py",
        "alice@acme.com",
        order,
        cwd=EXAMPLE,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        dm = await _first_message(slack, server)
        assert dm.channel == slack.dm_channel("U0ALICE01")
        assert f"Refund $180 for order {order}?" in texts(dm)
        labels = {b["text"]["text"]: b for b in buttons(dm)}
        assert set(labels) == {"Approve in Slack", "Open in Dashboard"}
        handoff = labels["Open in Dashboard"]["url"]
        assert handoff.startswith(f"{server.url}/handoff?")
        task_id = labels["Approve in Slack"]["value"]

        await asyncio.to_thread(
            slack.socket_mode.send,
            "interactive",
            action_payload("U0ALICE01", "awaithumans_open_modal", task_id, dm),
        )
        (opened,) = await until(_views(slack), timeout=15, why=server.logs)
        answer: dict[str, dict[str, Any]] = {
            "approved": {"type": "radio_buttons", "selected_option": {"value": "true"}},
            "notes": {"type": "plain_text_input", "value": "Photo shows the crack"},
        }
        ack = await asyncio.to_thread(
            slack.socket_mode.send,
            "interactive",
            submission_payload("U0ALICE01", opened["view"], answer),
        )
        assert ack["payload"]["response_action"] == "update"
        out, err = await asyncio.wait_for(script.communicate(), 30)
    finally:
        if script.returncode is None:
            script.kill()
            await script.wait()
    assert script.returncode == 0, err.decode()
    assert out.decode() == f"Refund for {order} approved: Photo shows the crack\n"
    assert f"Review at: {server.url}/task?id={task_id}" in err.decode()

    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {server.admin_token}"}
    ) as http:
        task = (await http.get(f"/api/tasks/{task_id}")).json()
        audit = (await http.get(f"/api/tasks/{task_id}/audit")).json()
    # Alice answered, as herself; the DM linked her Slack member to her account.
    assert task["assigned_to_user_id"] == alice
    assert task["completed_by_user_id"] == alice
    assert task["completed_via_channel"] == "slack"
    # Alice's email on the route made her the assignee when the task was created.
    assert (audit[0]["action"], audit[0]["to_status"]) == ("created", "assigned")
    assert (audit[-1]["action"], audit[-1]["channel"]) == ("completed", "slack")

    # The DM is rewritten to its outcome: no buttons left to press.
    async def rewritten() -> Message | None:
        now = slack.messages[(dm.channel, dm.ts)]
        return now if now.updates and not buttons(now) else None

    final = await until(rewritten, timeout=15, why=server.logs)
    assert texts(final).endswith("\n✅ Completed by Alice Archer via slack")

    # Stopping the server closes the websocket cleanly: nothing is logged as an error.
    server.stop()
    assert "Failed to receive" not in server.logs(), server.logs()


async def _first_message(slack: SlackStandIn, server: ServerProcess) -> Message:
    async def check() -> Message | None:
        found = slack.posted()
        return found[0] if found else None

    found: Message = await until(check, timeout=20, why=server.logs)
    return found


def _views(slack: SlackStandIn) -> Any:
    async def check() -> list[dict[str, Any]] | None:
        return list(slack.views) or None

    return check
