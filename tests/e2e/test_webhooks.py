"""Signed webhooks for terminal transitions: every path, at least once, across restarts."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from awaithumans.server.security import KeyRing
from awaithumans.server.settings import Settings
from awaithumans.server.webhook_secret import webhook_secret
from awaithumans.testing import ServerProcess, WebhookReceiver


def task_body(key: str, callback_url: str) -> dict[str, Any]:
    return {
        "task": "Approve?",
        "payload": {"n": 1},
        "payload_schema": {"type": "object", "properties": {"n": {"type": "integer"}}},
        "response_schema": {
            "type": "object",
            "properties": {"approved": {"type": "boolean"}},
            "required": ["approved"],
        },
        "timeout_seconds": 600,
        "idempotency_key": key,
        "callback_url": callback_url,
    }


def verifier_for(server: ServerProcess) -> Webhook:
    settings = Settings(payload_key=server.payload_key)
    return Webhook(webhook_secret(settings, KeyRing.from_text(server.payload_key)))


def client(server: ServerProcess) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {server.admin_token}"}
    )


def delivered(api: httpx.Client, task_id: str) -> dict[str, Any] | None:
    rows = api.get("/api/admin/deliveries", params={"task_id": task_id}).json()
    return rows[0] if rows and rows[0]["status"] == "delivered" else None


def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.02)


def test_completion_sends_one_signed_webhook(server: ServerProcess) -> None:
    with WebhookReceiver() as receiver, client(server) as api:
        task = api.post("/api/tasks", json=task_body("wh-1", receiver.url)).json()
        api.post(f"/api/tasks/{task['id']}/complete", json={"response": {"approved": True}})
        (delivery,) = receiver.wait_for(1)
        event = verifier_for(server).verify(delivery.body, delivery.headers)
        assert event["type"] == "task.completed"
        assert event["data"]["task_id"] == task["id"]
        assert event["data"]["idempotency_key"] == "wh-1"
        assert event["data"]["response"] == {"approved": True}
        assert event["data"]["completed_via_channel"] == "api"
        with pytest.raises(Exception, match=r"[Ss]ignature"):
            Webhook("whsec_" + "A" * 43).verify(delivery.body, delivery.headers)


def test_cancel_sends_webhook(sqlite_server: ServerProcess) -> None:
    with WebhookReceiver() as receiver, client(sqlite_server) as api:
        task = api.post("/api/tasks", json=task_body("wh-2", receiver.url)).json()
        assert api.post(f"/api/tasks/{task['id']}/cancel").status_code == 200
        (delivery,) = receiver.wait_for(1)
        assert delivery.json()["type"] == "task.cancelled"
        assert delivery.json()["data"]["response"] is None


def test_failing_receiver_is_retried_until_it_accepts(sqlite_server: ServerProcess) -> None:
    with WebhookReceiver(status=503) as receiver, client(sqlite_server) as api:
        task = api.post("/api/tasks", json=task_body("wh-3", receiver.url)).json()
        api.post(f"/api/tasks/{task['id']}/complete", json={"response": {"approved": False}})

        def attempted() -> bool:
            rows = api.get("/api/admin/deliveries", params={"task_id": task["id"]}).json()
            return bool(rows) and rows[0]["attempts"] >= 1

        wait_until(attempted)
        receiver.status = 200
        (delivery,) = receiver.wait_for(1, timeout=15)
        assert delivery.json()["data"]["response"] == {"approved": False}
        # The receiver answers before the server records the outcome.
        wait_until(lambda: delivered(api, task["id"]) is not None)
        row = delivered(api, task["id"])
        assert row is not None
        assert row["attempts"] >= 2


def test_pending_webhook_survives_a_server_crash(sqlite_server: ServerProcess) -> None:
    receiver = WebhookReceiver()
    receiver.start()
    port = receiver.port
    receiver.stop()  # nobody listens: deliveries fail with connection refused
    with client(sqlite_server) as api:
        task = api.post("/api/tasks", json=task_body("wh-4", f"http://127.0.0.1:{port}/hook"))
        task_id = task.json()["id"]
        api.post(f"/api/tasks/{task_id}/complete", json={"response": {"approved": True}})

        def attempted() -> bool:
            rows = api.get("/api/admin/deliveries", params={"task_id": task_id}).json()
            return bool(rows) and rows[0]["attempts"] >= 1

        wait_until(attempted)
    sqlite_server.stop(kill=True)
    with WebhookReceiver(port=port) as back:
        sqlite_server.start()
        (delivery,) = back.wait_for(1, timeout=20)
        assert delivery.json()["data"]["task_id"] == task_id


def test_operator_can_list_and_redeliver(sqlite_server: ServerProcess) -> None:
    with WebhookReceiver() as receiver, client(sqlite_server) as api:
        task = api.post("/api/tasks", json=task_body("wh-5", receiver.url)).json()
        api.post(f"/api/tasks/{task['id']}/complete", json={"response": {"approved": True}})
        (first,) = receiver.wait_for(1)
        wait_until(lambda: delivered(api, task["id"]) is not None)
        row = delivered(api, task["id"])
        assert row is not None
        assert api.post(f"/api/admin/deliveries/{row['id']}/redeliver").status_code == 202
        _, second = receiver.wait_for(2)
        # The same event id: receivers deduplicate on it.
        assert second.headers["webhook-id"] == first.headers["webhook-id"]
        assert api.post("/api/admin/deliveries/999999/redeliver").status_code == 404


def test_a_slow_receiver_does_not_hold_back_other_deliveries(
    sqlite_server: ServerProcess,
) -> None:
    # A LangGraph resumer answers only once the resumed graph has finished; the events
    # queued behind its delivery must go out meanwhile.
    release = threading.Event()
    with (
        WebhookReceiver(hold=release) as slow,
        WebhookReceiver() as fast,
        client(sqlite_server) as api,
    ):
        try:
            held = api.post("/api/tasks", json=task_body("wh-slow", slow.url)).json()
            other = api.post("/api/tasks", json=task_body("wh-fast", fast.url)).json()
            api.post(f"/api/tasks/{held['id']}/complete", json={"response": {"approved": True}})
            slow.wait_for(1)  # the slow receiver has it and is sitting on its reply
            api.post(f"/api/tasks/{other['id']}/complete", json={"response": {"approved": False}})
            (delivery,) = fast.wait_for(1, timeout=5)
            assert delivery.json()["data"]["task_id"] == other["id"]
            wait_until(lambda: delivered(api, other["id"]) is not None)
            assert delivered(api, held["id"]) is None  # still in flight
        finally:
            release.set()
        wait_until(lambda: delivered(api, held["id"]) is not None)
        assert len(slow.deliveries) == 1
