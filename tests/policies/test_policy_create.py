"""Approval policies at create: what the SDK sends, what the server stores, what it refuses.

In-process app (real lifespan) on SQLite and PostgreSQL. A policy that cannot be satisfied
as written is refused with 400 ``INVALID_POLICY`` and nothing is stored; a policy is part of
the idempotency fingerprint; a task without one stores none.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from sqlalchemy import func, select

from awaithumans.core import Ask
from awaithumans.core._errors import SchemaValidationError
from awaithumans.server.db.models import TaskRow
from tests._app_fixtures import make_settings, running_app


class Refund(BaseModel):
    order_id: str


class Decision(BaseModel):
    approved: bool
    notes: str | None = None


class Note(BaseModel):
    text: str


def ask(**policy: Any) -> dict[str, Any]:
    response_schema = policy.pop("response_schema", Decision)
    return (
        Ask(
            task="Refund order ord_1?",
            payload_schema=Refund,
            payload=Refund(order_id="ord_1"),
            response_schema=response_schema,
            timeout_seconds=86_400,
            idempotency_key=policy.pop("key", "k-1"),
            **policy,
        )
        .request()
        .model_dump(mode="json", exclude_none=True)
    )


@pytest.fixture
async def admin(database_url: str) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    async with running_app(make_settings(database_url)) as (app, client):
        yield app, client


async def stored_policy(app: Any, task_id: str) -> Any:
    async with app.state.ctx.engine.connect() as conn:
        return (await conn.execute(select(TaskRow.policy).where(TaskRow.id == task_id))).scalar()


async def task_count(app: Any) -> int:
    async with app.state.ctx.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(TaskRow))).scalar_one())


async def test_the_policy_is_stored_as_given(admin: tuple[Any, httpx.AsyncClient]) -> None:
    app, client = admin
    made = await client.post(
        "/api/tasks",
        json=ask(
            approvers=["Alice@Acme.com", "role:finance", "pool:tier1"],
            operators_may_answer=False,
            approvals_required=2,
            rejection_policy="majority",
            reminders=[timedelta(hours=8), timedelta(hours=4), timedelta(hours=4)],
            escalate_after=timedelta(hours=24),
            escalate_to=["slack:@lead", "email:lead@acme.com"],
            escalate_reassign=True,
        ),
    )
    assert made.status_code == 201, made.text
    assert await stored_policy(app, made.json()["id"]) == {
        "approvers": {"emails": ["alice@acme.com"], "roles": ["finance"], "pools": ["tier1"]},
        "operators_may_answer": False,
        "approvals_required": 2,
        "rejection_policy": "majority",
        "reminder_seconds": [4 * 3600, 8 * 3600],
        "escalate_after_seconds": 24 * 3600,
        "escalate_to": ["slack:@lead", "email:lead@acme.com"],
        "escalate_reassign": True,
    }


async def test_a_plain_task_stores_no_policy(admin: tuple[Any, httpx.AsyncClient]) -> None:
    app, client = admin
    made = await client.post("/api/tasks", json=ask())
    assert made.status_code == 201, made.text
    assert await stored_policy(app, made.json()["id"]) is None


async def test_the_policy_is_part_of_the_idempotency_fingerprint(
    admin: tuple[Any, httpx.AsyncClient],
) -> None:
    _, client = admin
    first = await client.post("/api/tasks", json=ask(key="same", approvers=["a@acme.com"]))
    assert first.status_code == 201, first.text
    again = await client.post("/api/tasks", json=ask(key="same", approvers=["a@acme.com"]))
    assert again.status_code in (200, 201), again.text
    assert again.json()["id"] == first.json()["id"]
    other = await client.post("/api/tasks", json=ask(key="same", approvers=["b@acme.com"]))
    assert other.status_code == 409, other.text
    assert other.json()["error"] == "IDEMPOTENCY_CONFLICT"


@pytest.mark.parametrize(
    ("policy", "says"),
    [
        ({"approvers": ["not an email"]}, "neither an email"),
        ({"approvers": ["role:Finance Team"]}, "not a valid role name"),
        ({"approvals_required": 3, "approvers": ["a@acme.com", "b@acme.com"]}, "only 2 people"),
        ({"approvals_required": 2, "response_schema": Note}, "'approved' field"),
        ({"rejection_policy": "majority"}, "only when approvals_required"),
        ({"escalate_after": timedelta(hours=1)}, "needs escalate_to"),
        ({"escalate_to": ["slack:#ops"]}, "needs escalate_after"),
        ({"operators_may_answer": False}, "needs approvers"),
    ],
)
async def test_a_policy_that_cannot_hold_is_refused_and_nothing_is_stored(
    admin: tuple[Any, httpx.AsyncClient], policy: dict[str, Any], says: str
) -> None:
    app, client = admin
    refused = await client.post("/api/tasks", json=ask(**policy))
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "INVALID_POLICY"
    assert says in refused.json()["message"]
    assert await task_count(app) == 0


async def test_a_bad_escalation_route_names_the_parameter(
    admin: tuple[Any, httpx.AsyncClient],
) -> None:
    app, client = admin
    refused = await client.post(
        "/api/tasks",
        json=ask(escalate_after=timedelta(hours=1), escalate_to=["pager:lead"]),
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "INVALID_NOTIFY_ROUTE"
    assert refused.json()["message"].startswith("escalate_to: ")
    assert await task_count(app) == 0


def test_the_sdk_refuses_out_of_range_values_where_the_call_is_written() -> None:
    with pytest.raises(SchemaValidationError, match="approvals_required"):
        ask(approvals_required=0)
    with pytest.raises(SchemaValidationError, match="reminder_seconds"):
        ask(reminders=[timedelta(seconds=5)])
    with pytest.raises(SchemaValidationError, match="escalate_after"):
        ask(escalate_after=3600)
