"""The refund task every latency benchmark asks a human about, and how they time it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from pydantic import BaseModel, Field

from awaithumans import await_human


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


async def timed_wait(i: int, key: str, url: str, token: str) -> tuple[RefundDecision, float]:
    """``await_human`` for refund ``i`` at ``url``: (its answer, ``perf_counter()`` at return)."""
    decision = await await_human(
        task=f"Refund order ord_{i:06d}?",
        payload_schema=RefundRequest,
        payload=payload(i),
        response_schema=RefundDecision,
        timeout_seconds=3600,
        idempotency_key=key,
        server_url=url,
        api_key=token,
    )
    return decision, time.perf_counter()


async def submit(http: httpx.AsyncClient, task_id: str, i: int) -> tuple[float, float]:
    """POST the answer; returns (t0 just before sending, t when the server's 200 arrived)."""
    t0 = time.perf_counter()
    resp = await http.post(f"/api/tasks/{task_id}/complete", json={"response": answer(i)})
    t_ack = time.perf_counter()
    resp.raise_for_status()
    return t0, t_ack


async def one_batch(
    http: httpx.AsyncClient,
    url: str,
    token: str,
    first: int,
    size: int,
    tag: str,
    *,
    answer_via: httpx.AsyncClient | None = None,
) -> list[tuple[float, float]]:
    """Park ``size`` waiters, answer them all at once; (latency, POST round trip) per task.

    The waiters long-poll ``url``, the server ``http`` talks to. The answers go through
    ``answer_via`` when given: another replica, so the wake-up crosses processes.
    """
    keys = {first + k: f"bench-submit-{tag}-{first + k}" for k in range(size)}
    waits = {i: asyncio.create_task(timed_wait(i, key, url, token)) for i, key in keys.items()}
    await wait_for_parked(http, size, timeout=30)
    ids = await task_ids(http, set(keys.values()))
    answers = answer_via or http
    posts = await asyncio.gather(*(submit(answers, ids[keys[i]], i) for i in keys))
    out = []
    for (i, wait), (t0, t_ack) in zip(waits.items(), posts, strict=True):
        decision, t1 = await asyncio.wait_for(wait, 30)
        expected = answer(i)
        assert decision.approved is expected["approved"]
        assert decision.notes == expected["notes"]
        out.append((t1 - t0, t_ack - t0))
    return out
