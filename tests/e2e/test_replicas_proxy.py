"""Three ``awaithumans serve`` replicas on one PostgreSQL behind HAProxy, as users scale out.

Every request goes through the load balancer (round-robin), so a waiter, its answer and the
dashboard's polls land on different replicas. What must hold: waiters return their own
answers whichever replica answered; a replica killed with deliveries in flight has them
made by the others, once each (at-least-once, one id); a deadline fires once across three
schedulers; the dashboard's change sequence is one count on every replica.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from awaithumans import await_human
from awaithumans.testing import ServerProcess, WebhookReceiver
from tests._api import assert_one_timeout_webhook_each, expire_every_deadline
from tests._waiting import until
from tests.support.haproxy import HAProxy

pytestmark = pytest.mark.e2e

REPLICAS = 3
WAITERS = 100
FAST = {
    "AWAITHUMANS_OUTBOX_POLL_SECONDS": "0.3",
    "AWAITHUMANS_SCHEDULER_MAX_SLEEP_SECONDS": "0.2",
}


class Ask(BaseModel):
    n: int


class Answer(BaseModel):
    n: int
    ok: bool


class Cluster:
    def __init__(self, replicas: list[ServerProcess], proxy: HAProxy) -> None:
        self.replicas = replicas
        self.proxy = proxy
        self.token = replicas[0].admin_token

    def client(self, base: str | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=base or self.proxy.url,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )

    def logs(self) -> str:
        return "\n".join(
            f"--- replica {n} ---\n{r.logs()[-3000:]}" for n, r in enumerate(self.replicas)
        )


@pytest.fixture
def cluster(postgres_url: str, tmp_path: Path) -> Iterator[Cluster]:
    first = ServerProcess(database_url=postgres_url, workdir=tmp_path / "r0", env=FAST)
    (tmp_path / "r0").mkdir()
    replicas = [first.start()]
    try:
        for n in range(1, REPLICAS):
            (tmp_path / f"r{n}").mkdir()
            replicas.append(
                ServerProcess(
                    database_url=postgres_url,
                    workdir=tmp_path / f"r{n}",
                    payload_key=first.payload_key,
                    admin_token=first.admin_token,
                    env=FAST,
                ).start()
            )
        with HAProxy([r.url for r in replicas]) as proxy:
            yield Cluster(replicas, proxy)
    finally:
        for replica in replicas:
            replica.close()


def ask(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "task": f"Replica task {n}?",
        "payload": {"n": n},
        "payload_schema": Ask.model_json_schema(),
        "response_schema": Answer.model_json_schema(),
        "timeout_seconds": 600,
        "idempotency_key": f"replica-{n}",
        **extra,
    }


async def test_waiters_return_their_own_answers_given_on_other_replicas(cluster: Cluster) -> None:
    waiters = [
        asyncio.create_task(
            await_human(
                task=f"Replica task {n}?",
                payload_schema=Ask,
                payload=Ask(n=n),
                response_schema=Answer,
                timeout_seconds=600,
                idempotency_key=f"replica-{n}",
                server_url=cluster.proxy.url,
                api_key=cluster.token,
            )
        )
        for n in range(WAITERS)
    ]
    returned_at: dict[int, float] = {}

    def note_return(n: int) -> Callable[[asyncio.Task[Answer]], None]:
        def returned(_task: asyncio.Task[Answer]) -> None:
            returned_at[n] = time.monotonic()

        return returned

    for n, waiter in enumerate(waiters):
        waiter.add_done_callback(note_return(n))
    async with cluster.client() as api:

        async def all_waiting() -> dict[int, str] | None:
            items = (await api.get("/api/tasks", params={"limit": 200})).json()["items"]
            ids = {int(item["task"].split()[2].rstrip("?")): item["id"] for item in items}
            polls = 0
            for replica in cluster.replicas:
                polls += (await api.get(f"{replica.url}/api/health")).json()["waiting_polls"]
            return ids if len(ids) == WAITERS and polls >= WAITERS else None

        ids: dict[int, str] = await until(all_waiting, 60, cluster.logs)
        per_replica = [
            (await api.get(f"{r.url}/api/health")).json()["waiting_polls"] for r in cluster.replicas
        ]
        assert all(count > 0 for count in per_replica), per_replica  # spread by the proxy
        answered_at: dict[int, float] = {}
        for n in range(WAITERS):
            done = await api.post(
                f"/api/tasks/{ids[n]}/complete", json={"response": {"n": n, "ok": n % 3 == 0}}
            )
            answered_at[n] = time.monotonic()
            assert done.status_code == 200, done.text
    results = await asyncio.wait_for(asyncio.gather(*waiters), 60)
    assert results == [Answer(n=n, ok=n % 3 == 0) for n in range(WAITERS)]
    latencies = sorted((returned_at[n] - answered_at[n]) * 1000 for n in range(WAITERS))
    print(
        f"\n{WAITERS} waiters over {REPLICAS} replicas {per_replica}: answer -> return"
        f" p50 {statistics.median(latencies):.1f} ms, p99 {latencies[98]:.1f} ms"
    )


async def test_a_killed_replicas_deliveries_are_made_by_the_others(cluster: Cluster) -> None:
    # The receiver holds every delivery until released: the jobs are in flight, on
    # whichever replicas claimed them, when one replica is killed.
    import threading

    hold = threading.Event()
    count = 12
    with WebhookReceiver(hold=hold) as hooks:
        async with cluster.client() as api:
            ids = []
            for n in range(count):
                made = await api.post("/api/tasks", json=ask(n, callback_url=hooks.url))
                assert made.status_code == 201, made.text
                ids.append(made.json()["id"])
            for n, task_id in enumerate(ids):
                done = await api.post(
                    f"/api/tasks/{task_id}/complete", json={"response": {"n": n, "ok": True}}
                )
                assert done.status_code == 200, done.text
            await asyncio.to_thread(hooks.wait_for, count, 30)  # all in flight (held)
            await asyncio.to_thread(cluster.replicas[0].stop, kill=True)
            hold.set()

            def every_task() -> bool:
                return {d.json()["data"]["task_id"] for d in list(hooks.deliveries)} == set(ids)

            async def settled() -> bool:
                if not every_task():
                    return False
                rows = (await api.get("/api/admin/deliveries", params={"limit": 500})).json()
                return all(r["status"] == "delivered" for r in rows if r["kind"] == "webhook")

            await until(settled, 60, cluster.logs)
    ids_by_task: dict[str, set[str]] = defaultdict(set)
    for delivery in hooks.deliveries:
        ids_by_task[delivery.json()["data"]["task_id"]].add(delivery.headers["webhook-id"])
    assert all(len(event_ids) == 1 for event_ids in ids_by_task.values()), ids_by_task
    print(
        f"\nkilled replica: {count} webhooks, {len(hooks.deliveries)} deliveries"
        f" ({len(hooks.deliveries) - count} repeated with the same id)"
    )


async def test_a_deadline_fires_once_across_replicas(cluster: Cluster, postgres_url: str) -> None:
    count = 10
    with WebhookReceiver() as hooks:
        async with cluster.client() as api:
            ids = []
            for n in range(count):
                made = await api.post("/api/tasks", json=ask(100 + n, callback_url=hooks.url))
                assert made.status_code == 201, made.text
                ids.append(made.json()["id"])
            # Every deadline moves into the past at once: three schedulers race for them.
            await expire_every_deadline(postgres_url)
            for replica in cluster.replicas:
                async with cluster.client(replica.url) as direct:
                    # Nudge each scheduler (a create wakes it) so all three look at once.
                    made = await direct.post("/api/tasks", json=ask(200 + len(ids)))
                    assert made.status_code == 201, made.text
                    ids.append(made.json()["id"])

            async def timed_out() -> bool:
                states = [(await api.get(f"/api/tasks/{i}")).json()["status"] for i in ids[:count]]
                return all(s == "timed_out" for s in states) and len(hooks.deliveries) >= count

            await until(timed_out, 60, cluster.logs)
            audits = [(await api.get(f"/api/tasks/{i}/audit")).json() for i in ids[:count]]
    for rows in audits:
        assert [r["to_status"] for r in rows].count("timed_out") == 1, rows
    assert_one_timeout_webhook_each(hooks.deliveries, ids[:count])


async def test_the_dashboard_change_sequence_is_one_count_on_every_replica(
    cluster: Cluster,
) -> None:
    async with httpx.AsyncClient(base_url=cluster.proxy.url, timeout=30) as browser:
        setup = cluster.replicas[-1].setup_token
        made = await browser.post(
            "/api/setup/operator",
            json={
                "token": setup,
                "email": "ops@acme.test",
                "display_name": "Ops",
                "password": "three replicas, one count",
            },
        )
        assert made.status_code == 201, made.text
        signed_in = await browser.post(
            "/api/auth/login",
            json={"email": "ops@acme.test", "password": "three replicas, one count"},
        )
        assert signed_in.status_code == 200, signed_in.text
        cookies = dict(browser.cookies)

    async def sequence(replica: ServerProcess, since: int, timeout: int) -> tuple[int, float]:
        async with httpx.AsyncClient(base_url=replica.url, cookies=cookies, timeout=30) as page:
            started = time.monotonic()
            got = await page.get("/ui/changes", params={"since": since, "timeout": timeout})
            assert got.status_code == 200, got.text
            return int(got.json()["sequence"]), time.monotonic() - started

    async def agreed() -> int | None:
        seen = {(await sequence(r, 0, 1))[0] for r in cluster.replicas}
        return seen.pop() if len(seen) == 1 else None

    now: int = await until(agreed, 30, cluster.logs)
    # No change: a poll on any replica with the count another one gave waits it out,
    # instead of answering at once (which made pages re-fetch in a loop).
    for replica in cluster.replicas:
        same, waited = await sequence(replica, now, 1)
        assert same == now
        assert waited >= 0.9
    # A change made through one replica moves the count on another, at once.
    waiting = asyncio.create_task(sequence(cluster.replicas[2], now, 20))
    async with cluster.client(cluster.replicas[0].url) as api:
        made = await api.post("/api/tasks", json=ask(999))
        assert made.status_code == 201, made.text
    moved, waited = await asyncio.wait_for(waiting, 30)
    assert moved > now
    assert waited < 5
