"""Approvers and votes in Slack, against the Slack stand-in and a real server process.

A broadcast of a task that needs two approvals of the finance role: someone not in the
role pressing Claim is told why (ephemeral) and nothing changes; a finance member claims,
votes in the modal, and the message shows "1 of 2 approvals" with their name; their second
try is told they already voted; a second member's vote completes the task and the message
shows the outcome with both votes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from awaithumans.testing import ServerProcess
from tests._waiting import until
from tests.slack._helpers import (
    action_payload,
    admin,
    buttons,
    create,
    interact,
    posted,
    submission_payload,
    task,
    texts,
)
from tests.slack.conftest import FAST
from tests.support.slack_standin import Member, SlackStandIn

NOT_APPROVER = "Only this task's approvers can answer it; you're not one of them."
YES = {"approved": {"type": "radio_buttons", "selected_option": {"value": "true"}}}


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn() as running:
        yield running


@pytest.fixture
def server(database_url: str, tmp_path: Path, slack: SlackStandIn) -> Iterator[ServerProcess]:
    env = {**slack.env(), **FAST}
    with ServerProcess(database_url=database_url, workdir=tmp_path, env=env) as running:
        yield running


async def person(server: ServerProcess, slack: SlackStandIn, member: str, name: str,
                 roles: list[str]) -> None:  # fmt: skip
    slack.members[member] = Member(member, name.lower(), name)
    async with admin(server) as http:
        made = await http.post(
            "/api/admin/users",
            json={"display_name": name, "slack_user_id": member, "roles": roles,
                  "email": f"{name.lower()}@acme.com", "password": "correct horse battery"},
        )  # fmt: skip
    assert made.status_code == 201, made.text


async def opened(slack: SlackStandIn, server: ServerProcess, count: int) -> list[Any]:
    async def check() -> list[Any] | None:
        found = [v for v in slack.views if not v.get("update")]
        return found if len(found) >= count else None

    found: list[Any] = await until(check, timeout=15, why=server.logs)
    return found


async def told(slack: SlackStandIn, server: ServerProcess, count: int) -> list[dict[str, Any]]:
    async def check() -> list[dict[str, Any]] | None:
        return slack.ephemeral if len(slack.ephemeral) >= count else None

    found: list[dict[str, Any]] = await until(check, timeout=15, why=server.logs)
    return found


async def test_two_finance_votes_in_slack(server: ServerProcess, slack: SlackStandIn) -> None:
    await person(server, slack, "U0BOB0001", "Bob", ["finance"])
    await person(server, slack, "U0CAROL02", "Carol", ["finance"])
    await person(server, slack, "U0RITA003", "Rita", [])
    made = await create(
        server, ["slack:#approvals"], approvers=["role:finance"], approvals_required=2
    )
    task_id = made["id"]
    (message,) = await posted(slack, server)
    assert "0 of 2 approvals" in texts(message)

    # Rita is not in finance: told so, nothing changes.
    await interact(server, action_payload("U0RITA003", "awaithumans_claim", task_id, message))
    (note,) = await told(slack, server, 1)
    assert (note["user"], note["text"]) == ("U0RITA003", NOT_APPROVER)
    before = await task(server, task_id)
    assert before["status"] in ("created", "notified")
    assert before["assigned_to_user_id"] is None

    # Bob claims (the modal opens) and votes yes.
    await interact(server, action_payload("U0BOB0001", "awaithumans_claim", task_id, message))
    (first,) = await opened(slack, server, 1)
    sent = await interact(server, submission_payload("U0BOB0001", first["view"], YES))
    assert sent.json()["response_action"] == "update", sent.text

    async def progressed() -> bool:
        return "1 of 2 approvals · ✓ Bob" in texts(message)

    await until(progressed, timeout=15, why=server.logs)
    assert (await task(server, task_id))["status"] == "in_progress"

    # His second try: told he voted already, no modal.
    await interact(server, action_payload("U0BOB0001", "awaithumans_open_modal", task_id, message))
    notes = await told(slack, server, 2)
    assert notes[-1]["text"] == "You already voted on this task; it waits for the other approvers."
    assert len([v for v in slack.views if not v.get("update")]) == 1

    # Carol's vote completes it: the message shows the outcome and both votes.
    await interact(server, action_payload("U0CAROL02", "awaithumans_open_modal", task_id, message))
    second = (await opened(slack, server, 2))[-1]
    sent = await interact(server, submission_payload("U0CAROL02", second["view"], YES))
    assert sent.json()["response_action"] == "update", sent.text

    async def ended() -> bool:
        return "2 of 2 approvals · ✓ Bob · ✓ Carol" in texts(message) and not buttons(message)

    await until(ended, timeout=15, why=server.logs)
    done = await task(server, task_id)
    assert done["status"] == "completed"
    assert [(a["display_name"], a["channel"]) for a in done["approvals"]] == [
        ("Bob", "slack"),
        ("Carol", "slack"),
    ]


async def test_a_modal_submitted_by_someone_not_listed_is_refused_in_the_modal(
    server: ServerProcess, slack: SlackStandIn
) -> None:
    await person(server, slack, "U0BOB0001", "Bob", ["finance"])
    await person(server, slack, "U0RITA003", "Rita", [])
    # A DM to Rita makes her the assignee; she is still not an approver.
    made = await create(server, ["slack:U0RITA003"], approvers=["role:finance"])
    (message,) = await posted(slack, server)
    await interact(server, action_payload("U0RITA003", "awaithumans_open_modal", made["id"],
                                          message))  # fmt: skip
    (note,) = await told(slack, server, 1)
    assert note["text"] == NOT_APPROVER
    # A submission forged from another view is refused at the modal's first field.
    await interact(server, action_payload("U0BOB0001", "awaithumans_open_modal", made["id"],
                                          message))  # fmt: skip
    (view,) = await opened(slack, server, 1)
    forged = await interact(server, submission_payload("U0RITA003", view["view"], YES))
    assert forged.json() == {"response_action": "errors", "errors": {"f:approved": NOT_APPROVER}}
    found = await task(server, made["id"])
    assert found["status"] != "completed"
    assert found["assigned_to_user_id"] is not None
