"""What the verifier tests do over and over: create a verified task, answer it, watch it."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from pydantic import BaseModel

from awaithumans import await_human
from awaithumans.core import Ask
from awaithumans.testing import ServerProcess
from awaithumans.verifiers import VerifierConfig
from tests._waiting import until


class Refund(BaseModel):
    amount_usd: int
    customer_id: str
    reason: str


class Decision(BaseModel):
    approved: bool
    notes: str | None = None


def refund(amount: int = 250, reason: str = "Duplicate charge") -> Refund:
    return Refund(amount_usd=amount, customer_id="cus_1", reason=reason)


def verifier(provider: str = "claude", **options: Any) -> VerifierConfig:
    return VerifierConfig(
        provider=provider,
        instructions=options.pop("instructions", "Notes required: reject an answer without."),
        **options,
    )


def body(
    config: VerifierConfig | None,
    *,
    payload: Refund | None = None,
    key: str | None = None,
    redact: bool = False,
) -> dict[str, Any]:
    """A create request as the SDK builds it."""
    return (
        Ask(
            task="Approve $250 refund?",
            payload_schema=Refund,
            payload=payload or refund(),
            response_schema=Decision,
            timeout_seconds=900,
            idempotency_key=key or f"verify-{uuid.uuid4().hex}",
            verifier=config,
            redact_payload=redact,
        )
        .request()
        .model_dump(mode="json", exclude_none=True)
    )


def admin(server: ServerProcess) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.url,
        headers={"Authorization": f"Bearer {server.admin_token}"},
        timeout=10,
    )


async def create(server: ServerProcess, config: VerifierConfig | None, **extra: Any) -> str:
    async with admin(server) as http:
        made = await http.post("/api/tasks", json=body(config, **extra))
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def answer(
    server: ServerProcess, task_id: str, response: dict[str, Any] | None = None, **extra: Any
) -> httpx.Response:
    payload: dict[str, Any] = dict(extra)
    if response is not None:
        payload["response"] = response
    async with admin(server) as http:
        return await http.post(f"/api/tasks/{task_id}/complete", json=payload)


async def task(server: ServerProcess, task_id: str) -> dict[str, Any]:
    async with admin(server) as http:
        got = await http.get(f"/api/tasks/{task_id}")
    assert got.status_code == 200, got.text
    found: dict[str, Any] = got.json()
    return found


async def audit(server: ServerProcess, task_id: str) -> list[dict[str, Any]]:
    async with admin(server) as http:
        got = await http.get(f"/api/tasks/{task_id}/audit")
    assert got.status_code == 200, got.text
    rows: list[dict[str, Any]] = got.json()
    return rows


async def reaches(
    server: ServerProcess, task_id: str, status: str, timeout: float = 20
) -> dict[str, Any]:
    """The task, once it is in ``status``."""

    async def check() -> dict[str, Any] | None:
        found = await task(server, task_id)
        return found if found["status"] == status else None

    found: dict[str, Any] = await until(check, timeout=timeout, why=server.logs)
    return found


async def ask_refund(
    server: ServerProcess, config: VerifierConfig
) -> tuple[asyncio.Task[Decision], str]:
    """An agent's ``await_human`` for the refund, under ``config``, waiting in the
    background: its task and the id of the task it created."""
    waiting = asyncio.create_task(
        await_human(
            task="Approve $250 refund?",
            payload_schema=Refund,
            payload=refund(),
            response_schema=Decision,
            timeout_seconds=900,
            verifier=config,
            server_url=server.url,
            api_key=server.admin_token,
        )
    )

    async def created() -> str | None:
        if waiting.done():
            waiting.result()  # raise what went wrong
        async with httpx.AsyncClient(
            base_url=server.url,
            headers={"Authorization": f"Bearer {server.admin_token}"},
            timeout=10,
        ) as http:
            items = (await http.get("/api/tasks")).json()["items"]
        return str(items[0]["id"]) if items else None

    task_id: str = await until(created, timeout=15, why=server.logs)
    return waiting, task_id
