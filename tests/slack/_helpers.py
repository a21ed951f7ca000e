"""What the Slack tests do over and over: create tasks, people, and look at Slack."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import httpx

from awaithumans.testing import ServerProcess
from tests._api import Decision, Refund, add_user, admin, create, deliveries, task
from tests._waiting import until
from tests.support.slack_standin import SIGNING_SECRET, TEAM, Message, SlackStandIn, signed

# The channel-agnostic helpers live in tests/_api.py; the Slack tests take them from here too.
__all__ = [
    "Decision",
    "Refund",
    "action_payload",
    "add_user",
    "admin",
    "buttons",
    "create",
    "deliveries",
    "interact",
    "posted",
    "reply_event",
    "send_event",
    "submission_payload",
    "task",
    "texts",
]


async def posted(slack: SlackStandIn, server: ServerProcess, count: int = 1) -> list[Message]:
    """The first ``count`` top-level messages, once Slack has them."""

    async def check() -> list[Message] | None:
        found = slack.posted()
        return found if len(found) >= count else None

    found: list[Message] = await until(check, timeout=15, why=server.logs)
    return found


def texts(message: Message) -> str:
    """Every text of a message's blocks, joined: what a person reads."""
    out: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("text"), str):
                out.append(value["text"])
            for child in value.values():
                walk(child)
        elif isinstance(value, list):
            for child in value:
                walk(child)

    walk(message.blocks)
    return "\n".join(out)


def buttons(message: Message) -> list[dict[str, Any]]:
    return [
        e
        for block in message.blocks
        if block.get("type") == "actions"
        for e in block.get("elements", [])
        if e.get("type") == "button"
    ]


# -- what Slack sends an app ---------------------------------------------------------------


def action_payload(
    member: str, action_id: str, task_id: str, message: Message, *, trigger: str | None = None
) -> dict[str, Any]:
    """A block_actions payload: ``member`` pressed a button of ``message``."""
    return {
        "type": "block_actions",
        "team": {"id": TEAM},
        "user": {"id": member, "team_id": TEAM},
        "trigger_id": trigger or f"trigger-{uuid.uuid4().hex[:12]}",
        "container": {
            "type": "message",
            "channel_id": message.channel,
            "message_ts": message.ts,
        },
        "channel": {"id": message.channel},
        "message": {"ts": message.ts},
        "actions": [{"action_id": action_id, "value": task_id, "block_id": f"task:{task_id}"}],
    }


def submission_payload(
    member: str, view: dict[str, Any], values: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """A view_submission payload: ``member`` submitted ``view`` with ``values``
    (field name -> the element's state, e.g. ``{"type": "plain_text_input", "value": "x"}``)."""
    state = {f"f:{name}": {"value": element} for name, element in values.items()}
    return {
        "type": "view_submission",
        "team": {"id": TEAM},
        "user": {"id": member, "team_id": TEAM},
        "view": {
            "id": "V0STANDIN",
            "callback_id": view["callback_id"],
            "private_metadata": view["private_metadata"],
            "state": {"values": state},
        },
    }


async def interact(
    server: ServerProcess,
    payload: dict[str, Any],
    *,
    secret: str | None = None,
    at: int | None = None,
) -> httpx.Response:
    """POST an interaction to the server, signed as Slack signs it."""
    body = urlencode({"payload": json.dumps(payload)}).encode()
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        **signed(body, secret or SIGNING_SECRET, at),
    }
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        return await http.post("/api/channels/slack/interactions", content=body, headers=headers)


async def send_event(server: ServerProcess, payload: dict[str, Any]) -> httpx.Response:
    """POST an Events API callback to the server, signed as Slack signs it."""
    body = json.dumps(payload).encode()
    headers = {"content-type": "application/json", **signed(body)}
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        return await http.post("/api/channels/slack/events", content=body, headers=headers)


def reply_event(member: str, message: Message, text: str, **extra: Any) -> dict[str, Any]:
    """A message event: ``member`` replied ``text`` in ``message``'s thread."""
    event = {
        "type": "message",
        "channel": message.channel,
        "user": member,
        "text": text,
        "ts": f"{time.time():.6f}",
        "thread_ts": message.ts,
        **extra,
    }
    return {"type": "event_callback", "team_id": TEAM, "event": event}
