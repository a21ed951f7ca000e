"""Idempotency keys are scoped to the credential that creates the task.

Agent B sending agent A's key gets a task of its own: it can neither block A's predictable
keys nor learn from 201-versus-409 which keys A used. Operators still see every task. The
migration keeps existing rows, scoped to the credential recorded on them. In-process app,
real SQLite and real PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from awaithumans.server.db.engine import (
    _alembic_config,
    _lock_for_migration,
    make_engine,
    migrate,
)
from awaithumans.server.db.models import TaskRow
from awaithumans.server.db.types import utcnow
from tests._app_fixtures import ADMIN_TOKEN, make_settings, running_app

KEY = "refund:ord_1001"  # the kind of key anyone can guess


def body(key: str = KEY, amount: int = 250) -> dict[str, Any]:
    return {
        "task": f"Refund ${amount}?",
        "idempotency_key": key,
        "payload": {"amount": amount},
        "payload_schema": {"type": "object"},
        "response_schema": {
            "type": "object",
            "properties": {"approved": {"type": "boolean"}},
            "required": ["approved"],
        },
        "timeout_seconds": 600,
    }


@asynccontextmanager
async def agents(
    app: Any, admin: httpx.AsyncClient, *names: str
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """A client per new agent key."""
    clients = []
    for name in names:
        made = await admin.post("/api/admin/agent-keys", json={"name": name})
        assert made.status_code == 201, made.text
        clients.append(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://testserver",
                headers={"Authorization": f"Bearer {made.json()['key']}"},
            )
        )
    try:
        yield clients
    finally:
        for client in clients:
            await client.aclose()


async def test_the_same_key_under_two_agent_keys_is_two_tasks(database_url: str) -> None:
    async with running_app(make_settings(database_url)) as (app, admin):
        async with agents(app, admin, "refund-bot-a", "refund-bot-b") as (a, b):
            made_a = await a.post("/api/tasks", json=body())
            assert made_a.status_code == 201, made_a.text
            assert "idempotent-replayed" not in made_a.headers
            # B, with A's key and even A's content: a task of its own, not A's 409.
            made_b = await b.post("/api/tasks", json=body())
            assert made_b.status_code == 201, made_b.text
            assert "idempotent-replayed" not in made_b.headers
            a_id, b_id = made_a.json()["id"], made_b.json()["id"]
            assert a_id != b_id

            # Each agent repeating gets its own task back, and only that.
            for client, task_id in ((a, a_id), (b, b_id)):
                again = await client.post("/api/tasks", json=body())
                assert again.status_code == 201, again.text
                assert again.headers["idempotent-replayed"] == "true"
                assert again.json()["id"] == task_id
            # A mismatched repeat under one key is still that key's conflict, and it
            # changes nothing.
            conflict = await a.post("/api/tasks", json=body(amount=999))
            assert conflict.status_code == 409
            assert conflict.json()["error"] == "IDEMPOTENCY_CONFLICT"
            assert (await a.get(f"/api/tasks/{a_id}")).json()["payload"] == {"amount": 250}

            # Neither agent sees the other's task.
            assert (await b.get(f"/api/tasks/{a_id}")).status_code == 404
            assert [t["id"] for t in (await a.get("/api/tasks")).json()["items"]] == [a_id]
            assert [t["id"] for t in (await b.get("/api/tasks")).json()["items"]] == [b_id]

            # Operators see both; the admin token's own creates are one more scope.
            listed = (await admin.get("/api/tasks")).json()["items"]
            assert {t["id"] for t in listed if t["idempotency_key"] == KEY} == {a_id, b_id}
            for task_id in (a_id, b_id):
                assert (await admin.get(f"/api/tasks/{task_id}")).status_code == 200
            own = await admin.post("/api/tasks", json=body())
            assert own.status_code == 201
            assert own.json()["id"] not in (a_id, b_id)
            replay = await admin.post("/api/tasks", json=body())
            assert replay.headers["idempotent-replayed"] == "true"
            assert replay.json()["id"] == own.json()["id"]
            assert (await admin.post("/api/tasks", json=body(amount=1))).status_code == 409

        async with app.state.ctx.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(TaskRow.idempotency_scope, TaskRow.owner_id).where(
                        TaskRow.idempotency_key == KEY
                    )
                )
            ).all()
        assert len(rows) == 3
        assert all(scope == owner for scope, owner in rows)
        assert {scope.split(":")[0] for scope, _ in rows} == {"agent", "admin"}


async def test_concurrent_creates_with_one_key_make_one_task_per_agent(
    database_url: str,
) -> None:
    # Sent at once, the creates land in the writer's same batches: each agent still gets
    # exactly one task, and every one of its calls that task.
    async with (
        running_app(make_settings(database_url)) as (app, admin),
        agents(app, admin, "a", "b", "c") as clients,
    ):
        calls = [client.post("/api/tasks", json=body()) for client in clients for _ in range(8)]
        answers = await asyncio.gather(*calls)
    assert [r.status_code for r in answers] == [201] * 24
    per_agent = [{r.json()["id"] for r in answers[i * 8 : (i + 1) * 8]} for i in range(3)]
    assert all(len(ids) == 1 for ids in per_agent), per_agent
    assert len(set.union(*per_agent)) == 3
    replayed = [r.headers.get("idempotent-replayed") == "true" for r in answers]
    assert replayed.count(False) == 3


# -- the migration ------------------------------------------------------------------------


def _old_tasks_table() -> sa.TableClause:
    """``tasks`` as revision 0009 had it (no idempotency_scope), with the model's types."""
    columns = [c for c in TaskRow.__table__.columns if c.name != "idempotency_scope"]
    return sa.table("tasks", *[sa.column(c.name, c.type) for c in columns])


def _old_row(task_id: str, key: str, owner_id: str) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": task_id,
        "idempotency_key": key,
        "fingerprint": "0" * 64,
        "owner_id": owner_id,
        "task": "From before 0010",
        "status": "created",
        "version": 0,
        "payload_enc": b"sealed",
        "response_enc": None,
        "payload_schema": {"type": "object"},
        "response_schema": {"type": "object"},
        "form_definition": None,
        "timeout_seconds": 600,
        "timeout_at": now + timedelta(minutes=10),
        "assign_to": None,
        "assigned_to_user_id": None,
        "notify": None,
        "verifier_config": None,
        "redact_payload": False,
        "callback_url": None,
        "task_metadata": None,
        "initial_response": None,
        "verification_attempt": 0,
        "submission_enc": None,
        "verification_reason": None,
        "verification_error": None,
        "created_at": now,
        "updated_at": now,
        "completed_at": None,
        "timed_out_at": None,
        "completed_by_user_id": None,
        "completed_by_email": None,
        "completed_by_display_name": None,
        "completed_via_channel": None,
    }


async def test_the_migration_scopes_existing_rows_by_their_creator(database_url: str) -> None:
    settings = make_settings(database_url)
    engine = make_engine(settings)
    try:

        def to(revision: str, down: bool = False) -> Any:
            def run(connection: Connection) -> None:
                cfg = _alembic_config(connection)
                (command.downgrade if down else command.upgrade)(cfg, revision)

            return run

        async with engine.begin() as conn:
            await conn.run_sync(to("0009"))
        old = [
            _old_row("tsk_" + "a" * 24, "refund:1", "agent:key_a"),
            _old_row("tsk_" + "b" * 24, "refund:2", "admin:admin"),
            _old_row("tsk_" + "c" * 24, "refund:3", ""),  # no creator recorded
        ]
        async with engine.begin() as conn:
            await conn.execute(sa.insert(_old_tasks_table()), old)
        await migrate(engine)
        async with engine.connect() as conn:
            scopes = dict(
                (await conn.execute(sa.select(TaskRow.id, TaskRow.idempotency_scope))).all()
            )
        assert scopes == {
            "tsk_" + "a" * 24: "agent:key_a",
            "tsk_" + "b" * 24: "admin:admin",
            "tsk_" + "c" * 24: "legacy",
        }
        # One key per scope, enforced by the database itself.
        dup = _old_row("tsk_" + "d" * 24, "refund:1", "agent:key_a")
        dup["idempotency_scope"] = "agent:key_a"
        async with engine.connect() as conn:
            with pytest.raises(IntegrityError):
                await conn.execute(sa.insert(TaskRow), [dup])
        async with engine.begin() as conn:
            other = _old_row("tsk_" + "e" * 24, "refund:1", "agent:key_b")
            await conn.execute(sa.insert(TaskRow), [other])  # scope from owner_id

        # Back below 0010 is refused while two credentials share a key, changing nothing.
        # Each downgrade runs as migrate() runs an upgrade: in one transaction that holds the
        # migration lock (on SQLite, BEGIN IMMEDIATE; without it the driver commits each DDL
        # statement at once, and a refusal would leave the later revisions' downgrades done).
        async def down_to(revision: str) -> None:
            async with engine.begin() as conn:
                await _lock_for_migration(conn)
                await conn.run_sync(to(revision, down=True))

        with pytest.raises(RuntimeError, match="refund:1"):
            await down_to("0009")
        async with engine.begin() as conn:
            await conn.execute(sa.delete(TaskRow).where(TaskRow.id == "tsk_" + "e" * 24))
        await down_to("0009")
        await migrate(engine)
        async with engine.connect() as conn:
            assert len((await conn.execute(sa.select(TaskRow.id))).all()) == 3
    finally:
        await engine.dispose()

    # The server on the migrated rows: the admin token's key from before 0010 is still its
    # own (a different content is its conflict), and an agent with that key gets a new task.
    async with running_app(settings) as (app, admin):
        assert admin.headers["authorization"] == f"Bearer {ADMIN_TOKEN}"
        conflict = await admin.post("/api/tasks", json=body(key="refund:2"))
        assert conflict.status_code == 409
        async with agents(app, admin, "bot") as (bot,):
            mine = await bot.post("/api/tasks", json=body(key="refund:2"))
            assert mine.status_code == 201
            assert mine.json()["id"] != "tsk_" + "b" * 24
