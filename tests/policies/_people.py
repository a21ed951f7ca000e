"""A small company for the approvers and votes tests: an operator and reviewers in the
directory (some with roles), signed in through the JSON API like any client.

Roles are written straight into ``user_memberships`` (the directory's own pages and API
for them are tested elsewhere): these tests are about who may answer, not how roles are
given.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import insert, select

from awaithumans.core import Ask
from awaithumans.server.db.models import TaskRow, TaskVoteRow, UserMembershipRow
from tests._app_fixtures import make_settings, running_app
from tests.policies._world import PASSWORD, add_people

# email -> (display name, operator, roles)
PEOPLE: dict[str, tuple[str, bool, tuple[str, ...]]] = {
    "olga@acme.com": ("Olga Ops", True, ()),
    "alice@acme.com": ("Alice Approver", False, ()),
    "bob@acme.com": ("Bob Billing", False, ("finance",)),
    "carol@acme.com": ("Carol Controller", False, ("finance",)),
    "rita@acme.com": ("Rita Reviewer", False, ()),
}


class Refund(BaseModel):
    order_id: str


class Decision(BaseModel):
    approved: bool
    notes: str | None = None


@dataclass
class Company:
    app: FastAPI
    admin: httpx.AsyncClient
    ids: dict[str, str]  # email -> user id

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://testserver"
        )

    @asynccontextmanager
    async def as_user(self, email: str) -> AsyncIterator[httpx.AsyncClient]:
        """A client signed in as ``email`` (a session cookie, as the dashboard has)."""
        async with self.client() as client:
            got = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
            assert got.status_code == 200, got.text
            yield client

    async def create(self, creator: httpx.AsyncClient | None = None, **policy: Any) -> str:
        """A task asking for a refund decision, with ``policy``, created by ``creator``
        (the admin token by default)."""
        body = (
            Ask(
                task="Refund order ord_1?",
                payload_schema=Refund,
                payload=Refund(order_id="ord_1"),
                response_schema=Decision,
                timeout_seconds=86_400,
                idempotency_key=f"k-{uuid.uuid4().hex}",
                **policy,
            )
            .request()
            .model_dump(mode="json", exclude_none=True)
        )
        made = await (creator or self.admin).post("/api/tasks", json=body)
        assert made.status_code == 201, made.text
        return str(made.json()["id"])

    async def row(self, task_id: str) -> Any:
        async with self.app.state.ctx.engine.connect() as conn:
            return (
                (await conn.execute(select(TaskRow).where(TaskRow.id == task_id))).mappings().one()
            )

    async def vote_rows(self, task_id: str) -> list[Any]:
        async with self.app.state.ctx.engine.connect() as conn:
            return list(
                (
                    await conn.execute(
                        select(TaskVoteRow)
                        .where(TaskVoteRow.task_id == task_id)
                        .order_by(TaskVoteRow.id)
                    )
                ).mappings()
            )

    async def audit(self, task_id: str) -> list[dict[str, Any]]:
        got = await self.admin.get(f"/api/tasks/{task_id}/audit")
        assert got.status_code == 200, got.text
        return list(got.json())


@asynccontextmanager
async def company(database_url: str, **settings: Any) -> AsyncIterator[Company]:
    async with running_app(make_settings(database_url, **settings)) as (app, admin):
        ids = await add_people(admin, [(e, name, op) for e, (name, op, _r) in PEOPLE.items()])
        memberships = [
            {"user_id": ids[email], "kind": "role", "name": role}
            for email, (_n, _o, roles) in PEOPLE.items()
            for role in roles
        ]
        async with app.state.ctx.engine.begin() as conn:
            await conn.execute(insert(UserMembershipRow), memberships)
        yield Company(app, admin, ids)
