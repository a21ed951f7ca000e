"""Answering in Slack: claims (one winner among many), the modal with every field kind,
errors shown in the modal, who may answer, and what an unsigned request gets."""

from __future__ import annotations

import asyncio
import time
from datetime import date
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from awaithumans.testing import ServerProcess
from tests._waiting import until
from tests.slack._helpers import (
    action_payload,
    add_user,
    admin,
    buttons,
    create,
    interact,
    posted,
    submission_payload,
    task,
    texts,
)
from tests.support.slack_standin import Member, SlackStandIn


class Tier(StrEnum):
    GOLD = "gold"
    SILVER = "silver"


class Review(BaseModel):
    approved: bool
    tier: Tier
    tags: list[Tier] = Field(default_factory=list)
    note: str = Field(max_length=80)
    explanation: str | None = Field(default=None, max_length=2000)
    amount: float = Field(ge=0, le=1000)
    due: date


async def _views(slack: SlackStandIn, server: ServerProcess, count: int = 1) -> list[Any]:
    async def opened() -> list[Any] | None:
        found = [v for v in slack.views if not v.get("update")]
        return found if len(found) >= count else None

    found: list[Any] = await until(opened, timeout=15, why=server.logs)
    return found


async def _status(server: ServerProcess, task_id: str, status: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        found = await task(server, task_id)
        return found if found["status"] == status else None

    found: dict[str, Any] = await until(check, timeout=15, why=server.logs)
    return found


async def test_twenty_clicks_at_once_make_one_claim(
    server: ServerProcess, slack: SlackStandIn
) -> None:
    members = [f"U0CLICK{i:03d}" for i in range(20)]
    for i, member in enumerate(members):
        slack.members[member] = Member(member, f"clicker{i}", f"Clicker {i}")
        await add_user(server, f"Clicker {i}", slack_user_id=member)
    made = await create(server, ["slack:#approvals"])
    (message,) = await posted(slack, server)
    replies = await asyncio.gather(
        *(
            interact(server, action_payload(m, "awaithumans_claim", made["id"], message))
            for m in members
        )
    )
    assert all(r.status_code == 200 for r in replies)
    await _views(slack, server)
    found = await _status(server, made["id"], "in_progress")
    # One modal, for the winner; everyone else is told who has it.

    async def told() -> bool:
        return len(slack.ephemeral) == 19

    await until(told, timeout=15, why=server.logs)
    claimer = found["assigned_to_user_id"]
    async with admin(server) as http:
        trail = (await http.get(f"/api/tasks/{made['id']}/audit")).json()
    claims = [r for r in trail if r["action"] == "claimed"]
    assert len(claims) == 1
    assert claims[0]["channel"] == "slack"
    assert claims[0]["actor_id"] == claimer
    winners = {e["user"] for e in slack.ephemeral}
    assert len(winners) == 19
    (winner_member,) = set(members) - winners
    told_texts = {e["text"] for e in slack.ephemeral}
    assert told_texts == {f"Already claimed by <@{winner_member}>."}, told_texts
    # A click that comes after the claim (not during the race) is told the same.
    late = next(iter(winners))
    await interact(server, action_payload(late, "awaithumans_claim", made["id"], message))

    async def told_late() -> bool:
        return len(slack.ephemeral) == 20

    await until(told_late, timeout=15, why=server.logs)
    assert slack.ephemeral[-1]["text"] == f"Already claimed by <@{winner_member}>."

    async def rewritten() -> bool:
        return message.updates >= 1

    await until(rewritten, timeout=15, why=server.logs)
    assert f"Claimed by <@{winner_member}>" in texts(message)
    answer, dashboard = buttons(message)
    assert answer["text"]["text"] == "Answer"
    assert "/handoff?t=" in dashboard["url"]  # signed for the claimer


async def test_the_modal_shows_every_field_kind_and_its_answer_lands(
    server: ServerProcess, slack: SlackStandIn
) -> None:
    alice = await add_user(server, "Alice Archer", email="alice@acme.com",
                           slack_user_id="U0ALICE01")  # fmt: skip
    made = await create(server, ["slack:@alice"], response_schema=Review)
    (message,) = await posted(slack, server)
    await _status(server, made["id"], "assigned")
    opened = await interact(
        server, action_payload("U0ALICE01", "awaithumans_open_modal", made["id"], message)
    )
    assert opened.status_code == 200
    (record,) = await _views(slack, server)
    view = record["view"]
    kinds = {b["block_id"]: b["element"]["type"] for b in view["blocks"] if b["type"] == "input"}
    assert kinds == {
        "f:approved": "radio_buttons",
        "f:tier": "static_select",
        "f:tags": "multi_static_select",
        "f:note": "plain_text_input",
        "f:explanation": "plain_text_input",
        "f:amount": "number_input",
        "f:due": "datepicker",
    }
    values: dict[str, dict[str, Any]] = {
        "approved": {"type": "radio_buttons", "selected_option": {"value": "true"}},
        "tier": {"type": "static_select", "selected_option": {"value": "gold"}},
        "tags": {"type": "multi_static_select",
                 "selected_options": [{"value": "gold"}, {"value": "silver"}]},
        "note": {"type": "plain_text_input", "value": "Refund half"},
        "explanation": {"type": "plain_text_input", "value": "line one\nline two"},
        "amount": {"type": "number_input", "value": "12.5"},
        "due": {"type": "datepicker", "selected_date": "2026-12-24"},
    }  # fmt: skip
    sent = await interact(server, submission_payload("U0ALICE01", view, values))
    assert sent.status_code == 200, sent.text
    assert sent.json()["response_action"] == "update"  # a thank-you replaces the form
    done = await _status(server, made["id"], "completed")
    assert done["response"] == {
        "approved": True,
        "tier": "gold",
        "tags": ["gold", "silver"],
        "note": "Refund half",
        "explanation": "line one\nline two",
        "amount": 12.5,
        "due": "2026-12-24",
    }
    assert done["completed_by_user_id"] == alice
    assert done["completed_by_email"] == "alice@acme.com"
    assert done["completed_via_channel"] == "slack"


async def test_errors_come_back_at_the_field_and_nothing_changes(
    server: ServerProcess, slack: SlackStandIn
) -> None:
    await add_user(server, "Alice Archer", email="alice@acme.com", slack_user_id="U0ALICE01")
    made = await create(server, ["slack:U0ALICE01"], response_schema=Review)
    (message,) = await posted(slack, server)
    await interact(
        server, action_payload("U0ALICE01", "awaithumans_open_modal", made["id"], message)
    )
    (record,) = await _views(slack, server)
    values: dict[str, dict[str, Any]] = {
        "approved": {"type": "radio_buttons", "selected_option": {"value": "false"}},
        "tier": {"type": "static_select", "selected_option": None},
        "note": {"type": "plain_text_input", "value": "x" * 81},
        "amount": {"type": "number_input", "value": "5000"},
        "due": {"type": "datepicker", "selected_date": "2026-12-24"},
    }
    sent = await interact(server, submission_payload("U0ALICE01", record["view"], values))
    body = sent.json()
    assert body["response_action"] == "errors"
    assert set(body["errors"]) == {"f:tier", "f:note", "f:amount"}
    assert (await task(server, made["id"]))["status"] == "assigned"


async def test_only_the_assignee_or_an_operator_may_answer(
    server: ServerProcess, slack: SlackStandIn
) -> None:
    await add_user(server, "Alice Archer", email="alice@acme.com", slack_user_id="U0ALICE01")
    await add_user(server, "Bob Baker", email="bob@acme.com", slack_user_id="U0BOB0002")
    made = await create(server, ["slack:U0ALICE01"])
    (message,) = await posted(slack, server)
    await interact(
        server, action_payload("U0ALICE01", "awaithumans_open_modal", made["id"], message)
    )
    (record,) = await _views(slack, server)
    answer = {"approved": {"type": "radio_buttons", "selected_option": {"value": "true"}}}
    bob = await interact(server, submission_payload("U0BOB0002", record["view"], answer))
    stranger = await interact(server, submission_payload("U0CAROL03", record["view"], answer))
    assert bob.json()["errors"] == {"f:approved": "This task isn't assigned to you."}
    assert "not in this awaithumans directory" in stranger.json()["errors"]["f:approved"]
    assert (await task(server, made["id"]))["status"] == "assigned"
    # Bob pressing the DM's button is told too, and no modal opens for him.
    await interact(server, action_payload("U0BOB0002", "awaithumans_open_modal", made["id"],
                                          message))  # fmt: skip

    async def told() -> bool:
        return any(e["user"] == "U0BOB0002" for e in slack.ephemeral)

    await until(told, timeout=15, why=server.logs)
    assert len([v for v in slack.views if not v.get("update")]) == 1


async def test_a_member_is_linked_to_the_directory_by_email_on_first_click(
    server: ServerProcess, slack: SlackStandIn
) -> None:
    bob = await add_user(server, "Bob Baker", email="bob@acme.com")  # no Slack member yet
    made = await create(server, ["slack:#approvals"])
    (message,) = await posted(slack, server)
    await interact(server, action_payload("U0BOB0002", "awaithumans_claim", made["id"], message))
    found = await _status(server, made["id"], "in_progress")
    assert found["assigned_to_user_id"] == bob
    async with admin(server) as http:
        users = (await http.get("/api/admin/users")).json()
    linked = next(u for u in users if u["id"] == bob)
    assert linked["slack_user_id"] == "U0BOB0002"


async def test_unsigned_forged_and_stale_requests_change_nothing(
    server: ServerProcess, slack: SlackStandIn
) -> None:
    await add_user(server, "Alice Archer", slack_user_id="U0ALICE01", operator=True)
    made = await create(server, ["slack:#approvals"])
    (message,) = await posted(slack, server)
    claim = action_payload("U0ALICE01", "awaithumans_claim", made["id"], message)
    forged = await interact(server, claim, secret="not-the-secret")
    stale = await interact(server, claim, at=int(time.time()) - 600)
    assert (forged.status_code, forged.json()["error"]) == (401, "INVALID_SIGNATURE")
    assert stale.status_code == 401
    assert (await task(server, made["id"]))["status"] == "notified"
    assert slack.views == []
