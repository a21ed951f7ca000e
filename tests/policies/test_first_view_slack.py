"""Time to first view through Slack: opening the task's modal is a person's first view.

A real server process against the Slack stand-in, on SQLite and PostgreSQL. The server does
not show ``first_viewed_at`` in a task's JSON; ``/api/stats`` is where it surfaces.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from awaithumans.testing import ServerProcess
from tests._waiting import until
from tests.slack._helpers import action_payload, add_user, admin, create, interact, posted, task
from tests.support.slack_standin import SlackStandIn

FAST = {
    "AWAITHUMANS_OUTBOX_POLL_SECONDS": "0.3",
    "AWAITHUMANS_SCHEDULER_MAX_SLEEP_SECONDS": "0.2",
}


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn() as running:
        yield running


@pytest.fixture
def slack_server(database_url: str, tmp_path: Path, slack: SlackStandIn) -> Iterator[ServerProcess]:
    env = {**slack.env(), **FAST}
    with ServerProcess(database_url=database_url, workdir=tmp_path, env=env) as server:
        yield server


async def first_view_figures(server: ServerProcess) -> dict[str, Any]:
    async with admin(server) as http:
        got = await http.get("/api/stats")
    assert got.status_code == 200, got.text
    figures: dict[str, Any] = got.json()["totals"]["time_to_first_view_seconds"]
    return figures


async def test_opening_the_slack_modal_is_the_first_view(
    slack_server: ServerProcess, slack: SlackStandIn
) -> None:
    server = slack_server
    await add_user(server, "Alice Archer", email="alice@acme.com", slack_user_id="U0ALICE01")
    made = await create(server, ["slack:@alice"])
    (message,) = await posted(slack, server)

    async def assigned() -> bool:
        return bool((await task(server, made["id"]))["status"] == "assigned")

    await until(assigned, timeout=15, why=server.logs)
    # Posted to Slack and read by the agent: nobody has looked yet.
    assert await first_view_figures(server) == {"p50": None, "p90": None}

    opened = await interact(
        server, action_payload("U0ALICE01", "awaithumans_open_modal", made["id"], message)
    )
    assert opened.status_code == 200

    async def viewed() -> dict[str, Any] | None:
        figures = await first_view_figures(server)
        return figures if figures["p50"] is not None else None

    figures = await until(viewed, timeout=15, why=server.logs)
    assert slack.views, "the modal was opened"
    assert figures["p50"] == figures["p90"]
    assert 0 <= figures["p50"] < 60
    # A second opening changes nothing.
    await interact(
        server, action_payload("U0ALICE01", "awaithumans_open_modal", made["id"], message)
    )

    async def reopened() -> bool:
        return len([v for v in slack.views if not v.get("update")]) >= 2

    await until(reopened, timeout=15, why=server.logs)
    assert await first_view_figures(server) == figures
