"""The task page: reading, answering, claiming and cancelling, against the in-process app.

Tasks are created through the JSON API with the admin token; people sign in through /login
like a browser would, and every form carries the CSRF field the page rendered.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum
from html import unescape
from html.parser import HTMLParser
from typing import Any, Literal

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field

from awaithumans.core._forms import FieldKind, FormDefinition, FormField, FormOption, extract_form
from awaithumans.server.dashboard.forms import (
    form_values,
    initial_values,
    parse_submission,
    widgets_for,
)
from awaithumans.server.services.display import answer_items, display
from awaithumans.server.services.form_input import field_errors
from tests._app_fixtures import make_settings, running_app

PASSWORD = "correct horse battery"


# -- a response model with every primitive ---------------------------------------------------


class Decision(StrEnum):
    APPROVE = "approve"
    PARTIAL_REFUND = "partial"
    ESCALATE = "escalate"


class Tag(StrEnum):
    URGENT = "urgent"
    BILLING = "billing"
    FRAUD = "fraud"


class Review(BaseModel):
    approved: bool = Field(description="Is the refund justified?")
    notify_customer: bool = False
    decision: Decision
    country: Literal["de", "fr", "it", "es", "nl", "pl", "se"] | None = None
    tags: list[Tag] = Field(default_factory=list)
    note: str = Field(max_length=80, description="One line for the customer.")
    explanation: str | None = Field(default=None, max_length=2000)
    amount: float = Field(ge=0, le=1000)
    quantity: int = Field(ge=1, le=10)
    due: date
    at: datetime | None = None
    opens: time | None = None
    extra: dict[str, int] = Field(default_factory=dict)


FORM = extract_form(Review)
SCHEMA = Review.model_json_schema()

GOOD = {
    "f.approved": "true",
    "f.notify_customer": "true",
    "f.decision": "partial",
    "f.country": "fr",
    "f.tags": ["urgent", "fraud"],
    "f.note": "  Refund half  ",
    "f.explanation": "line one\r\nline two",
    "f.amount": "12.5",
    "f.quantity": "3",
    "f.due": "2024-05-01",
    "f.at": "2024-05-01T13:30",
    "f.opens": "09:15",
    "f.extra": '{"a": 1}',
}
GOOD_RESPONSE = {
    "approved": True,
    "notify_customer": True,
    "decision": "partial",
    "country": "fr",
    "tags": ["urgent", "fraud"],
    "note": "Refund half",
    "explanation": "line one\nline two",
    "amount": 12.5,
    "quantity": 3,
    "due": "2024-05-01",
    "at": "2024-05-01T13:30:00Z",
    "opens": "09:15:00",
    "extra": {"a": 1},
}


# -- fixtures and helpers ----------------------------------------------------------------


@dataclass
class World:
    app: FastAPI
    admin: httpx.AsyncClient
    users: dict[str, str]  # email -> user id


@pytest.fixture
async def world(tmp_path: object) -> AsyncIterator[World]:
    async with make_world(f"sqlite+aiosqlite:///{tmp_path}/d.db") as made:
        yield made


@pytest.fixture
async def world_any(database_url: str) -> AsyncIterator[World]:
    """The same, on SQLite and on PostgreSQL."""
    async with make_world(database_url) as made:
        yield made


@asynccontextmanager
async def make_world(url: str) -> AsyncIterator[World]:
    async with running_app(make_settings(url)) as (app, admin):
        users = {}
        for email, name, operator in (
            ("ops@acme.com", "Olga Ops", True),
            ("rita@acme.com", "Rita Reviewer", False),
            ("sam@acme.com", "Sam Second", False),
        ):
            made = await admin.post(
                "/api/admin/users",
                json={
                    "email": email,
                    "display_name": name,
                    "is_operator": operator,
                    "password": PASSWORD,
                },
            )
            assert made.status_code == 201, made.text
            users[email] = made.json()["id"]
        yield World(app, admin, users)


def browser(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "page has no CSRF field"
    return found.group(1)


@asynccontextmanager
async def signed_in(app: FastAPI, email: str) -> AsyncIterator[httpx.AsyncClient]:
    """A browser signed in through the login form."""
    async with browser(app) as client:
        page = await client.get("/login")
        done = await client.post(
            "/login",
            data={
                "csrf_token": csrf_of(page.text),
                "email": email,
                "password": PASSWORD,
                "next": "/",
            },
        )
        assert done.status_code == 303, done.text
        yield client


async def create_task(admin: httpx.AsyncClient, key: str, **extra: Any) -> str:
    body: dict[str, Any] = {
        "task": "Approve the refund for order #1234",
        "payload": {
            "customer": {"name": "Ada <b>Lovelace</b>", "tier": "gold"},
            "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}],
            "flags": ["first-order", "high-value"],
            "paid": True,
        },
        "payload_schema": {"type": "object"},
        "response_schema": SCHEMA,
        "form_definition": FORM.model_dump(mode="json", exclude_none=True),
        "timeout_seconds": 3600,
        "idempotency_key": key,
    }
    body.update(extra)
    made = await admin.post("/api/tasks", json=body)
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def task_json(admin: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    got = await admin.get(f"/api/tasks/{task_id}")
    assert got.status_code == 200
    return dict(got.json())


async def audit_of(admin: httpx.AsyncClient, task_id: str) -> list[dict[str, Any]]:
    return list((await admin.get(f"/api/tasks/{task_id}/audit")).json())


def form_data(values: dict[str, Any], csrf: str, task_id: str) -> dict[str, Any]:
    return {"csrf_token": csrf, "id": task_id, **values}


class Tags(HTMLParser):
    """Start tags with their attributes, and the page's text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def find(self, tag: str, **want: str) -> list[dict[str, str | None]]:
        return [
            a
            for t, a in self.tags
            if t == tag
            and all(a.get(k.rstrip("_").replace("_", "-")) == v for k, v in want.items())
        ]

    def one(self, tag: str, **want: str) -> dict[str, str | None]:
        found = self.find(tag, **want)
        assert len(found) == 1, (tag, want, found)
        return found[0]

    @property
    def plain(self) -> str:
        return re.sub(r"\s+", " ", "".join(self.text))


# -- the page --------------------------------------------------------------------------


async def test_every_primitive_renders_with_labels_and_aria(world: World) -> None:
    task_id = await create_task(world.admin, "prims", task_metadata={"order": {"id": 1234}})
    async with signed_in(world.app, "ops@acme.com") as client:
        page = await client.get(f"/task?id={task_id}")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = Tags(page.text)
    assert '<link rel="stylesheet" href="/static/task.css?v=' in page.text
    # required bool: two radios, so "not answered" is distinguishable
    yes = html.one("input", type="radio", name="f.approved", value="true")
    html.one("input", type="radio", name="f.approved", value="false")
    assert "required" in yes
    assert html.find("fieldset", role="radiogroup", aria_required="true")
    # optional bool: one checkbox
    html.one("input", type="checkbox", name="f.notify_customer", value="true")
    # single select with 3 options: radios; with 7: a select
    assert len(html.find("input", type="radio", name="f.decision")) == 3
    assert "Partial refund" in html.plain
    html.one("select", name="f.country")
    assert len(html.find("option")) == 8  # 7 countries + "No answer"
    # multi select: checkboxes
    assert len(html.find("input", type="checkbox", name="f.tags")) == 3
    # text: input with maxlength, long text: textarea
    note = html.one("input", name="f.note", type="text")
    assert note["maxlength"] == "80"
    assert "required" in note
    assert note["aria-required"] == "true"
    html.one("textarea", name="f.explanation")
    # numbers with bounds and step
    amount = html.one("input", name="f.amount", type="number")
    assert (amount["min"], amount["max"], amount["step"]) == ("0", "1000", "any")
    quantity = html.one("input", name="f.quantity", type="number")
    assert (quantity["min"], quantity["max"], quantity["step"]) == ("1", "10", "1")
    # temporal inputs
    html.one("input", name="f.due", type="date")
    html.one("input", name="f.at", type="datetime-local")
    html.one("input", name="f.opens", type="time")
    # json fallback: a monospace textarea saying it wants JSON
    extra = html.one("textarea", name="f.extra")
    assert extra["class"] == "mono"
    assert "Enter JSON" in html.plain
    # every control has a label
    ids = {a["id"] for t, a in html.tags if t in ("input", "select", "textarea") and a.get("id")}
    ids.discard("cancel-reason")
    labelled = {a["for"] for t, a in html.tags if t == "label"}
    assert ids <= labelled
    # hints are linked, required marks are hidden from screen readers
    assert html.find("p", id=str(note["aria-describedby"]))
    assert '<span class="req" aria-hidden="true">*</span>' in page.text
    assert html.find("legend")
    # the payload reads as nested lists, escaped, not as a JSON dump
    assert "Ada <b>Lovelace</b>" in html.plain
    assert "<b>Lovelace" not in page.text
    assert "&lt;b&gt;Lovelace" in page.text
    assert '{"name"' not in unescape(page.text)
    assert "first-order" in html.plain
    assert "Metadata" in html.plain
    assert "1234" in html.plain
    # the audit trail shows the creation
    assert "Created by admin token" in html.plain
    # no inline scripts or styles
    assert "<script>" not in page.text
    assert " style=" not in page.text
    assert "'unsafe-inline'" not in page.headers["content-security-policy"].split("script-src")[1]


async def test_submit_round_trip_stores_the_typed_values(world_any: World) -> None:
    world = world_any
    task_id = await create_task(world.admin, "round", assign_to={"email": "rita@acme.com"})
    async with signed_in(world.app, "rita@acme.com") as client:
        page = await client.get(f"/task?id={task_id}")
        assert page.status_code == 200
        assert "you're submitting as operator" not in page.text
        sent = await client.post("/task/submit", data=form_data(GOOD, csrf_of(page.text), task_id))
        assert sent.status_code == 303, sent.text
        assert sent.headers["location"] == f"/task?id={task_id}"
        done = await client.get(sent.headers["location"])
    stored = await task_json(world.admin, task_id)
    assert stored["status"] == "completed"
    assert stored["response"] == GOOD_RESPONSE
    Review.model_validate(stored["response"])  # the agent's model accepts it
    assert stored["completed_via_channel"] == "dashboard"
    assert stored["completed_by_email"] == "rita@acme.com"
    html = Tags(done.text)
    assert "Answer recorded" in html.plain
    assert "completed" in html.plain
    # the answer by field label, choices by option label; who, channel, when
    assert "Partial refund" in html.plain
    assert "Notify customer" in html.plain
    assert "2024-05-01 13:30 UTC" in html.plain
    assert "Answered by Rita Reviewer (rita@acme.com) via dashboard on" in html.plain
    assert "UTC" in html.plain
    assert not html.find("form", action="/task/submit")
    audit = await audit_of(world.admin, task_id)
    assert audit[-1]["action"] == "completed"
    assert audit[-1]["channel"] == "dashboard"


async def test_validation_error_round_trip(world: World) -> None:
    task_id = await create_task(world.admin, "invalid")
    async with signed_in(world.app, "ops@acme.com") as client:
        page = await client.get(f"/task?id={task_id}")
        bad = dict(GOOD, **{"f.quantity": "11", "f.amount": "lots", "f.extra": "{oops"})
        sent = await client.post("/task/submit", data=form_data(bad, csrf_of(page.text), task_id))
        assert sent.status_code == 422
        html = Tags(sent.text)
        assert "Your answer was not saved" in html.plain
        # each message sits at its field, linked for assistive technology
        quantity = html.one("input", name="f.quantity")
        assert quantity["aria-invalid"] == "true"
        assert quantity["value"] == "11"  # what was typed stays
        error = html.one("p", id=str(quantity["aria-describedby"]).split()[-1])
        assert error["class"] == "field-error"
        assert "Enter 10 or less." in html.plain
        assert html.one("input", name="f.amount")["value"] == "lots"
        assert "Enter a number." in html.plain
        assert "This is not valid JSON" in html.plain
        assert "{oops" in sent.text
        # the rest of the typed answer is kept
        assert html.one("input", name="f.note")["value"] == "  Refund half  "
        assert "checked" in html.one("input", name="f.decision", value="partial")
        assert "checked" in html.one("input", name="f.tags", value="fraud")
        assert "checked" not in html.one("input", name="f.tags", value="billing")
        assert (await task_json(world.admin, task_id))["status"] == "created"
        fixed = await client.post("/task/submit", data=form_data(GOOD, csrf_of(sent.text), task_id))
        assert fixed.status_code == 303
    assert (await task_json(world.admin, task_id))["response"] == GOOD_RESPONSE


async def test_schema_errors_land_at_their_field(world: World) -> None:
    # A hand-written schema the form cannot fully express: the pattern is only checked by
    # the schema, and its message must appear at the field.
    schema = {
        "type": "object",
        "properties": {"code": {"type": "string", "pattern": "^[A-Z]{3}$"}},
        "required": ["code"],
    }
    task_id = await create_task(
        world.admin, "pattern", response_schema=schema, form_definition=None
    )
    async with signed_in(world.app, "ops@acme.com") as client:
        page = await client.get(f"/task?id={task_id}")
        sent = await client.post(
            "/task/submit", data=form_data({"f.code": "abc"}, csrf_of(page.text), task_id)
        )
    assert sent.status_code == 422
    html = Tags(sent.text)
    code = html.one("input", name="f.code")
    assert code["aria-invalid"] == "true"
    # Readable, not the raw regex (the schema gives no description, title or example).
    assert "Not in the expected format." in html.plain
    assert "[A-Z]{3}" not in html.plain


async def test_required_bool_unanswered_is_an_error_at_the_field(world: World) -> None:
    task_id = await create_task(world.admin, "bool")
    values = {k: v for k, v in GOOD.items() if k != "f.approved"}
    async with signed_in(world.app, "ops@acme.com") as client:
        page = await client.get(f"/task?id={task_id}")
        sent = await client.post(
            "/task/submit", data=form_data(values, csrf_of(page.text), task_id)
        )
    assert sent.status_code == 422
    html = Tags(sent.text)
    group = html.one("fieldset", role="radiogroup", aria_invalid="true")
    assert html.one("p", id=str(group["aria-describedby"]).split()[-1])
    assert "Choose Yes or No." in html.plain
    assert (await task_json(world.admin, task_id))["status"] == "created"


async def test_initial_response_is_prefilled_over_defaults(world: World) -> None:
    task_id = await create_task(
        world.admin,
        "initial",
        initial_response={
            "approved": False,
            "decision": "escalate",
            "note": "Pre-filled <note>",
            "quantity": 4,
            "tags": ["billing"],
            "at": "2024-05-01T15:30:00+02:00",
            "extra": {"k": 2},
        },
    )
    async with signed_in(world.app, "ops@acme.com") as client:
        page = await client.get(f"/task?id={task_id}")
    html = Tags(page.text)
    assert "checked" in html.one("input", name="f.approved", value="false")
    assert "checked" not in html.one("input", name="f.approved", value="true")
    assert "checked" in html.one("input", name="f.decision", value="escalate")
    assert html.one("input", name="f.note")["value"] == "Pre-filled <note>"
    assert html.one("input", name="f.quantity")["value"] == "4"
    assert "checked" in html.one("input", name="f.tags", value="billing")
    assert html.one("input", name="f.at")["value"] == "2024-05-01T13:30"
    assert '"k": 2' in unescape(page.text)
    # defaults fill the rest: notify_customer defaults to False
    assert "checked" not in html.one("input", name="f.notify_customer")


async def test_redacted_payload_is_hidden(world: World) -> None:
    task_id = await create_task(world.admin, "secret", redact_payload=True)
    async with signed_in(world.app, "ops@acme.com") as client:
        page = await client.get(f"/task?id={task_id}")
    assert page.status_code == 200
    assert "Payload redacted" in page.text
    assert "Lovelace" not in page.text
    assert "first-order" not in page.text


async def test_reviewer_cannot_open_or_answer_anothers_task(world: World) -> None:
    mine = await create_task(world.admin, "mine", assign_to={"email": "rita@acme.com"})
    theirs = await create_task(world.admin, "theirs", assign_to={"email": "sam@acme.com"})
    unassigned = await create_task(world.admin, "nobody")
    async with signed_in(world.app, "rita@acme.com") as client:
        ok = await client.get(f"/task?id={mine}")
        assert ok.status_code == 200
        for task_id in (theirs, unassigned, "tsk_" + "0" * 24, "nonsense", ""):
            page = await client.get("/task", params={"id": task_id})
            assert page.status_code == 404
            assert page.headers["content-type"].startswith("text/html")
            assert "Task not found" in page.text
            assert "Traceback" not in page.text
            assert "Lovelace" not in page.text
        for action in ("/task/submit", "/task/claim", "/task/cancel"):
            forged = await client.post(action, data=form_data(GOOD, csrf_of(ok.text), theirs))
            assert forged.status_code == 404
            assert "Lovelace" not in forged.text
    stored = await task_json(world.admin, theirs)
    assert stored["status"] == "assigned"
    assert stored["response"] is None
    assert [a["action"] for a in await audit_of(world.admin, theirs)] == ["created"]


async def test_anonymous_visitors_are_sent_to_sign_in(world: World) -> None:
    task_id = await create_task(world.admin, "anon")
    async with browser(world.app) as client:
        page = await client.get(f"/task?id={task_id}")
        assert page.status_code == 303
        assert page.headers["location"] == f"/login?next=%2Ftask%3Fid%3D{task_id}"
        sent = await client.post("/task/submit", data={"id": task_id, "f.approved": "true"})
        assert sent.status_code == 303
        assert sent.headers["location"].startswith("/login?next=")
    assert (await task_json(world.admin, task_id))["status"] == "created"


async def test_operator_sees_banner_on_someone_elses_task(world: World) -> None:
    theirs = await create_task(world.admin, "banner", assign_to={"email": "rita@acme.com"})
    open_task = await create_task(world.admin, "no-banner")
    async with signed_in(world.app, "ops@acme.com") as client:
        page = await client.get(f"/task?id={theirs}")
        plain = Tags(page.text).plain
        assert (
            "⚠ Assigned to Rita Reviewer <rita@acme.com> — "
            "you're submitting as operator (ops@acme.com)"
        ) in plain
        # the banner comes before the submit button
        assert page.text.index("submitting as operator") < page.text.index("Submit answer")
        plain_open = Tags((await client.get(f"/task?id={open_task}")).text).plain
        assert "submitting as operator" not in plain_open
        # and the operator's answer lands, recorded as theirs
        sent = await client.post("/task/submit", data=form_data(GOOD, csrf_of(page.text), theirs))
        assert sent.status_code == 303
    stored = await task_json(world.admin, theirs)
    assert stored["completed_by_email"] == "ops@acme.com"


async def test_claim_and_cancel_buttons(world: World) -> None:
    first = await create_task(world.admin, "claim-me")
    second = await create_task(world.admin, "cancel-me")
    async with signed_in(world.app, "ops@acme.com") as client:
        page = await client.get(f"/task?id={first}")
        html = Tags(page.text)
        html.one("form", action="/task/claim")
        cancel = html.one("button", type="submit", class_="btn btn-danger")
        assert cancel["data-confirm"]
        claimed = await client.post(
            "/task/claim", data={"csrf_token": csrf_of(page.text), "id": first}
        )
        assert claimed.status_code == 303
        assert claimed.headers["location"] == f"/task?id={first}"
        after = Tags((await client.get(f"/task?id={first}")).text)
        assert not after.find("form", action="/task/claim")  # claimed by me: no button
        assert "in progress" in after.plain
        assert "Claimed by ops@acme.com" in after.plain
        # claiming again (a stale page) explains rather than failing
        again = await client.post(
            "/task/claim", data={"csrf_token": csrf_of(page.text), "id": first}
        )
        assert again.status_code == 409
        assert "claimed this task first" in again.text

        page2 = await client.get(f"/task?id={second}")
        cancelled = await client.post(
            "/task/cancel",
            data={"csrf_token": csrf_of(page2.text), "id": second, "reason": "duplicate"},
        )
        assert cancelled.status_code == 303
        shown = Tags((await client.get(f"/task?id={second}")).text)
        assert "cancelled" in shown.plain
        assert "This task was cancelled by ops@acme.com" in shown.plain
        assert "Reason: duplicate" in shown.plain
        assert not shown.find("form", action="/task/submit")
        assert not shown.find("form", action="/task/cancel")
    assert (await task_json(world.admin, first))["status"] == "in_progress"
    assert (await task_json(world.admin, first))["assigned_to_user_id"] == world.users[
        "ops@acme.com"
    ]
    assert (await task_json(world.admin, second))["status"] == "cancelled"
    trail = await audit_of(world.admin, second)
    assert trail[-1]["channel"] == "dashboard"
    assert trail[-1]["detail"] == {"reason": "duplicate"}


async def test_reviewer_claims_own_task_but_cannot_cancel(world: World) -> None:
    task_id = await create_task(world.admin, "rita-claims", assign_to={"email": "rita@acme.com"})
    async with signed_in(world.app, "rita@acme.com") as client:
        page = await client.get(f"/task?id={task_id}")
        html = Tags(page.text)
        html.one("form", action="/task/claim")
        assert not html.find("form", action="/task/cancel")
        claimed = await client.post(
            "/task/claim", data={"csrf_token": csrf_of(page.text), "id": task_id}
        )
        assert claimed.status_code == 303
        forged = await client.post(
            "/task/cancel", data={"csrf_token": csrf_of(page.text), "id": task_id}
        )
        assert forged.status_code == 403
        assert "You may not cancel this task." in forged.text
    assert (await task_json(world.admin, task_id))["status"] == "in_progress"


async def test_missing_csrf_is_refused_and_changes_nothing(world: World) -> None:
    task_id = await create_task(world.admin, "csrf")
    async with signed_in(world.app, "ops@acme.com") as client:
        await client.get(f"/task?id={task_id}")
        for action, extra in (
            ("/task/submit", GOOD),
            ("/task/claim", {}),
            ("/task/cancel", {}),
        ):
            sent = await client.post(action, data={"id": task_id, **extra})
            assert sent.status_code == 403
            assert "Please try again" in sent.text
            wrong = await client.post(action, data=form_data(extra, "forged-token", task_id))
            assert wrong.status_code == 403
    assert (await task_json(world.admin, task_id))["status"] == "created"
    assert len(await audit_of(world.admin, task_id)) == 1


async def test_submitting_to_a_finished_task_explains(world: World) -> None:
    task_id = await create_task(world.admin, "late")
    async with signed_in(world.app, "ops@acme.com") as client:
        page = await client.get(f"/task?id={task_id}")
        cancel = await world.admin.post(f"/api/tasks/{task_id}/cancel")
        assert cancel.status_code == 200
        late = await client.post("/task/submit", data=form_data(GOOD, csrf_of(page.text), task_id))
    assert late.status_code == 409
    assert "This task was cancelled, so your answer was not recorded." in late.text
    assert "Traceback" not in late.text
    assert (await task_json(world.admin, task_id))["response"] is None


async def test_timed_out_task_says_so(world: World) -> None:
    task_id = await create_task(world.admin, "slow")
    ctx = world.app.state.ctx
    from sqlalchemy import update

    from awaithumans.server.db.models import TaskRow
    from awaithumans.server.db.types import utcnow
    from awaithumans.server.principals import SCHEDULER
    from awaithumans.server.services.lifecycle import Channel
    from awaithumans.server.services.task_actions import TimeOut

    async with ctx.engine.begin() as conn:
        await conn.execute(update(TaskRow).where(TaskRow.id == task_id).values(timeout_at=utcnow()))
    await ctx.writer.submit(TimeOut(ctx, task_id, SCHEDULER, Channel.SCHEDULER))
    async with signed_in(world.app, "ops@acme.com") as client:
        page = await client.get(f"/task?id={task_id}")
    html = Tags(page.text)
    assert "timed out" in html.plain
    assert "This task timed out before anyone answered it." in html.plain
    assert not html.find("form", action="/task/submit")
    assert "Timed out by timeout scheduler" in html.plain


async def test_form_is_derived_when_the_task_has_none(world: World) -> None:
    schema = {
        "type": "object",
        "properties": {"ok": {"type": "boolean"}, "why": {"type": "string"}},
        "required": ["ok"],
    }
    task_id = await create_task(world.admin, "derived", response_schema=schema)
    async with world.app.state.ctx.engine.begin() as conn:
        from sqlalchemy import update

        from awaithumans.server.db.models import TaskRow

        await conn.execute(
            update(TaskRow).where(TaskRow.id == task_id).values(form_definition=None)
        )
    async with signed_in(world.app, "ops@acme.com") as client:
        page = await client.get(f"/task?id={task_id}")
        html = Tags(page.text)
        html.one("input", name="f.ok", value="true")
        html.one("input", name="f.why")
        sent = await client.post(
            "/task/submit", data=form_data({"f.ok": "false"}, csrf_of(page.text), task_id)
        )
        assert sent.status_code == 303
    assert (await task_json(world.admin, task_id))["response"] == {"ok": False}


# -- parse_submission, one kind at a time --------------------------------------------------


def _form(**attrs: Any) -> FormDefinition:
    attrs.setdefault("label", "X")
    attrs.setdefault("required", True)
    return FormDefinition(fields=[FormField(name="x", **attrs)])


def _parse(form: FormDefinition, *posted: str, schema: dict[str, Any] | None = None) -> Any:
    return parse_submission(form, {"f.x": list(posted)} if posted else {}, schema=schema)


def test_parse_switch() -> None:
    required = _form(kind=FieldKind.SWITCH)
    assert _parse(required, "true") == ({"x": True}, {})
    assert _parse(required, "false") == ({"x": False}, {})
    assert _parse(required) == ({}, {"x": "Choose Yes or No."})
    assert _parse(required, "maybe")[1] == {"x": "Choose Yes or No."}
    optional = _form(kind=FieldKind.SWITCH, required=False)
    assert _parse(optional, "true") == ({"x": True}, {})
    assert _parse(optional) == ({"x": False}, {})  # an unchecked box posts nothing


def test_parse_single_select() -> None:
    options = [FormOption(value="a", label="A"), FormOption(value=2, label="Two")]
    form = _form(kind=FieldKind.SINGLE_SELECT, options=options)
    assert _parse(form, "a") == ({"x": "a"}, {})
    assert _parse(form, "2") == ({"x": 2}, {})
    assert _parse(form, "zzz")[1] == {"x": "Choose one of the listed options."}
    assert _parse(form, "")[1] == {"x": "Choose an option."}
    # options whose texts collide are told apart by position
    clash = _form(
        kind=FieldKind.SINGLE_SELECT,
        options=[FormOption(value=1, label="number"), FormOption(value="1", label="text")],
    )
    assert _parse(clash, "#1") == ({"x": "1"}, {})
    assert _parse(clash, "#0") == ({"x": 1}, {})
    # booleans are not numbers
    flags = _form(
        kind=FieldKind.SINGLE_SELECT,
        options=[FormOption(value=True, label="on"), FormOption(value=1, label="one")],
    )
    assert _parse(flags, "true") == ({"x": True}, {})
    assert _parse(flags, "1") == ({"x": 1}, {})


def test_parse_multi_select() -> None:
    options = [FormOption(value=v, label=v.upper()) for v in ("a", "b", "c")]
    form = _form(kind=FieldKind.MULTI_SELECT, options=options, min_length=1, max_length=2)
    assert _parse(form, "c", "a") == ({"x": ["a", "c"]}, {})  # in option order
    assert _parse(form)[1] == {"x": "Choose at least 1."}
    assert _parse(form, "a", "b", "c")[1] == {"x": "Choose at most 2."}
    assert _parse(form, "a", "evil")[1] == {"x": "Choose only from the listed options."}
    free = _form(kind=FieldKind.MULTI_SELECT, options=options, required=False)
    assert _parse(free) == ({"x": []}, {})


def test_parse_text() -> None:
    short = _form(kind=FieldKind.SHORT_TEXT, min_length=2, max_length=5)
    assert _parse(short, "  hi  ") == ({"x": "hi"}, {})
    assert _parse(short, "h")[1] == {"x": "Use at least 2 characters."}
    assert _parse(short, "toolong")[1] == {"x": "Use at most 5 characters."}
    assert _parse(short, "   ")[1] == {"x": "This field is required."}
    long = _form(kind=FieldKind.LONG_TEXT, required=False)
    assert _parse(long, "a\r\nb ") == ({"x": "a\nb "}, {})
    assert _parse(long, "") == ({}, {})


def test_parse_optional_empty_is_left_out_or_null_per_schema() -> None:
    form = _form(kind=FieldKind.SHORT_TEXT, required=False)
    assert _parse(form, "") == ({}, {})
    listed = {"type": "object", "properties": {"x": {}}, "required": ["x"]}
    assert _parse(form, "", schema=listed) == ({"x": None}, {})
    assert _parse(form, schema={"type": "object"}) == ({}, {})


def test_parse_number() -> None:
    ints = _form(kind=FieldKind.NUMBER, integer=True, min=1, max=10)
    assert _parse(ints, "3") == ({"x": 3}, {})
    assert isinstance(_parse(ints, "3")[0]["x"], int)
    assert _parse(ints, "4.0") == ({"x": 4}, {})
    assert _parse(ints, "2.5")[1] == {"x": "Enter a whole number."}
    assert _parse(ints, "0")[1] == {"x": "Enter 1 or more."}
    assert _parse(ints, "11")[1] == {"x": "Enter 10 or less."}
    assert _parse(ints, "12345678901234567890") == ({}, {"x": "Enter 10 or less."})
    floats = _form(kind=FieldKind.NUMBER, integer=False, min=0, min_exclusive=True, step=0.5)
    assert _parse(floats, "1.5") == ({"x": 1.5}, {})
    assert isinstance(_parse(floats, "2")[0]["x"], float)
    assert _parse(floats, "0")[1] == {"x": "Enter more than 0."}
    assert _parse(floats, "0.3")[1] == {"x": "Enter a multiple of 0.5."}
    for bad in ("abc", "nan", "inf", "1_000", "0x10", "1e999"):
        assert "x" in _parse(floats, bad)[1], bad
    big = _form(kind=FieldKind.NUMBER, integer=True, required=False)
    assert _parse(big, "12345678901234567890") == ({"x": 12345678901234567890}, {})


def test_parse_temporal() -> None:
    assert _parse(_form(kind=FieldKind.DATE), "2024-02-29") == ({"x": "2024-02-29"}, {})
    assert _parse(_form(kind=FieldKind.DATE), "2023-02-29")[1] == {
        "x": "Enter a date as YYYY-MM-DD."
    }
    dt = _form(kind=FieldKind.DATETIME)
    assert _parse(dt, "2024-05-01T13:30") == ({"x": "2024-05-01T13:30:00Z"}, {})
    assert _parse(dt, "2024-05-01T13:30:15") == ({"x": "2024-05-01T13:30:15Z"}, {})
    assert _parse(dt, "yesterday")[1] == {"x": "Enter a date and time."}
    tm = _form(kind=FieldKind.TIME)
    assert _parse(tm, "09:15") == ({"x": "09:15:00"}, {})
    assert _parse(tm, "25:00")[1] == {"x": "Enter a time as HH:MM."}


def test_parse_json() -> None:
    form = _form(kind=FieldKind.JSON, fallback_reason="nested")
    assert _parse(form, '{"a": [1, 2]}') == ({"x": {"a": [1, 2]}}, {})
    assert _parse(form, "null") == ({"x": None}, {})
    assert _parse(form, "{oops")[1] == {"x": "This is not valid JSON (line 1, column 2)."}
    assert _parse(form, "NaN")[1] == {"x": "This is not valid JSON."}
    assert _parse(form, "")[1] == {"x": "This field is required."}


def test_round_trip_through_form_encoding() -> None:
    response = dict(GOOD_RESPONSE, explanation="two\nlines", extra={"b": 3, "c": 4})
    assert parse_submission(FORM, form_values(FORM, response), schema=SCHEMA) == (response, {})


def test_widgets_describe_every_kind() -> None:
    widgets = {w.name: w for w in widgets_for(FORM, initial_values(FORM))}
    controls = {name: w.control for name, w in widgets.items()}
    assert controls == {
        "approved": "radios",
        "notify_customer": "checkbox",
        "decision": "radios",
        "country": "select",
        "tags": "checkboxes",
        "note": "input",
        "explanation": "textarea",
        "amount": "input",
        "quantity": "input",
        "due": "input",
        "at": "input",
        "opens": "input",
        "extra": "textarea",
    }
    assert [c.label for c in widgets["approved"].choices] == ["Yes", "No"]
    assert widgets["approved"].describedby == widgets["approved"].hint_id
    assert widgets["decision"].required
    assert not widgets["country"].required
    assert widgets["extra"].value == "{}"  # the default_factory pre-fills
    with_error = widgets_for(FORM, {}, {"note": "Too long."})[5]
    assert with_error.describedby == f"{with_error.hint_id} {with_error.error_id}"


def test_field_errors_split_by_field() -> None:
    by_field, general = field_errors(
        FORM,
        [
            {"loc": ["response", "quantity"], "msg": "11 is greater than the maximum of 10"},
            {"loc": ["response"], "msg": '"due" is a required property'},
            {"loc": ["response"], "msg": "something about the whole answer"},
            {"loc": ["response", "unknown"], "msg": "no such field"},
        ],
    )
    assert by_field == {
        "quantity": "11 is greater than the maximum of 10",
        "due": '"due" is a required property',
    }
    assert general == ["something about the whole answer", "no such field"]


def test_display_and_answer_items() -> None:
    tree = display({"a": {"b": [1, 2.5, None, True]}, "s": "x"})
    assert tree.kind == "map"
    deep: Any = 1
    for _ in range(20):
        deep = [deep]
    assert "code" in repr(display(deep))  # deep nesting ends as compact JSON, not recursion
    items = answer_items(FORM, {"decision": "partial", "tags": ["fraud"], "other": 1})
    assert [(i.label, i.value.text or i.value.kind) for i in items] == [
        ("Decision", "Partial refund"),
        ("Tags", "list"),
        ("other", "1"),
    ]


@pytest.mark.parametrize("kind", [FieldKind.SINGLE_SELECT, FieldKind.MULTI_SELECT])
def test_select_without_options_falls_back_to_json(kind: FieldKind) -> None:
    form = _form(kind=kind, options=[])
    assert widgets_for(form, {})[0].control == "textarea"
    assert _parse(form, '"v"') == ({"x": "v"}, {})
