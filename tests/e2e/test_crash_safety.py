"""Nothing acknowledged is lost when the server is killed with SIGKILL under load.

Clients create and answer tasks as fast as the server lets them, each with a webhook and an
email notification; some tasks have a verifier; SDK calls wait on others. Meanwhile the
server is killed (SIGKILL: no shutdown code runs) after a random number of acknowledged
operations, several times, and restarted on the same database. A client whose request fails
because the server died retries it as a real client does: the same idempotency key, the
same answer.

Afterwards: every acknowledged create is there, exactly once; every acknowledged answer is
the task's answer (a verified task's verdict included); every waiting SDK call returned its
own answer; every task's webhook and mails arrived, and anything delivered twice carried
the same id both times (at-least-once, recognisably one delivery).
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from awaithumans import await_human
from awaithumans.core import Ask
from awaithumans.testing import ServerProcess, WebhookReceiver
from awaithumans.verifiers import VerifierConfig
from tests._waiting import until
from tests.support.llm_standin import ProviderStandIn
from tests.support.smtp_sink import SmtpSink

pytestmark = pytest.mark.e2e

CLIENTS = 4
WAITERS = 6
KILLS = 4
REVIEWER = "reviewer@acme.test"


class Refund(BaseModel):
    order: str


class Decision(BaseModel):
    approved: bool
    notes: str | None = None


@dataclass
class Ledger:
    """What the server acknowledged: the promises the test holds it to."""

    created: dict[str, str] = field(default_factory=dict)  # idempotency key -> task id
    answered: dict[str, dict[str, Any]] = field(default_factory=dict)  # task id -> response
    verified: set[str] = field(default_factory=set)
    acks: int = 0  # the killer's clock
    retries: int = 0  # requests that failed because the server was down, and were repeated


def ask(key: str, hooks: WebhookReceiver, *, verified: bool) -> dict[str, Any]:
    config = (
        VerifierConfig(provider="claude", instructions="Notes required: reject an answer without.")
        if verified
        else None
    )
    return (
        Ask(
            task=f"Refund for {key}?",
            payload_schema=Refund,
            payload=Refund(order=key),
            response_schema=Decision,
            timeout_seconds=900,
            idempotency_key=key,
            notify=[f"email:{REVIEWER}"],
            callback_url=hooks.url,
            verifier=config,
        )
        .request()
        .model_dump(mode="json", exclude_none=True)
    )


async def all_tasks(api: httpx.AsyncClient) -> list[dict[str, Any]]:
    """Every task, through the list's pages."""
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 200}
    while True:
        page = (await api.get("/api/tasks", params=params)).json()
        found.extend(page["items"])
        if not page["next_cursor"]:
            return found
        params["cursor"] = page["next_cursor"]


async def persist(
    ledger: Ledger, send: Callable[[], Awaitable[httpx.Response]], ok: set[int]
) -> httpx.Response:
    """``send`` until the server answers it (it may be down, or just restarted)."""
    for attempt in range(600):
        try:
            reply = await send()
        except httpx.TransportError:
            reply = None
        if reply is not None and reply.status_code != 503:
            # Anything but "down" or "not ready" is the server's answer (a 500 fails the test).
            assert reply.status_code < 500, reply.text
            return reply
        ledger.retries += 1
        await asyncio.sleep(min(0.05 * (attempt + 1), 0.5))
    raise AssertionError("the server never came back")


async def complete(
    api: httpx.AsyncClient, ledger: Ledger, task_id: str, response: dict[str, Any]
) -> None:
    reply = await persist(
        ledger,
        lambda: api.post(f"/api/tasks/{task_id}/complete", json={"response": response}),
        {200},
    )
    if reply.status_code != 200:
        # The first attempt may have landed before the kill and its reply been lost: the
        # repeat then finds the task answered, and the answer must be ours.
        assert reply.status_code == 409, reply.text
        task = (await api.get(f"/api/tasks/{task_id}")).json()
        assert task["status"] in ("submitted", "completed"), task
        assert task.get("response") in (None, response), task
    ledger.answered[task_id] = response
    ledger.acks += 1


async def client(
    number: int, api: httpx.AsyncClient, hooks: WebhookReceiver, ledger: Ledger, stop: asyncio.Event
) -> None:
    done = 0
    while not stop.is_set():
        key = f"crash-{number}-{done}"
        verified = done % 5 == 4
        body = ask(key, hooks, verified=verified)
        made = await persist(ledger, partial(api.post, "/api/tasks", json=body), {201, 200})
        assert made.status_code in (200, 201), made.text
        task_id = made.json()["id"]
        ledger.created[key] = task_id
        ledger.acks += 1
        if verified:
            ledger.verified.add(task_id)
        await complete(
            api, ledger, task_id, {"approved": True, "notes": f"client {number} #{done}"}
        )
        done += 1


async def test_nothing_acknowledged_is_lost_across_sigkills(tmp_path: Path) -> None:
    with (
        WebhookReceiver() as hooks,
        SmtpSink() as sink,
        ProviderStandIn() as llm,
        ServerProcess(
            workdir=tmp_path,
            env={
                **llm.env(),
                "AWAITHUMANS_EMAIL_TRANSPORT": "smtp",
                "AWAITHUMANS_SMTP_HOST": sink.host,
                "AWAITHUMANS_SMTP_PORT": str(sink.port),
                "AWAITHUMANS_SMTP_START_TLS": "false",
                "AWAITHUMANS_EMAIL_FROM": "approvals@acme.test",
                "AWAITHUMANS_EMAIL_NOTIFY_OUTCOME": "true",  # more mail, more to lose
                "AWAITHUMANS_OUTBOX_POLL_SECONDS": "0.3",
                "AWAITHUMANS_VERIFIER_RETRY_MAX_SECONDS": "1",
            },
        ) as server,
    ):
        await crash_repeatedly(server, hooks, sink)


async def crash_repeatedly(server: ServerProcess, hooks: WebhookReceiver, sink: SmtpSink) -> None:
    chance = random.Random()
    async with httpx.AsyncClient(
        base_url=server.url,
        headers={"Authorization": f"Bearer {server.admin_token}"},
        timeout=10,
    ) as api:
        ledger = Ledger()
        waiters = [
            asyncio.create_task(
                await_human(
                    task=f"Waiter {n}?",
                    payload_schema=Refund,
                    payload=Refund(order=f"wait-{n}"),
                    response_schema=Decision,
                    timeout_seconds=900,
                    idempotency_key=f"wait-{n}",
                    callback_url=hooks.url,
                    server_url=server.url,
                    api_key=server.admin_token,
                )
            )
            for n in range(WAITERS)
        ]

        async def waiter_tasks() -> dict[str, str] | None:
            items = (await api.get("/api/tasks", params={"limit": 200})).json()["items"]
            found = {t["idempotency_key"]: t["id"] for t in items if t["task"].startswith("Waiter")}
            return found if len(found) == WAITERS else None

        waiting: dict[str, str] = await until(waiter_tasks, 30, server.logs)
        stop = asyncio.Event()
        clients = [asyncio.create_task(client(n, api, hooks, ledger, stop)) for n in range(CLIENTS)]

        async def after(count: int) -> None:
            target = ledger.acks + count

            async def reached() -> bool:
                return ledger.acks >= target

            await until(reached, 60, server.logs, interval=0.005)

        async def answer_waiters() -> None:
            for n in range(WAITERS):
                await after(chance.randint(1, 10))
                response = {"approved": n % 2 == 0, "notes": f"waiter {n}"}
                await complete(api, ledger, waiting[f"wait-{n}"], response)

        answering = asyncio.create_task(answer_waiters())
        for _ in range(KILLS):
            await after(chance.randint(3, 40))
            await asyncio.to_thread(server.restart, kill=True)
        await answering
        stop.set()
        await asyncio.gather(*clients)

        # Every SDK call returns its own answer.
        returned = await asyncio.wait_for(asyncio.gather(*waiters), 60)
        for n, decision in enumerate(returned):
            assert decision == Decision(approved=n % 2 == 0, notes=f"waiter {n}")

        # Every acknowledged create is there, exactly once, and nothing else is.
        everything = [
            *ledger.created.items(),
            *((f"wait-{n}", waiting[f"wait-{n}"]) for n in range(WAITERS)),
        ]
        listed = await all_tasks(api)
        assert sorted(t["id"] for t in listed) == sorted(task_id for _, task_id in everything)
        for key, task_id in everything:
            assert {t["idempotency_key"] for t in listed if t["id"] == task_id} == {key}

        # Every acknowledged answer is the task's answer; verified ones get their verdict.
        async def all_completed() -> dict[str, dict[str, Any]] | None:
            tasks = {t["id"]: t for t in await all_tasks(api)}
            pending = [i for i in ledger.answered if tasks[i]["status"] != "completed"]
            return tasks if not pending else None

        final: dict[str, dict[str, Any]] = await until(all_completed, 60, server.logs)
        for task_id, response in ledger.answered.items():
            got = (await api.get(f"/api/tasks/{task_id}")).json()
            assert got["response"] == response, got
        assert set(ledger.answered) == set(final)

        # Every ending reached the webhook; a repeat carried the same id.
        def webhooks() -> dict[str, set[str]]:
            ids: dict[str, set[str]] = defaultdict(set)
            for delivery in list(hooks.deliveries):
                event = delivery.json()
                assert event["type"] == "task.completed", event
                ids[event["data"]["task_id"]].add(delivery.headers["webhook-id"])
            return ids

        async def every_webhook() -> dict[str, set[str]] | None:
            found = webhooks()
            return found if set(found) == set(final) else None

        def unhooked() -> str:
            lacking = sorted(set(final) - set(webhooks()))
            return f"no webhook for {lacking}\n{server.logs()[-4000:]}"

        hooked: dict[str, set[str]] = await until(every_webhook, 60, unhooked)
        assert all(len(ids) == 1 for ids in hooked.values()), hooked

        # Every notification is accounted for: delivered (and in the sink, under its job's
        # Message-ID) or skipped because the task ended first; none pending, none failed.
        async def settled() -> list[dict[str, Any]] | None:
            rows = (await api.get("/api/admin/deliveries", params={"limit": 500})).json()
            return rows if not any(r["status"] == "pending" for r in rows) else None

        rows: list[dict[str, Any]] = await until(settled, 60, server.logs)
        assert not [r for r in rows if r["status"] == "failed"], rows
        notices = [r for r in rows if r["kind"] == "notify"]
        asks = {r["task_id"] for r in notices if r["event"] == "task.created"}
        assert asks == set(ledger.created.values())
        why_skipped = {r["last_error"] for r in notices if r["status"] == "skipped"}
        assert why_skipped <= {
            "superseded: the task ended before this notification went out",
            "no mail of this task went to this address",
        }, why_skipped
        sent = {
            f"<{r['event_id']}.{r['id']}@acme.test>" for r in notices if r["status"] == "delivered"
        }
        received = [m.header("Message-ID") or "" for m in list(sink.messages)]
        # A mail that left is a delivered job's (no mail from a job the server thinks unsent).
        assert set(received) == sent, (set(received) - sent, sent - set(received))
        # Whoever was asked hears how it ended.
        delivered = {(r["task_id"], r["event"]) for r in notices if r["status"] == "delivered"}
        asked = {task_id for task_id, event in delivered if event == "task.created"}
        told = {task_id for task_id, event in delivered if event == "task.completed"}
        assert asked <= told, asked - told

        duplicates = len(hooks.deliveries) - len(hooked) + len(received) - len(set(received))
        print(
            f"\ncrash safety: {KILLS} kills, {len(ledger.created) + WAITERS} creates,"
            f" {len(ledger.answered)} answers ({len(ledger.verified)} verified),"
            f" {WAITERS} SDK waiters, {len(hooks.deliveries)} webhooks, {len(received)}"
            f" mails, {ledger.retries} client retries; lost 0, repeated with the same id"
            f" {duplicates}, repeated with another id 0"
        )
