"""What channel tests do over and over through the JSON API: create tasks and people, read
a task and its deliveries, as the admin token."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from pydantic import BaseModel

from awaithumans.core import Ask
from awaithumans.testing import ServerProcess


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
        idempotency_key=f"test-{uuid.uuid4().hex}",
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
