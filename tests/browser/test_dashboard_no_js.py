"""The read-and-answer path with JavaScript turned off: sign in, open the task, answer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import DESKTOP, _open_page
from tests.browser.test_dashboard_e2e import api_client, create_task, set_up_operator, task_status
from tests.support.browser import DevServer


@pytest.fixture
def no_js_page(browser: Browser) -> Iterator[Page]:
    yield from _open_page(browser, DESKTOP, java_script_enabled=False)


def test_answer_without_javascript(dev_server: DevServer, no_js_page: Page) -> None:
    page = no_js_page
    set_up_operator(page, dev_server)
    with api_client(dev_server) as api:
        task_id = create_task(api, "Approve without scripts?")
        page.goto(f"{dev_server.url}/")
        page.get_by_role("link", name="Approve without scripts?").click()
        expect(page).to_have_url(f"{dev_server.url}/task?id={task_id}")
        page.get_by_role("radio", name="Yes").check()
        page.get_by_role("button", name="Submit answer").click()
        expect(page.get_by_text("Answer recorded")).to_be_visible()
        assert task_status(api, task_id) == "completed"
        answer = api.get(f"/api/tasks/{task_id}").json()["response"]
        assert answer == {"approved": True}
