"""The person in the integration tests: finds the task an agent's tool call opened and answers
it through the JSON API, as the admin (``POST /api/tasks/{id}/complete``)."""

from __future__ import annotations

from typing import Any

import httpx

from awaithumans.testing import ServerProcess
from tests._waiting import until


def admin(server: ServerProcess) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {server.admin_token}"}, timeout=10
    )


async def listed_tasks(server: ServerProcess) -> list[dict[str, Any]]:
    """The server's tasks as ``GET /api/tasks`` lists them (the first 200)."""
    async with admin(server) as http:
        page = await http.get("/api/tasks", params={"limit": 200})
    assert page.status_code == 200, page.text
    items: list[dict[str, Any]] = page.json()["items"]
    return items


async def task_keys(server: ServerProcess) -> list[str]:
    """The idempotency key of every listed task."""
    return [item["idempotency_key"] for item in await listed_tasks(server)]


async def tasks_with_key(server: ServerProcess, key: str) -> list[dict[str, Any]]:
    """Every task whose idempotency key is ``key`` (there should never be more than one)."""
    return [item for item in await listed_tasks(server) if item["idempotency_key"] == key]


async def task_with_key(server: ServerProcess, key: str, timeout: float = 30.0) -> dict[str, Any]:
    """The task keyed ``key``, read whole (payload, response), once the agent has opened it."""

    async def found() -> list[dict[str, Any]]:
        return await tasks_with_key(server, key)

    (listed,) = await until(found, timeout, why=lambda: server.logs()[-2000:])
    async with admin(server) as http:
        whole: dict[str, Any] = (await http.get(f"/api/tasks/{listed['id']}")).json()
    return whole


async def decide(server: ServerProcess, key: str, response: dict[str, Any]) -> dict[str, Any]:
    """Wait for the task keyed ``key`` and answer it with ``response``; the completed task."""
    task = await task_with_key(server, key)
    async with admin(server) as http:
        done = await http.post(f"/api/tasks/{task['id']}/complete", json={"response": response})
    assert done.status_code == 200, done.text
    completed: dict[str, Any] = done.json()
    assert completed["status"] == "completed"
    return completed


async def read_task(server: ServerProcess, task_id: str) -> dict[str, Any]:
    async with admin(server) as http:
        whole: dict[str, Any] = (await http.get(f"/api/tasks/{task_id}")).json()
    return whole
