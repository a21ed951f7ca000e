"""A verified task in Chromium: the answer goes to the verifier, the page follows it live.

``awaithumans dev`` runs with the providers' stand-in as its Claude; the person answers
without notes, watches the page say the answer is being checked, then the verdict appear
without a reload, corrects the answer, and sees it recorded.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from pydantic import BaseModel

from awaithumans.core import Ask
from awaithumans.verifiers.claude import claude_verifier
from tests.browser.test_dashboard_e2e import (
    LIVE_MS,
    Order,
    api_client,
    set_up_operator,
    task_status,
)
from tests.support.browser import DevServer
from tests.support.llm_standin import Call, ProviderStandIn, careful_brain

REASON = "Explain the decision in the notes."


class Decision(BaseModel):
    approved: bool
    notes: str | None = None


@pytest.fixture
def slow_model() -> Iterator[tuple[ProviderStandIn, threading.Event]]:
    """The careful model, held back until the test lets it answer."""
    release = threading.Event()

    def brain(call: Call) -> dict[str, object]:
        release.wait(30)
        return careful_brain(call)

    with ProviderStandIn(brain=brain) as standin:
        yield standin, release


def test_the_page_follows_the_verifier_live(
    tmp_path: Path, page: Page, slow_model: tuple[ProviderStandIn, threading.Event]
) -> None:
    standin, release = slow_model
    server = DevServer(tmp_path / "project", tmp_path / "home", env=standin.env())
    with server, api_client(server) as api:
        set_up_operator(page, server)
        body = Ask(
            task="Approve the refund for ord_7?",
            payload_schema=Order,
            payload=Order(order_id="ord_7", amount_usd=40),
            response_schema=Decision,
            timeout_seconds=900,
            verifier=claude_verifier(instructions="Notes required: reject an answer without."),
        ).request()
        created = api.post("/api/tasks", json=body.model_dump(mode="json", exclude_none=True))
        assert created.status_code == 201, created.text
        task_id = created.json()["id"]

        page.goto(f"{server.url}/task?id={task_id}")
        expect(page.get_by_text("Claude (Anthropic) checks each answer")).to_be_visible()
        page.get_by_role("radio", name="Yes").check()
        page.get_by_role("button", name="Submit answer").click()
        checking = page.get_by_role("status").filter(has_text="being checked by the verifier")
        expect(checking).to_be_visible()
        assert task_status(api, task_id) == "submitted"

        release.set()  # the model answers; the page changes by itself
        verdict = page.locator(".task-verdict")
        expect(verdict).to_contain_text(REASON, timeout=LIVE_MS)
        expect(page.get_by_role("radio", name="Yes")).to_be_checked()  # the answer, kept
        # The rest of the page follows too: the status, and the verdict in the history.
        expect(page.locator(".task-head .pill")).to_have_text("rejected")
        expect(page.locator(".task-timeline")).to_contain_text("Rejected by verifier")

        page.get_by_label("Notes").fill("Charged twice, confirmed.")
        page.get_by_role("button", name="Submit answer").click()
        expect(page.get_by_text("Answer recorded, checked by the verifier")).to_be_visible(
            timeout=LIVE_MS
        )
        assert task_status(api, task_id) == "completed"
    assert len(standin.calls) == 2
