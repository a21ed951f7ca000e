"""What the Slack tests do over and over: create tasks, people, and look at Slack."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import httpx
from pydantic import BaseModel

from awaithumans.core import Ask
from awaithumans.testing import ServerProcess
from tests._waiting import until
from tests.support.slack_standin import SIGNING_SECRET, TEAM, Message, SlackStandIn, signed


class Refund(BaseModel):
    order_id: str
    amount_usd: int


class Decision(BaseModel):
    approved: bool
    notes: str | None = None


def admin(server: ServerProcess) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {server.admin_token}"}, timeout=10
    )


async def create(
    server: ServerProcess,
    notify: list[str],
    *,
    response_schema: type[BaseModel] = Decision,
    **extra: Any,
) -> dict[str, Any]:
    body = Ask(
        task=extra.pop("task", "Refund $42 for ord_7?"),
        payload_schema=Refund,
        payload=extra.pop("payload", Refund(order_id="ord_7", amount_usd=42)),
        response_schema=response_schema,
        timeout_seconds=extra.pop("timeout_seconds", 900),
        idempotency_key=f"slack-{uuid.uuid4().hex}",
        notify=notify,
        **extra,
    ).request()
    async with admin(server) as http:
        made = await http.post("/api/tasks", json=body.model_dump(mode="json", exclude_none=True))
    assert made.status_code == 201, made.text
    task: dict[str, Any] = made.json()
    return task


async def add_user(
    server: ServerProcess,
    display_name: str,
    *,
    email: str | None = None,
    slack_user_id: str | None = None,
    operator: bool = False,
) -> str:
    body: dict[str, Any] = {"display_name": display_name, "is_operator": operator}
    if email:
        body["email"] = email
        body["password"] = "correct horse battery staple"
    if slack_user_id:
        body["slack_user_id"] = slack_user_id
    async with admin(server) as http:
        made = await http.post("/api/admin/users", json=body)
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def task(server: ServerProcess, task_id: str) -> dict[str, Any]:
    async with admin(server) as http:
        found: dict[str, Any] = (await http.get(f"/api/tasks/{task_id}")).json()
    return found


async def deliveries(server: ServerProcess, task_id: str) -> list[dict[str, Any]]:
    async with admin(server) as http:
        got = await http.get("/api/admin/deliveries", params={"task_id": task_id})
    assert got.status_code == 200, got.text
    rows: list[dict[str, Any]] = got.json()
    return rows


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
