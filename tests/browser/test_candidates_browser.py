"""First to claim in a real browser against ``awaithumans dev``: a task offered to Ana and
Ben shows in both queues; Ana claims it on its page; Ben's queue drops it by itself (live
update) and his page of the task says Ana took it, with no form or claim button."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import DESKTOP, _open_page
from tests.browser.test_dashboard_e2e import (
    LIVE_MS,
    PASSWORD,
    Person,
    api_client,
    create_task,
    queue_rows,
    set_up_operator,
    sign_in,
    task_status,
)
from tests.support.browser import DevServer

ANA = Person("Ana Lima", "ana@example.com")
BEN = Person("Ben Ode", "ben@example.com")


@pytest.fixture
def ana_page(browser: Browser) -> Iterator[Page]:
    yield from _open_page(browser, DESKTOP)


@pytest.fixture
def ben_page(browser: Browser) -> Iterator[Page]:
    yield from _open_page(browser, DESKTOP)


def test_the_first_to_claim_takes_it_from_the_others_queue(
    dev_server: DevServer, page: Page, ana_page: Page, ben_page: Page
) -> None:
    set_up_operator(page, dev_server)
    with api_client(dev_server) as api:
        for who in (ANA, BEN):
            made = api.post(
                "/api/admin/users",
                json={"display_name": who.name, "email": who.email, "password": PASSWORD},
            )
            assert made.status_code == 201, made.text
        title = f"Refund order ord_{uuid.uuid4().hex[:6]}?"
        task_id = create_task(api, title, assign_to={"emails": [ANA.email, BEN.email]})

        for person, who in ((ana_page, ANA), (ben_page, BEN)):
            sign_in(person, dev_server, who)
            expect(queue_rows(person)).to_have_count(1)
            expect(queue_rows(person).get_by_role("link")).to_have_text(title)

        ana_page.get_by_role("link", name=title).click()
        expect(ana_page).to_have_url(f"{dev_server.url}/task?id={task_id}")
        ana_page.get_by_role("button", name="Claim").click()
        expect(ana_page.get_by_role("button", name="Submit answer")).to_be_visible()
        assert task_status(api, task_id) == "in_progress"

        # Ben's queue, left open, follows the change by itself.
        expect(queue_rows(ben_page)).to_have_count(0, timeout=LIVE_MS)
        ben_page.goto(f"{dev_server.url}/task?id={task_id}")
        expect(ben_page.locator(".task-taken")).to_have_text(
            "Ana Lima took this task; only they or an operator can answer it now."
        )
        expect(ben_page.get_by_role("button", name="Submit answer")).to_have_count(0)
        expect(ben_page.get_by_role("button", name="Claim")).to_have_count(0)
