"""Bulk answer in a real browser: Debian's Chromium against a real ``awaithumans dev``.

The operator opens three tasks, ticks them in the queue (a task not opened cannot be ticked),
keeps the ticks while the list updates live, answers once on the bulk page and gets one
result per task; the API then shows each task completed through the dashboard.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.test_dashboard_e2e import (
    OPERATOR,
    api_client,
    create_task,
    queue_rows,
    set_up_operator,
)
from tests.support.browser import DevServer

LIVE_MS = 5_000  # how long a live update may take to show


def test_tick_three_opened_tasks_and_answer_them_at_once(
    dev_server: DevServer, page: Page, shoot: Callable[[Page, str], Path]
) -> None:
    server = dev_server
    set_up_operator(page, server)
    with api_client(server) as api:
        ids = [create_task(api, f"Refund order {n}") for n in range(3)]
        unopened = create_task(api, "Refund order never opened")
        for task_id in ids:
            page.goto(f"{server.url}/task?id={task_id}")
            expect(page.get_by_role("heading", name="Your answer")).to_be_visible()

        page.goto(f"{server.url}/")
        expect(queue_rows(page)).to_have_count(4)
        expect(page.locator(f"#pick-{unopened}")).to_be_disabled()
        button = page.locator("[data-bulk-submit]")
        expect(button).to_be_disabled()  # nothing ticked yet (the script keeps it off)
        for task_id in ids:
            page.locator(f"#pick-{task_id}").check()
        expect(page.locator("[data-bulk-count]")).to_have_text("3 selected")
        expect(button).to_have_text("Answer 3 selected together")

        # A task arrives: the list re-renders live and the ticks stay.
        create_task(api, "Refund order arriving now")
        expect(queue_rows(page)).to_have_count(5, timeout=LIVE_MS)
        for task_id in ids:
            expect(page.locator(f"#pick-{task_id}")).to_be_checked()

        shoot(page, "bulk-queue-ticked")
        button.click()
        expect(page.get_by_role("heading", name="Answer 3 tasks together")).to_be_visible()
        expect(page.locator("#bulk-chosen tbody tr")).to_have_count(3)
        shoot(page, "bulk-form")
        page.get_by_role("radio", name="Yes").check()
        page.get_by_role("button", name="Answer 3 tasks").click()

        expect(page.get_by_role("heading", name="Answered together")).to_be_visible()
        results = page.locator("#bulk-results tbody tr")
        expect(results).to_have_count(3)
        for task_id in ids:
            row = page.locator(f"#bulk-results tr[data-task='{task_id}']")
            expect(row.locator(".pill")).to_have_text("Answered")
        expect(page.get_by_role("status")).to_contain_text("3 answered")
        shoot(page, "bulk-results")

        for task_id in ids:
            found = api.get(f"/api/tasks/{task_id}").json()
            assert found["status"] == "completed"
            assert found["response"] == {"approved": True}
            assert found["completed_via_channel"] == "dashboard"
            assert found["completed_by_email"] == OPERATOR.email
        assert api.get(f"/api/tasks/{unopened}").json()["status"] != "completed"

        # Back on the queue, the answered tasks are gone and nothing is ticked.
        page.get_by_role("link", name="Back to the queue").click()
        expect(queue_rows(page)).to_have_count(2)
        expect(button).to_be_disabled()


def test_on_a_phone_the_boxes_sit_at_the_row_end_and_the_flow_works(
    dev_server: DevServer, mobile_page: Page, shoot: Callable[[Page, str], Path]
) -> None:
    server, page = dev_server, mobile_page
    set_up_operator(page, server)
    with api_client(server) as api:
        ids = [create_task(api, f"Invoice {n}") for n in range(2)]
        for task_id in ids:
            page.goto(f"{server.url}/task?id={task_id}")
            expect(page.get_by_role("heading", name="Your answer")).to_be_visible()
        page.goto(f"{server.url}/")
        width = page.viewport_size["width"] if page.viewport_size else 390
        for task_id in ids:
            box = page.locator(f"#pick-{task_id}")
            box.tap()
            expect(box).to_be_checked()
            # Right-aligned like the other values of a stacked row, not beside its label.
            bounds = box.bounding_box()
            assert bounds is not None
            assert bounds["x"] > width / 2, bounds
        shoot(page, "bulk-queue-ticked")
        page.locator("[data-bulk-submit]").tap()
        expect(page.get_by_role("heading", name="Answer 2 tasks together")).to_be_visible()
        page.get_by_role("radio", name="No").check()
        shoot(page, "bulk-form")
        page.get_by_role("button", name="Answer 2 tasks").tap()
        expect(page.locator("#bulk-results tbody tr")).to_have_count(2)
        shoot(page, "bulk-results")
        for task_id in ids:
            assert api.get(f"/api/tasks/{task_id}").json()["response"] == {"approved": False}
