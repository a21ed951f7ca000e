"""Socket Mode: the same claims and modals over Slack's websocket, no public URL needed."""

from __future__ import annotations

import asyncio
from typing import Any

from awaithumans.testing import ServerProcess
from tests._waiting import until
from tests.slack._helpers import (
    action_payload,
    add_user,
    create,
    posted,
    submission_payload,
    task,
)
from tests.slack.conftest import ServerFactory
from tests.support.slack_standin import APP_TOKEN, SlackStandIn


async def test_a_claim_and_its_modal_over_the_websocket(
    make_server: ServerFactory, slack: SlackStandIn
) -> None:
    with make_server(AWAITHUMANS_SLACK_APP_TOKEN=APP_TOKEN) as server:
        assert await asyncio.to_thread(slack.socket_mode.wait_connected, 15), server.logs()
        await add_user(server, "Alice Archer", email="alice@acme.com", slack_user_id="U0ALICE01")
        made = await create(server, ["slack:#approvals"])
        (message,) = await posted(slack, server)
        claim = action_payload("U0ALICE01", "awaithumans_claim", made["id"], message)
        ack = await asyncio.to_thread(slack.socket_mode.send, "interactive", claim)
        assert "payload" not in ack or not ack["payload"]

        async def opened() -> list[Any] | None:
            return slack.views or None

        (record,) = await until(opened, timeout=15, why=server.logs)
        answer: dict[str, dict[str, Any]] = {
            "approved": {"type": "radio_buttons", "selected_option": {"value": "true"}},
            "notes": {"type": "plain_text_input", "value": "via the socket"},
        }
        submitted = submission_payload("U0ALICE01", record["view"], answer)
        done_ack = await asyncio.to_thread(slack.socket_mode.send, "interactive", submitted)
        assert done_ack["payload"]["response_action"] == "update"
        done = await _completed(server, made["id"])
    assert done["response"] == {"approved": True, "notes": "via the socket"}
    assert done["completed_via_channel"] == "slack"
    assert [c.token for c in slack.calls_to("apps.connections.open")] == [APP_TOKEN]


async def _completed(server: ServerProcess, task_id: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        found = await task(server, task_id)
        return found if found["status"] == "completed" else None

    found: dict[str, Any] = await until(check, timeout=15, why=server.logs)
    return found
