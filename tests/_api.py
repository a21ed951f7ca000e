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


async def create_and_complete(
    api: httpx.AsyncClient, body: dict[str, Any], response: dict[str, Any] | None = None
) -> str:
    """Create a task from ``body`` and answer it at once (``{"ok": true}`` by default)."""
    created = await api.post("/api/tasks", json=body)
    assert created.status_code == 201, created.text
    task_id: str = created.json()["id"]
    answer = {"response": response if response is not None else {"ok": True}}
    done = await api.post(f"/api/tasks/{task_id}/complete", json=answer)
    assert done.status_code == 200, done.text
    return task_id


async def expire_every_deadline(postgres_url: str) -> None:
    """Move every task's deadline into the past at once, from outside the servers, so their
    schedulers race for the timeouts (PostgreSQL)."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(postgres_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE tasks SET timeout_at = now() - interval '1 second'"))
    finally:
        await engine.dispose()


def assert_one_timeout_webhook_each(deliveries: list[Any], task_ids: list[str]) -> None:
    """Every task's timeout reached the receiver, each under one webhook id."""
    ids_by_task: dict[str, set[str]] = {}
    for delivery in deliveries:
        event = delivery.json()
        assert event["type"] == "task.timed_out", event
        ids_by_task.setdefault(event["data"]["task_id"], set()).add(delivery.headers["webhook-id"])
    assert set(ids_by_task) == set(task_ids)
    assert all(len(ids) == 1 for ids in ids_by_task.values()), ids_by_task
