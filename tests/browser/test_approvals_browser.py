"""Two approvals of the finance role, in a real browser against ``awaithumans dev``.

Bob (finance) finds the task in his queue though it is nobody's, votes, and his page says
"1 of 2 approvals", who approved, and that he already voted; it follows the task live, so
when Carol's vote completes it in her own browser, Bob's page shows the outcome.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from pydantic import BaseModel

from awaithumans.core import Ask
from tests.browser.conftest import DESKTOP, _open_page
from tests.browser.test_dashboard_e2e import (
    LIVE_MS,
    PASSWORD,
    Person,
    api_client,
    set_up_operator,
    sign_in,
    task_status,
)
from tests.support.browser import DevServer

BOB = Person("Bob Billing", "bob@example.com")
CAROL = Person("Carol Controller", "carol@example.com")


class Order(BaseModel):
    order_id: str


class Decision(BaseModel):
    approved: bool


@pytest.fixture
def second_page(browser: Browser) -> Iterator[Page]:
    """Another browser context: Bob's, with cookies of his own."""
    yield from _open_page(browser, DESKTOP)


def vote_yes(page: Page) -> None:
    page.get_by_role("radio", name="Yes").check()
    page.get_by_role("button", name="Submit answer").click()


def test_two_finance_approvals_in_the_browser(
    dev_server: DevServer, page: Page, second_page: Page
) -> None:
    set_up_operator(page, dev_server)
    with api_client(dev_server) as api:
        for who in (BOB, CAROL):
            made = api.post(
                "/api/admin/users",
                json={"display_name": who.name, "email": who.email, "password": PASSWORD,
                      "roles": ["finance"]},
            )  # fmt: skip
            assert made.status_code == 201, made.text
        title = f"Refund order ord_{uuid.uuid4().hex[:6]}?"
        body = Ask(
            task=title,
            payload_schema=Order,
            payload=Order(order_id="ord_1"),
            response_schema=Decision,
            timeout_seconds=900,
            approvers=["role:finance"],
            approvals_required=2,
        ).request()
        created = api.post("/api/tasks", json=body.model_dump(mode="json", exclude_none=True))
        assert created.status_code == 201, created.text
        task_id = created.json()["id"]

        bob = second_page
        sign_in(bob, dev_server, BOB)
        bob.get_by_role("link", name=title).click()
        expect(bob).to_have_url(f"{dev_server.url}/task?id={task_id}")
        expect(bob.locator(".task-votes-progress")).to_have_text("0 of 2 approvals")
        vote_yes(bob)
        expect(bob.locator(".task-votes-progress")).to_have_text("1 of 2 approvals")
        expect(bob.locator(".task-votes-list")).to_contain_text("✓ Approved by Bob Billing")
        expect(bob.get_by_text("You already voted on this task")).to_be_visible()
        expect(bob.get_by_role("button", name="Submit answer")).to_have_count(0)
        assert task_status(api, task_id) != "completed"

        page.context.clear_cookies()
        sign_in(page, dev_server, CAROL)
        page.goto(f"{dev_server.url}/task?id={task_id}")
        vote_yes(page)
        expect(page.locator(".task-votes-progress")).to_have_text("2 of 2 approvals")
        expect(page.get_by_text("Answer recorded")).to_be_visible()
        assert task_status(api, task_id) == "completed"

        # Bob's page followed the task: it shows the outcome without a reload.
        expect(bob.locator(".task-votes-progress")).to_have_text(
            "2 of 2 approvals", timeout=LIVE_MS
        )
        expect(bob.get_by_text("Answer recorded")).to_be_visible()
        votes = api.get(f"/api/tasks/{task_id}").json()["approvals"]
        assert [(v["email"], v["channel"]) for v in votes] == [
            (BOB.email, "dashboard"),
            (CAROL.email, "dashboard"),
        ]
