"""The dashboard end to end: Debian's Chromium against a real ``awaithumans dev`` process.

Every test starts its own dev server (fresh database, nobody signed up), signs the first
operator up through the one-shot setup link printed by the server, and drives the pages the
way a person does. Tasks are created the way agents create them: the quickstart script as a
subprocess, or the JSON API with the admin token. Nothing sleeps: the browser side waits with
Playwright's auto-waiting ``expect``; the script side with deadlines.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from pydantic import BaseModel, Field

from awaithumans.core import Ask
from tests.browser.conftest import DESKTOP, _open_page
from tests.e2e.test_cli import Lines, clean_env, default_sigint, stop_process
from tests.support.browser import DevServer

REPO = Path(__file__).resolve().parents[2]
REFUND_SCRIPT = REPO / "examples" / "quickstart" / "refund.py"
NOTES = "Duplicate charge confirmed by support team."
VERDICT = f"Refund approved: {NOTES}"
PASSWORD = "correct horse battery staple"
LIVE_MS = 5_000  # how long a live update may take to show


@dataclass(frozen=True)
class Person:
    name: str
    email: str


class Served(Protocol):
    """What the helpers need of a running server (a :class:`DevServer`, or another)."""

    @property
    def url(self) -> str: ...
    @property
    def setup_url(self) -> str: ...
    @property
    def admin_token(self) -> str: ...


OPERATOR = Person("Olivia Operator", "olivia@example.com")
REVIEWER = Person("Riley Reviewer", "riley@example.com")


# -- what agents ask for -----------------------------------------------------------------


class Order(BaseModel):
    order_id: str
    amount_usd: int


class Decision(BaseModel):
    approved: bool = Field(description="Go ahead?")


class Outcome(StrEnum):
    FULL_REFUND = "full"
    PARTIAL_REFUND = "partial"
    DENY = "deny"


# Constraints the browser cannot check (an exclusive bound on a float, a pattern) next to
# ones it does (the maximum): both kinds of error reach the person.
class RefundReview(BaseModel):
    """Decide on the refund and give the support ticket it belongs to."""

    approved: bool = Field(description="Is the refund justified?")
    outcome: Outcome
    amount_usd: float = Field(
        gt=0, le=500, title="Amount (USD)", description="What to send back, in dollars"
    )
    reference: str = Field(pattern=r"^TCK-\d{4}$", description="Support ticket, like TCK-1234")
    note: str | None = Field(default=None, max_length=2000, description="Shown to the customer")


class Customer(BaseModel):
    id: str
    name: str
    email: str


class RefundCase(BaseModel):
    customer: Customer
    order_id: str
    amount_usd: float
    items: list[str]
    reason: str


CASE = RefundCase(
    customer=Customer(id="cus_8812", name="Ada Lovelace", email="ada@example.com"),
    order_id="ord_48213",
    amount_usd=129.5,
    items=["Espresso machine", "Descaling kit"],
    reason="The package arrived damaged; the customer sent photos.",
)


def api_client(server: Served) -> httpx.Client:
    """The JSON API as the admin (the token ``awaithumans dev`` wrote into the project)."""
    return httpx.Client(
        base_url=server.url,
        headers={"Authorization": f"Bearer {server.admin_token}"},
        timeout=10,
    )


def create_task(
    api: httpx.Client,
    title: str,
    *,
    response_schema: type[BaseModel] = Decision,
    payload: BaseModel | None = None,
    assign_to: str | dict[str, Any] | None = None,
) -> str:
    """Create a task as an agent does (the SDK's request body); returns its id."""
    payload = payload or Order(order_id="ord_1", amount_usd=40)
    body = Ask(
        task=title,
        payload_schema=type(payload),
        payload=payload,
        response_schema=response_schema,
        timeout_seconds=900,
        idempotency_key=f"browser-test:{title}",
        assign_to=assign_to,
    ).request()
    created = api.post("/api/tasks", json=body.model_dump(mode="json", exclude_none=True))
    assert created.status_code == 201, created.text
    task_id: str = created.json()["id"]
    return task_id


def task_status(api: httpx.Client, task_id: str) -> str:
    found = api.get(f"/api/tasks/{task_id}")
    assert found.status_code == 200, found.text
    status: str = found.json()["status"]
    return status


# -- what people do ----------------------------------------------------------------------


def set_up_operator(page: Page, server: Served, who: Person = OPERATOR) -> None:
    """Open the printed setup link, create the first operator, land signed in on the queue."""
    page.goto(server.setup_url)
    expect(page.get_by_role("heading", name="Welcome to awaithumans")).to_be_visible()
    page.get_by_label("Email").fill(who.email)
    page.get_by_label("Display name").fill(who.name)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Create operator").click()
    expect(page).to_have_url(f"{server.url}/")
    expect(page.get_by_role("heading", name="Queue", level=1)).to_be_visible()
    expect(page.locator(".whoami-name")).to_contain_text(who.name)


def sign_in(page: Page, server: Served, who: Person) -> None:
    page.goto(f"{server.url}/login")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Email").fill(who.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server.url}/")
    expect(page.locator(".whoami-name")).to_contain_text(who.name)


def add_reviewer(page: Page, server: Served, who: Person = REVIEWER) -> None:
    """The operator adds a reviewer who signs in with a password, on /users."""
    page.goto(f"{server.url}/users")
    form = page.locator("form[action='/users']")
    form.get_by_label("Display name").fill(who.name)
    form.get_by_label("Email").fill(who.email)
    form.get_by_label("Password").fill(PASSWORD)
    expect(form.get_by_label("Operator")).not_to_be_checked()
    form.get_by_role("button", name="Add user").click()
    expect(page).to_have_url(f"{server.url}/users?done=added")
    expect(page.get_by_role("status")).to_have_text("User added.")
    row = page.locator("tbody tr", has_text=who.email)
    expect(row).to_contain_text(who.name)
    expect(row).to_contain_text("reviewer")
    expect(row).to_contain_text("Password")


def queue_rows(page: Page) -> Any:
    return page.locator("#queue-live tbody tr")


def field_wrapper(page: Page, label: str) -> Any:
    """The ``.field`` block (label, control, hint, error) of one answer field."""
    return page.locator("form[action='/task/submit'] .field", has=page.get_by_label(label))


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def second_page(browser: Browser) -> Iterator[Page]:
    """Another desktop browser context: a second person, with cookies of their own."""
    yield from _open_page(browser, DESKTOP)


class Script:
    """``python refund.py`` as a subprocess: stdout and stderr read line by line."""

    def __init__(self, server: DevServer) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(REFUND_SCRIPT)],
            cwd=server.cwd,
            env=clean_env(server.home, PYTHONIOENCODING="utf-8", PYTHONUNBUFFERED="1"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            preexec_fn=default_sigint,
        )
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self.out = Lines(self.proc.stdout)
        self.err = Lines(self.proc.stderr)


@pytest.fixture
def refund_script(dev_server: DevServer) -> Iterator[Script]:
    script = Script(dev_server)
    yield script
    stop_process(script.proc, signal.SIGKILL)


# -- 1. the quickstart -------------------------------------------------------------------


def test_quickstart_answered_in_the_browser(
    dev_server: DevServer, refund_script: Script, page: Page
) -> None:
    server, script = dev_server, refund_script
    deadline = time.monotonic() + 30
    created = script.err.next(deadline)
    found = re.fullmatch(r"✓ Task created: (tsk_[0-9a-f]{24})", created)
    assert found, script.err.seen
    task_id = found[1]
    review_url = f"{server.url}/task?id={task_id}"
    assert script.err.next(deadline) == f"  Review at: {review_url}", script.err.seen
    waiting = script.err.next(deadline)
    assert waiting == "  Waiting for human (timeout: 900s). Ctrl-C to abort.", script.err.seen

    # The operator signs up through the link the server printed and lands on the queue.
    set_up_operator(page, server)
    expect(queue_rows(page)).to_have_count(1)
    row = queue_rows(page).first
    expect(row.get_by_role("link", name="Approve $250 refund?")).to_have_attribute(
        "href", f"/task?id={task_id}"
    )
    expect(row).to_contain_text("Unassigned")
    expect(page.locator(".list-count")).to_have_text("1 open")

    page.goto(review_url)
    expect(page.get_by_role("heading", name="Approve $250 refund?", level=1)).to_be_visible()
    details = page.locator("section[aria-labelledby='payload-h']")
    expect(details).to_contain_text("cus_demo")
    expect(details).to_contain_text("Duplicate charge")
    page.get_by_role("radio", name="Yes").check()
    page.get_by_label("Notes").fill(NOTES)

    submit = page.get_by_role("button", name="Submit answer")
    clicked = time.monotonic()
    submit.click()
    assert script.out.next(clicked + 1.0) == VERDICT, script.out.seen
    assert script.proc.wait(timeout=10) == 0
    assert "Traceback" not in "\n".join(script.err.rest(timeout=5))

    # The page came back from the post to the task itself, now answered.
    expect(page).to_have_url(review_url)
    answer = page.locator("section.task-answer")
    expect(answer.get_by_role("status")).to_have_text("✓ Answer recorded")
    expect(answer).to_contain_text(NOTES)
    expect(answer).to_contain_text(f"Answered by {OPERATOR.name}")
    expect(page.locator(".task-head .pill")).to_have_text("completed")
    expect(page.get_by_role("button", name="Submit answer")).to_have_count(0)
    # And it left the queue.
    page.goto(f"{server.url}/")
    expect(queue_rows(page)).to_have_count(0)
    expect(page.get_by_role("heading", name="No open tasks")).to_be_visible()


# -- 2. a validation error, corrected ----------------------------------------------------


def test_validation_error_shown_at_the_field_then_corrected(
    dev_server: DevServer, page: Page
) -> None:
    server = dev_server
    set_up_operator(page, server)
    with api_client(server) as api:
        task_id = create_task(
            api, "Refund the damaged espresso machine?", response_schema=RefundReview, payload=CASE
        )
        page.goto(f"{server.url}/task?id={task_id}")
        expect(page.get_by_role("heading", name="Your answer")).to_be_visible()
        page.get_by_role("radio", name="Yes").check()
        page.get_by_role("radio", name="Partial refund").check()
        amount = page.get_by_label("Amount (USD)")
        reference = page.get_by_label("Reference")

        posts: list[str] = []
        page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)

        # An amount above the maximum never leaves the browser: the number input carries
        # max=500, so Chromium's own constraint check stops the submit (counted at the end).
        amount.fill("900")
        reference.fill("TCK-1234")
        page.get_by_role("button", name="Submit answer").click()
        assert amount.evaluate("el => el.validity.rangeOverflow") is True
        assert amount.evaluate("el => el.form.checkValidity()") is False
        expect(page).to_have_url(f"{server.url}/task?id={task_id}")
        expect(amount).not_to_have_attribute("aria-invalid", "true")

        # 0 passes the browser (min=0) but not the server (amount must be > 0), and the
        # reference breaks the schema's pattern, which HTML does not express: both come back
        # from the server, each at its field, with what was typed still there.
        amount.fill("0")
        reference.fill("tck 12")
        page.get_by_role("button", name="Submit answer").click()
        summary = page.locator(".task-errors")
        expect(summary).to_contain_text("Your answer was not saved.")
        expect(summary.get_by_role("listitem")).to_have_count(2)

        amount_field = field_wrapper(page, "Amount (USD)")
        expect(amount).to_have_attribute("aria-invalid", "true")
        expect(amount_field.locator(".field-error")).to_have_text("Enter more than 0.")
        expect(amount).to_have_accessible_description(re.compile(r"Enter more than 0\.$"))
        expect(amount).to_have_value("0")

        reference_field = field_wrapper(page, "Reference")
        expect(reference).to_have_attribute("aria-invalid", "true")
        # Said with the field's description, not the raw regex.
        readable = "Not in the expected format: Support ticket, like TCK-1234."
        expect(reference_field.locator(".field-error")).to_contain_text(readable)
        expect(reference).to_have_accessible_description(re.compile(re.escape(readable)))
        expect(reference).to_have_value("tck 12")
        # The choices made before the error are kept too.
        expect(page.get_by_role("radio", name="Partial refund")).to_be_checked()
        # The summary links to the fields.
        summary.get_by_role("link", name=re.compile("^Reference:")).click()
        expect(reference).to_be_focused()

        assert task_status(api, task_id) not in ("completed", "submitted")

        amount.fill("64.75")
        reference.fill("TCK-1234")
        page.get_by_label("Note").fill("Half of the order, for the broken machine.")
        page.get_by_role("button", name="Submit answer").click()
        expect(page.locator("section.task-answer").get_by_role("status")).to_have_text(
            "✓ Answer recorded"
        )
        expect(page.locator(".field-error")).to_have_count(0)
        # Two posts reached the server: the one with errors and the good one.
        assert posts == [f"{server.url}/task/submit"] * 2, posts
        answered = api.get(f"/api/tasks/{task_id}").json()
        assert answered["status"] == "completed"
        assert answered["response"] == {
            "approved": True,
            "outcome": "partial",
            "amount_usd": 64.75,
            "reference": "TCK-1234",
            "note": "Half of the order, for the broken machine.",
        }


# -- 3. a reviewer sees, and answers, only their own tasks -------------------------------


def test_reviewer_sees_only_their_tasks_and_cannot_answer_another(
    dev_server: DevServer, page: Page, second_page: Page
) -> None:
    server = dev_server
    set_up_operator(page, server)
    add_reviewer(page, server)
    with api_client(server) as api:
        theirs = create_task(api, "Check Riley's invoice", assign_to={"email": REVIEWER.email})
        other = create_task(api, "Approve the office move budget")
        assert task_status(api, theirs) == "assigned"

        # The operator sees both.
        page.goto(f"{server.url}/")
        expect(queue_rows(page)).to_have_count(2)

        reviewer = second_page
        sign_in(reviewer, server, REVIEWER)
        expect(reviewer.get_by_role("navigation", name="Main").get_by_role("link")).to_have_text(
            ["Queue", "Audit"]
        )
        expect(queue_rows(reviewer)).to_have_count(1)
        expect(queue_rows(reviewer).get_by_role("link")).to_have_text("Check Riley's invoice")
        expect(reviewer.get_by_text("Approve the office move budget")).to_have_count(0)
        expect(reviewer.locator(".list-count")).to_have_text("1 open")

        # Someone else's task by URL: the same page as a task that does not exist.
        response = reviewer.goto(f"{server.url}/task?id={other}")
        assert response is not None
        assert response.status == 404
        expect(reviewer.get_by_role("heading", name="Task not found")).to_be_visible()
        expect(reviewer.get_by_text("Approve the office move budget")).to_have_count(0)
        # Operator pages are closed to reviewers.
        response = reviewer.goto(f"{server.url}/users")
        assert response is not None
        assert response.status == 403
        expect(reviewer.get_by_role("heading", name="Operators only")).to_be_visible()

        # A valid CSRF token, from the reviewer's own task page...
        reviewer.goto(f"{server.url}/task?id={theirs}")
        expect(reviewer.get_by_role("heading", name="Check Riley's invoice")).to_be_visible()
        form = reviewer.locator("form[action='/task/submit']")
        token = form.locator("input[name='csrf_token']").input_value()
        assert token

        # ...does not let them answer, claim or cancel the other task by hand-built posts.
        for action in ("submit", "claim", "cancel"):
            refused = reviewer.request.post(
                f"{server.url}/task/{action}",
                form={"csrf_token": token, "id": other, "f.approved": "true"},
                max_redirects=0,
            )
            assert refused.status == 404, (action, refused.status, refused.text())
            assert "Task not found" in refused.text()
            assert "Approve the office move budget" not in refused.text()
        answered = api.get(f"/api/tasks/{other}").json()
        assert answered["status"] == "created"
        assert answered.get("response") is None

        # The same post for their own task goes through: the refusal was about the task.
        accepted = reviewer.request.post(
            f"{server.url}/task/submit",
            form={"csrf_token": token, "id": theirs, "f.approved": "true"},
            max_redirects=0,
        )
        assert accepted.status == 303, accepted.text()
        assert accepted.headers["location"] == f"/task?id={theirs}"
        assert task_status(api, theirs) == "completed"
        assert task_status(api, other) == "created"
        reviewer.goto(f"{server.url}/")
        expect(queue_rows(reviewer)).to_have_count(0)
        expect(reviewer.get_by_role("heading", name="Nothing waiting for you")).to_be_visible()


# -- 4. the queue updates by itself ------------------------------------------------------


def test_queue_and_audit_update_live(dev_server: DevServer, page: Page) -> None:
    server = dev_server
    set_up_operator(page, server)
    expect(page.get_by_role("heading", name="No open tasks")).to_be_visible()
    # Marks this document: a reload or navigation would lose it.
    page.evaluate("window.__sameDocument = true")
    audit = page.context.new_page()
    audit.goto(f"{server.url}/audit")
    expect(audit.get_by_role("heading", name="Nothing finished yet")).to_be_visible()

    with api_client(server) as api:
        first = create_task(api, "Live task one")
        expect(queue_rows(page)).to_have_count(1, timeout=LIVE_MS)
        expect(page.get_by_role("link", name="Live task one")).to_be_visible()
        expect(page.locator(".list-count")).to_have_text("1 open")

        second = create_task(api, "Live task two")
        expect(queue_rows(page)).to_have_count(2, timeout=LIVE_MS)
        # Newest first.
        expect(queue_rows(page).get_by_role("link")).to_have_text(
            ["Live task two", "Live task one"]
        )

        done = api.post(f"/api/tasks/{first}/complete", json={"response": {"approved": True}})
        assert done.status_code == 200, done.text
        expect(page.get_by_role("link", name="Live task one")).to_have_count(0, timeout=LIVE_MS)
        expect(queue_rows(page)).to_have_count(1)
        expect(page.locator(".list-count")).to_have_text("1 open")
        # The audit list, open in another tab, gained the finished task.
        audit_rows = audit.locator("#audit-live tbody tr")
        expect(audit_rows).to_have_count(1, timeout=LIVE_MS)
        expect(audit_rows.first).to_contain_text("Live task one")
        expect(audit_rows.first).to_contain_text("completed")

        cancelled = api.post(f"/api/tasks/{second}/cancel", json={"reason": "Not needed"})
        assert cancelled.status_code == 200, cancelled.text
        expect(queue_rows(page)).to_have_count(0, timeout=LIVE_MS)
        expect(page.get_by_role("heading", name="No open tasks")).to_be_visible()
        expect(audit_rows).to_have_count(2, timeout=LIVE_MS)

    assert page.evaluate("window.__sameDocument") is True
