"""The in-process harness works: create, answer, poll, on both backends."""

from __future__ import annotations

import httpx

BODY = {
    "task": "Approve?",
    "payload": {"amount": 5},
    "payload_schema": {
        "type": "object",
        "properties": {"amount": {"type": "integer"}},
        "required": ["amount"],
    },
    "response_schema": {
        "type": "object",
        "properties": {"approved": {"type": "boolean"}},
        "required": ["approved"],
    },
    "timeout_seconds": 600,
    "idempotency_key": "smoke-1",
}


async def test_create_answer_poll(app_client: httpx.AsyncClient) -> None:
    created = await app_client.post("/api/tasks", json=BODY)
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]
    assert created.json()["status"] == "created"
    done = await app_client.post(
        f"/api/tasks/{task_id}/complete", json={"response": {"approved": True}}
    )
    assert done.status_code == 200, done.text
    poll = await app_client.get(f"/api/tasks/{task_id}/poll", params={"timeout": 1})
    assert poll.json()["status"] == "completed"
    assert poll.json()["response"] == {"approved": True}
    audit = (await app_client.get(f"/api/tasks/{task_id}/audit")).json()
    assert [(a["from_status"], a["to_status"]) for a in audit] == [
        (None, "created"),
        ("created", "completed"),
    ]
    assert audit[1]["actor_type"] == "admin"
    assert audit[1]["channel"] == "api"
