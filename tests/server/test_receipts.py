"""Receipts and the audit chain in the app, on SQLite and on PostgreSQL.

A completed task carries a receipt signed over what the person was shown (the hash the SDK
computes from its own request matches), in the task view and in the poll, verifiable with
the key ``GET /api/receipts/public-keys`` lists, also after the payload key is rotated.
Every audit row (creation, each move, several moves of one task in one transaction, an
annotation) extends its task's chain, and the task's head is its newest row's hash.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from awaithumans import verify_receipt
from awaithumans.core import Ask
from awaithumans.core._receipts import sha256_of, shown_sha256
from awaithumans.core._wire import TaskStatus
from awaithumans.server.db.models import AuditRow, TaskRow
from awaithumans.server.principals import ADMIN
from awaithumans.server.security import generate_payload_key
from awaithumans.server.security.receipts import chain_hash
from awaithumans.server.services.lifecycle import Channel, Move, annotate, transition_many
from awaithumans.testing import WebhookReceiver
from tests._app_fixtures import make_settings, running_app

S = TaskStatus


class Refund(BaseModel):
    order_id: str
    amount_usd: float
    lines: list[dict[str, Any]]


class Decision(BaseModel):
    approved: bool
    notes: str | None = None


def request(key: str | None = None, assign_to: str | None = None) -> dict[str, Any]:
    """A create as the SDK sends it (form included)."""
    return (
        Ask(
            task="Refund $42.50 for ord_7?",
            payload_schema=Refund,
            # Floats with and without a fraction, nesting, non-ASCII text.
            payload=Refund(order_id="ord_7", amount_usd=42.5, lines=[{"sku": "café", "qty": 2.0}]),
            response_schema=Decision,
            timeout_seconds=900,
            idempotency_key=key or f"receipt-{uuid.uuid4().hex}",
            assign_to=assign_to,
        )
        .request()
        .model_dump(mode="json", exclude_none=True)
    )


async def public_keys(client: httpx.AsyncClient) -> list[str]:
    # No credential: public keys are public.
    got = await client.get("/api/receipts/public-keys", headers={"Authorization": ""})
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["algorithm"] == "Ed25519"
    return [k["public_key"] for k in body["keys"]]


async def test_a_completed_task_carries_a_receipt_of_what_was_shown(database_url: str) -> None:
    async with running_app(make_settings(database_url)) as (_app, admin):
        body = request()
        made = await admin.post("/api/tasks", json=body)
        assert made.status_code == 201, made.text
        task_id = made.json()["id"]
        assert made.json()["receipt"] is None
        answer = {"approved": True, "notes": "charged twice ✓"}
        done = await admin.post(f"/api/tasks/{task_id}/complete", json={"response": answer})
        assert done.status_code == 200, done.text
        view = (await admin.get(f"/api/tasks/{task_id}")).json()
        poll = (await admin.get(f"/api/tasks/{task_id}/poll", params={"timeout": 1})).json()
        keys = await public_keys(admin)
        # An open and a cancelled task have none.
        other = (await admin.post("/api/tasks", json=request())).json()
        assert other["receipt"] is None
        cancelled = await admin.post(f"/api/tasks/{other['id']}/cancel", json={})
        assert cancelled.json()["receipt"] is None
        other_poll = await admin.get(f"/api/tasks/{other['id']}/poll", params={"timeout": 1})
        assert other_poll.json()["receipt"] is None

    receipt = view["receipt"]
    assert receipt is not None
    assert done.json()["receipt"] == receipt
    assert poll["receipt"] == receipt
    assert len(keys) == 1
    verified = verify_receipt(receipt, keys[0])
    assert verified.task_id == task_id
    assert verified.task == "Refund $42.50 for ord_7?"
    assert verified.status == "completed"
    assert verified.channel == "api"
    assert (verified.answered_by_id, verified.answered_by_label) == ("admin", "admin token")
    # What the person was shown, hashed from what the SDK sent, after the database's round
    # trip of the payload (sealed), the form and the schema (JSON, JSONB on PostgreSQL).
    assert verified.shown_sha256 == shown_sha256(
        body["payload"], body["form_definition"], body["response_schema"]
    )
    assert verified.response_sha256 == sha256_of(answer)
    assert verified.response_sha256 == sha256_of(view["response"])
    assert verified.at.isoformat().replace("+00:00", "Z") == view["completed_at"]


async def test_the_webhook_carries_the_receipt(database_url: str) -> None:
    with WebhookReceiver() as receiver:
        async with running_app(make_settings(database_url)) as (_app, admin):
            body = request() | {"callback_url": receiver.url}
            made = await admin.post("/api/tasks", json=body)
            assert made.status_code == 201, made.text
            task_id = made.json()["id"]
            answer = {"approved": False, "notes": "not a duplicate"}
            done = await admin.post(f"/api/tasks/{task_id}/complete", json={"response": answer})
            assert done.status_code == 200, done.text
            (delivery,) = await asyncio.to_thread(receiver.wait_for, 1, 15)
            keys = await public_keys(admin)
    data = delivery.json()["data"]
    assert data["receipt"] == done.json()["receipt"]
    verified = verify_receipt(data["receipt"], keys)
    assert (verified.task_id, verified.response_sha256) == (task_id, sha256_of(answer))


async def test_a_user_answer_names_the_user(database_url: str) -> None:
    async with running_app(make_settings(database_url)) as (_app, admin):
        user = {"email": "ann@acme.test", "display_name": "Ann", "password": "a long password 1"}
        assert (await admin.post("/api/admin/users", json=user)).status_code == 201
        made = (await admin.post("/api/tasks", json=request(assign_to=user["email"]))).json()
        signed_in = await admin.post(
            "/api/auth/login",
            json={"email": user["email"], "password": user["password"]},
            headers={"Authorization": ""},
        )
        assert signed_in.status_code == 200, signed_in.text
        session = {"Authorization": "", "Cookie": signed_in.headers["set-cookie"].split(";")[0]}
        done = await admin.post(
            f"/api/tasks/{made['id']}/complete",
            json={"response": {"approved": False}},
            headers={**session, "Origin": "http://testserver"},
        )
        assert done.status_code == 200, done.text
        keys = await public_keys(admin)
    verified = verify_receipt(done.json()["receipt"], keys)
    assert verified.answered_by_email == "ann@acme.test"
    assert verified.answered_by_label == "Ann"
    assert verified.answered_by_id == done.json()["completed_by_user_id"]


async def test_receipts_signed_before_a_key_rotation_still_verify(database_url: str) -> None:
    old, new = generate_payload_key(), generate_payload_key()
    async with running_app(make_settings(database_url, payload_key=old)) as (_app, admin):
        made = (await admin.post("/api/tasks", json=request())).json()
        done = await admin.post(
            f"/api/tasks/{made['id']}/complete", json={"response": {"approved": True}}
        )
        before = done.json()["receipt"]
        old_keys = await public_keys(admin)
    rotated = make_settings(database_url, payload_key=new, payload_key_previous=old)
    async with running_app(rotated) as (_app, admin):
        keys = await public_keys(admin)
        made = (await admin.post("/api/tasks", json=request())).json()
        done = await admin.post(
            f"/api/tasks/{made['id']}/complete", json={"response": {"approved": True}}
        )
        after = done.json()["receipt"]
        # The stored receipt is served as it was signed.
        again = (await admin.get(f"/api/tasks/{before['task_id']}")).json()["receipt"]
    assert len(keys) == 2
    assert keys[1] == old_keys[0]
    assert again == before
    assert verify_receipt(before, keys).key_id == before["key_id"]
    assert verify_receipt(after, keys).key_id != before["key_id"]
    assert verify_receipt(after, keys[0]).task_id == made["id"]


async def chain_of(engine: AsyncEngine, task_id: str) -> tuple[list[dict[str, Any]], str | None]:
    async with engine.connect() as conn:
        rows = (
            (
                await conn.execute(
                    select(AuditRow.__table__)
                    .where(AuditRow.task_id == task_id)
                    .order_by(AuditRow.id)
                )
            )
            .mappings()
            .all()
        )
        head = await conn.scalar(select(TaskRow.audit_head).where(TaskRow.id == task_id))
    return [dict(r) for r in rows], head


def assert_chained(rows: list[dict[str, Any]], head: str | None) -> None:
    previous = None
    for row in rows:
        assert row["chain_hash"] == chain_hash(previous, row), row
        previous = row["chain_hash"]
    assert head == previous


async def test_every_audit_row_extends_its_tasks_chain(database_url: str) -> None:
    async with running_app(make_settings(database_url)) as (app, admin):
        engine: AsyncEngine = app.state.ctx.engine
        answered = (await admin.post("/api/tasks", json=request())).json()["id"]
        assert (await admin.post(f"/api/tasks/{answered}/claim")).status_code == 200
        done = await admin.post(
            f"/api/tasks/{answered}/complete", json={"response": {"approved": True}}
        )
        assert done.status_code == 200, done.text
        # Several moves of one task, and another task's, in one transaction; then a change
        # that keeps the status (an annotation, as a verifier's provider trouble makes).
        batched, neighbour = [
            (await admin.post("/api/tasks", json=request())).json()["id"] for _ in range(2)
        ]
        async with engine.begin() as conn:
            outcomes = await transition_many(
                conn,
                [
                    Move(batched, S.IN_PROGRESS, "claimed", ADMIN, Channel.API),
                    Move(neighbour, S.IN_PROGRESS, "claimed", ADMIN, Channel.API),
                    Move(batched, S.CANCELLED, "cancelled", ADMIN, Channel.API),
                ],
            )
            assert [o.task.status for o in outcomes] == [S.IN_PROGRESS] * 2 + [S.CANCELLED]  # type: ignore[union-attr]
            await annotate(
                conn,
                neighbour,
                status=S.IN_PROGRESS,
                action="noted",
                actor=ADMIN,
                channel=Channel.API,
                values={},
                detail={"note": "ünïcode", "n": 1.0},
            )
            # Not audited: the chain does not move.
            await annotate(
                conn,
                neighbour,
                status=S.IN_PROGRESS,
                action="noted",
                actor=ADMIN,
                channel=Channel.API,
                values={},
                audited=False,
            )
        chains = {t: await chain_of(engine, t) for t in (answered, batched, neighbour)}

    actions = {t: [r["action"] for r in rows] for t, (rows, _) in chains.items()}
    assert actions == {
        answered: ["created", "claimed", "completed"],
        batched: ["created", "claimed", "cancelled"],
        neighbour: ["created", "claimed", "noted"],
    }
    for rows, head in chains.values():
        assert_chained(rows, head)
    # Each chain starts from nothing and is its own: the same moves hash differently per task.
    heads = [head for _, head in chains.values()]
    assert len(set(heads)) == 3


async def test_a_task_from_before_the_shown_hash_was_stored_gets_the_same_receipt(
    database_url: str,
) -> None:
    """Tasks created before migration 0013 have no ``shown_sha256``: completing one hashes
    the stored payload, form and schema then, to the same value."""
    from sqlalchemy import update

    async with running_app(make_settings(database_url)) as (app, admin):
        body = request()
        made = await admin.post("/api/tasks", json=body)
        assert made.status_code == 201, made.text
        task_id = made.json()["id"]
        engine: AsyncEngine = app.state.ctx.engine
        async with engine.begin() as conn:
            stored = await conn.scalar(select(TaskRow.shown_sha256).where(TaskRow.id == task_id))
            await conn.execute(
                update(TaskRow).where(TaskRow.id == task_id).values(shown_sha256=None)
            )
        done = await admin.post(
            f"/api/tasks/{task_id}/complete", json={"response": {"approved": True}}
        )
        assert done.status_code == 200, done.text
        keys = await public_keys(admin)
    expected = shown_sha256(body["payload"], body["form_definition"], body["response_schema"])
    assert stored == expected
    assert verify_receipt(done.json()["receipt"], keys).shown_sha256 == expected
