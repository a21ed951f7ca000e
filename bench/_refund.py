"""The refund task every latency benchmark asks a human about."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from pydantic import BaseModel, Field


class RefundRequest(BaseModel):
    order_id: str
    customer_id: str
    amount_usd: float
    reason: str


class RefundDecision(BaseModel):
    approved: bool = Field(description="Send the money back?")
    notes: str | None = Field(default=None, description="Anything the agent should know")


def payload(i: int) -> RefundRequest:
    return RefundRequest(
        order_id=f"ord_{i:06d}",
        customer_id="cus_4f2a91",
        amount_usd=round(10 + i * 0.37, 2),
        reason="Duplicate charge",
    )


def answer(i: int) -> dict[str, Any]:
    return {"approved": i % 2 == 0, "notes": f"checked order {i}"}


async def waiting_polls(http: httpx.AsyncClient) -> int:
    resp = await http.get("/api/health")
    resp.raise_for_status()
    return int(resp.json()["waiting_polls"])


async def wait_for_parked(
    http: httpx.AsyncClient, at_least: int, *, timeout: float, interval: float = 0.002
) -> None:
    """Return once the server holds ``at_least`` long-polls (its /api/health says so)."""
    deadline = time.monotonic() + timeout
    while True:
        if await waiting_polls(http) >= at_least:
            return
        if time.monotonic() > deadline:
            got = await waiting_polls(http)
            raise TimeoutError(f"only {got} of {at_least} long-polls parked after {timeout}s")
        await asyncio.sleep(interval)


async def task_ids(http: httpx.AsyncClient, keys: set[str]) -> dict[str, str]:
    """idempotency_key -> task id for the given keys, paging the list API (newest first).

    The keys' tasks are the newest ones (the benchmark just created them), so the first page,
    sized to the number of keys, usually has them all: a list request is not cheap.
    """
    found: dict[str, str] = {}
    cursor: str | None = None
    while len(found) < len(keys):
        params: dict[str, Any] = {"limit": max(1, min(200, len(keys)))}
        if cursor:
            params["cursor"] = cursor
        resp = await http.get("/api/tasks", params=params)
        resp.raise_for_status()
        page = resp.json()
        for item in page["items"]:
            if item["idempotency_key"] in keys:
                found[item["idempotency_key"]] = item["id"]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    missing = keys - found.keys()
    if missing:
        raise RuntimeError(f"{len(missing)} tasks not found, e.g. {sorted(missing)[:3]}")
    return found
