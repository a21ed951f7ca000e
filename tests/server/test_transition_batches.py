"""Many status changes in one transaction (``lifecycle.transition_many``), on both backends.

The writer hands every task action of a batch to the lifecycle at once: one read, one update
per set of columns, one insert of audit rows and one of outbox rows, one statement of change
notices. What must hold is what a statement per move gave: each move decided on the task as
the moves before it left it, a row of audit per move, the outbox rows of each terminal move,
and on PostgreSQL one change notice per move with its version.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import asyncpg
import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from awaithumans.core._wire import TaskStatus
from awaithumans.server.db.models import AuditRow, OutboxRow, TaskRow
from awaithumans.server.principals import ADMIN
from awaithumans.server.services.lifecycle import (
    ANSWERABLE,
    Channel,
    ConcurrentChange,
    Move,
    Moved,
    Refused,
    transition_many,
)
from awaithumans.server.services.replicas import CHANNEL
from awaithumans.server.services.writer import RetryAlone, Write, Writer
from tests._app_fixtures import make_settings, running_app

S = TaskStatus
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}},
    "required": ["ok"],
}
# Nothing listens here; the rows only need to exist.
CALLBACK_URL = "http://127.0.0.1:9/awaithumans-hook"


def sqlite_url(folder: Path) -> str:
    return f"sqlite+aiosqlite:///{folder / 'test.db'}"


async def make_tasks(admin: httpx.AsyncClient, count: int, **extra: Any) -> list[str]:
    """``count`` fresh tasks created through the API; their ids."""
    ids = []
    for n in range(count):
        made = await admin.post(
            "/api/tasks",
            json={
                "task": f"Batch {n}",
                "payload": {"ok": True},
                "payload_schema": SCHEMA,
                "response_schema": SCHEMA,
                "timeout_seconds": 3600,
                "idempotency_key": f"batch-{uuid.uuid4().hex}",
                **extra,
            },
        )
        assert made.status_code == 201, made.text
        ids.append(made.json()["id"])
    return ids


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[tuple[AsyncEngine, list[str]]]:
    """The app on ``database_url`` with four fresh tasks (with a callback URL)."""
    async with running_app(make_settings(database_url)) as (app, admin):
        ids = await make_tasks(admin, 4, callback_url=CALLBACK_URL)
        yield app.state.ctx.engine, ids


def complete(task_id: str, answer: bool = True) -> Move:
    return Move(
        task_id,
        S.COMPLETED,
        "completed",
        ADMIN,
        Channel.API,
        allowed_from=ANSWERABLE,
        values={"completed_via_channel": "api"},
        detail={"answer": answer},
    )


def claim(task_id: str) -> Move:
    return Move(task_id, S.IN_PROGRESS, "claimed", ADMIN, Channel.API)


async def trail(conn: AsyncConnection, task_id: str) -> list[tuple[str | None, str, str]]:
    rows = await conn.execute(
        select(AuditRow.from_status, AuditRow.to_status, AuditRow.action)
        .where(AuditRow.task_id == task_id)
        .order_by(AuditRow.id)
    )
    return [(r[0], r[1], r[2]) for r in rows]


async def test_a_batch_decides_each_move_on_what_the_moves_before_it_left(
    world: tuple[AsyncEngine, list[str]],
) -> None:
    engine, (a, b, c, d) = world
    missing = "tsk_" + "0" * 24
    moves = [
        complete(a),
        claim(c),
        complete(b),
        complete(c),  # after the claim in this same batch: from in_progress
        complete(a, answer=False),  # a second answer to a: refused, a is completed now
        Move(missing, S.CANCELLED, "cancelled", ADMIN, Channel.API),
        Move(d, S.SUBMITTED, "submitted", ADMIN, Channel.API, allowed_from=frozenset()),
    ]
    async with engine.begin() as conn:
        outcomes = await transition_many(conn, moves)

    assert [type(o).__name__ for o in outcomes] == [
        "Moved", "Moved", "Moved", "Moved", "Refused", "Refused", "Refused",
    ]  # fmt: skip
    first_a, claim_c, done_b, done_c, again_a, unknown, not_allowed = outcomes
    assert isinstance(first_a, Moved)
    assert (first_a.from_status, first_a.to_status, first_a.version) == (S.CREATED, S.COMPLETED, 1)
    assert isinstance(claim_c, Moved)
    assert (claim_c.to_status, claim_c.version) == (S.IN_PROGRESS, 1)
    assert isinstance(done_c, Moved)
    assert (done_c.from_status, done_c.to_status, done_c.version) == (
        S.IN_PROGRESS,
        S.COMPLETED,
        2,
    )
    assert isinstance(done_b, Moved)
    assert done_b.outbox_rows >= 1  # the webhook to callback_url
    assert isinstance(again_a, Refused)
    assert again_a.current is S.COMPLETED
    assert isinstance(unknown, Refused)
    assert unknown.current is None
    assert isinstance(not_allowed, Refused)
    assert not_allowed.current is S.CREATED

    async with engine.connect() as conn:
        stored = {
            r.id: (r.status, r.version, r.completed_via_channel)
            for r in await conn.execute(select(TaskRow).where(TaskRow.id.in_([a, b, c, d])))
        }
        assert stored == {
            a: ("completed", 1, "api"),
            b: ("completed", 1, "api"),
            c: ("completed", 2, "api"),
            d: ("created", 0, None),
        }
        assert await trail(conn, c) == [
            (None, "created", "created"),
            ("created", "in_progress", "claimed"),
            ("in_progress", "completed", "completed"),
        ]
        assert await trail(conn, a) == [
            (None, "created", "created"),
            ("created", "completed", "completed"),
        ]
        assert await trail(conn, d) == [(None, "created", "created")]
        hooks = await conn.execute(select(OutboxRow.task_id).where(OutboxRow.kind == "webhook"))
        webhooks = {r.task_id for r in hooks}
        assert webhooks == {a, b, c}


async def test_postgres_sends_one_change_notice_per_move(postgres_url: str) -> None:
    """Each moved task's notice carries its own version and its own place in the sequence."""
    async with running_app(make_settings(postgres_url)) as (app, admin):
        ids = await make_tasks(admin, 3)
        heard: asyncio.Queue[str] = asyncio.Queue()
        listener = await asyncpg.connect("postgresql://" + postgres_url.split("://", 1)[1])
        try:
            await listener.add_listener(
                CHANNEL, lambda _c, _p, _ch, payload: heard.put_nowait(payload)
            )
            engine: AsyncEngine = app.state.ctx.engine
            async with engine.begin() as conn:
                await transition_many(conn, [claim(ids[0]), complete(ids[0]), complete(ids[1])])
            notices = [await asyncio.wait_for(heard.get(), 10) for _ in range(3)]
        finally:
            await listener.close()
    parsed = [n.split(":") for n in notices]
    assert [(p[0], int(p[1])) for p in parsed] == [(ids[0], 1), (ids[0], 2), (ids[1], 1)]
    numbers = [int(p[2]) for p in parsed]
    assert numbers == sorted(numbers)
    assert len(set(numbers)) == 3


async def test_sqlite_batch_that_lost_a_race_is_rolled_back_whole(tmp_path: Path) -> None:
    """Another process changes one task between a batch's read and its write: the batch
    raises (nothing of it lands) and the writer applies its moves one by one."""
    async with running_app(make_settings(sqlite_url(tmp_path))) as (app, admin):
        ids = await make_tasks(admin, 2)
        engine: AsyncEngine = app.state.ctx.engine

        class Interfering:
            """The connection of a batch; the other process writes before its update."""

            def __init__(self, conn: AsyncConnection) -> None:
                self._conn = conn
                self.interfered = False

            def __getattr__(self, name: str) -> Any:
                return getattr(self._conn, name)

            async def execute(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
                if not self.interfered and getattr(statement, "is_update", False):
                    self.interfered = True
                    async with engine.begin() as other:
                        await other.execute(
                            update(TaskRow)
                            .where(TaskRow.id == ids[1])
                            .values(status="notified", version=TaskRow.version + 1)
                        )
                return await self._conn.execute(statement, *args, **kwargs)

        with pytest.raises(ConcurrentChange):
            async with engine.begin() as conn:
                await transition_many(
                    Interfering(conn),  # type: ignore[arg-type]
                    [complete(ids[0]), complete(ids[1])],
                )
        async with engine.connect() as conn:
            found = await conn.execute(
                select(TaskRow.id, TaskRow.status).where(TaskRow.id.in_(ids))
            )
            statuses = dict(found.all())
            assert statuses == {ids[0]: "created", ids[1]: "notified"}
            assert await trail(conn, ids[0]) == [(None, "created", "created")]


class _Flaky(Write[str]):
    """A bulk write whose first batch asks to be retried alone."""

    group: ClassVar[str | None] = "flaky"
    batches: ClassVar[list[int]] = []

    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    async def apply_many(cls, conn: AsyncConnection, writes: Any) -> list[Any]:
        cls.batches.append(len(writes))
        if len(cls.batches) == 1:
            raise RetryAlone("a row changed meanwhile")
        return [w.name for w in writes]


async def test_writer_applies_a_retry_alone_batch_write_by_write(tmp_path: Path) -> None:
    async with running_app(make_settings(sqlite_url(tmp_path))) as (app, _admin):
        writer = Writer(app.state.ctx.engine)
        writer.start()
        try:
            # Queued together before the writer runs: one batch of three, then each alone.
            results = await asyncio.gather(*(writer.submit(_Flaky(n)) for n in "xyz"))
        finally:
            await writer.stop()
    assert results == ["x", "y", "z"]
    assert _Flaky.batches == [3, 1, 1, 1]
