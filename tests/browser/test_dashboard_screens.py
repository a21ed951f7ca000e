"""Every dashboard page, photographed at desktop (1280 px) and phone (390 px) width.

The PNGs land in ``test-artifacts/screenshots/`` for a person to look at. The test also
checks what a screenshot would show as broken: no page may be wider than the window (a
phone user would have to scroll sideways), and every page must have loaded its styles.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.test_dashboard_e2e import (
    CASE,
    OPERATOR,
    REVIEWER,
    RefundReview,
    add_reviewer,
    api_client,
    create_task,
    queue_rows,
    set_up_operator,
    sign_in,
)
from tests.support.browser import DevServer

Shoot = Callable[[Page, str], Path]

LONG_TITLE = (
    "Approve a partial refund for order ord_48213: the customer reports that the package "
    "arrived damaged and asks for half of the amount back"
)
UNBROKEN_TITLE = "Check the callback https://hooks.example.com/" + "a1b2c3d4e5" * 6
MISSING_TASK = "tsk_" + "0" * 24


def no_sideways_scroll(page: Page) -> None:
    """The page fits its window: nothing sticks out to the right, no table scrolls sideways.

    Code blocks (``pre``) may scroll inside themselves; hidden-for-screen-readers text and
    the skip link sit off screen on purpose.
    """
    overflow = page.evaluate(
        """() => {
            const width = document.documentElement.clientWidth;
            const name = (el) => [el.tagName.toLowerCase(), ...el.classList].join(".");
            const skip = "pre, .table-wrap, .visually-hidden, .sr-only, .skip-link";
            const wide = [...document.querySelectorAll("body *")]
                .filter((el) => el.getBoundingClientRect().right > width + 1)
                .filter((el) => !el.closest(skip))
                .map(name);
            const scrolling = [...document.querySelectorAll(".table-wrap")]
                .filter((el) => el.scrollWidth > el.clientWidth + 1)
                .map((el) => name(el.querySelector("table") || el));
            return {
                width, scroll: document.documentElement.scrollWidth,
                wide: wide.slice(0, 8), scrolling,
            };
        }"""
    )
    assert overflow["scroll"] <= overflow["width"], (page.url, overflow)
    assert overflow["wide"] == [], (page.url, overflow)
    assert overflow["scrolling"] == [], (page.url, overflow)


def styled(page: Page) -> None:
    """app.css applied (the body's font and background are the stylesheet's, not defaults)."""
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(246, 247, 249)", (page.url, background)


def snap(page: Page, shoot: Shoot, name: str) -> Path:
    styled(page)
    no_sideways_scroll(page)
    return shoot(page, name)


def test_screenshots_of_every_page_at_both_widths(
    dev_server: DevServer, page: Page, mobile_page: Page, shoot: Shoot
) -> None:
    server = dev_server
    tabs = (page, mobile_page)
    shots: list[Path] = []

    for tab in tabs:
        tab.goto(server.setup_url)
        expect(tab.get_by_role("heading", name="Welcome to awaithumans")).to_be_visible()
        shots.append(snap(tab, shoot, "setup"))
        tab.goto(f"{server.url}/login")
        expect(tab.get_by_role("heading", name="Sign in")).to_be_visible()
        shots.append(snap(tab, shoot, "login"))

    set_up_operator(page, server)
    sign_in(mobile_page, server, OPERATOR)
    for tab in tabs:
        expect(tab.get_by_role("heading", name="No open tasks")).to_be_visible()
        shots.append(snap(tab, shoot, "queue-empty"))

    add_reviewer(page, server)
    with api_client(server) as api:
        review = create_task(
            api, "Refund the damaged espresso machine?", response_schema=RefundReview, payload=CASE
        )
        create_task(api, LONG_TITLE)
        create_task(api, "Check Riley's invoice", assign_to=REVIEWER.email)
        create_task(api, "Review the Globex contract renewal", assign_to="legal@globex.example")
        create_task(api, UNBROKEN_TITLE)
        dismissed = create_task(api, "Approve the office move budget")

        for tab in tabs:
            tab.goto(f"{server.url}/")
            expect(queue_rows(tab)).to_have_count(6)
            shots.append(snap(tab, shoot, "queue"))

            tab.goto(f"{server.url}/task?id={review}")
            expect(tab.get_by_role("heading", name="Your answer")).to_be_visible()
            # Options are answers, set apart from the bold question above them.
            expect(tab.locator("legend", has_text="Outcome")).to_have_css("font-weight", "600")
            expect(tab.locator("label.choice", has_text="Partial refund")).to_have_css(
                "font-weight", "400"
            )
            shots.append(snap(tab, shoot, "task-open"))

            tab.get_by_role("radio", name="Yes").check()
            tab.get_by_role("radio", name="Full refund").check()
            tab.get_by_label("Amount (USD)").fill("0")
            tab.get_by_label("Reference").fill("ticket 12")
            tab.get_by_role("button", name="Submit answer").click()
            expect(tab.locator(".task-errors")).to_be_visible()
            expect(tab.get_by_label("Reference")).to_have_attribute("aria-invalid", "true")
            shots.append(snap(tab, shoot, "task-error"))

            tab.goto(f"{server.url}/users")
            expect(tab.get_by_role("heading", name="Users", level=1)).to_be_visible()
            shots.append(snap(tab, shoot, "users"))
            tab.get_by_role("link", name=f"Edit {REVIEWER.name}").click()
            expect(tab.get_by_role("heading", name=REVIEWER.name, level=1)).to_be_visible()
            shots.append(snap(tab, shoot, "user-edit"))

            tab.goto(f"{server.url}/settings")
            size = tab.viewport_size
            assert size is not None
            width = size["width"]
            tab.get_by_label("Key name").fill(f"billing-agent ({width} px)")
            tab.get_by_role("button", name="Create key").click()
            expect(tab.get_by_role("heading", name="New agent key")).to_be_visible()
            expect(tab.locator("pre.secret")).to_have_text(re.compile(r"^ah_live_"))
            shots.append(snap(tab, shoot, "settings"))

            response = tab.goto(f"{server.url}/task?id={MISSING_TASK}")
            assert response is not None
            assert response.status == 404
            expect(tab.get_by_role("heading", name="Task not found")).to_be_visible()
            shots.append(snap(tab, shoot, "not-found"))

        # Finish some: one answered in the dashboard, one cancelled by the agent.
        page.goto(f"{server.url}/task?id={review}")
        page.get_by_role("radio", name="Yes").check()
        page.get_by_role("radio", name="Partial refund").check()
        page.get_by_label("Amount (USD)").fill("64.75")
        page.get_by_label("Reference").fill("TCK-1234")
        page.get_by_label("Note").fill("Half of the order, for the broken machine.")
        page.get_by_role("button", name="Submit answer").click()
        expect(page.locator(".task-head .pill")).to_have_text("completed")
        cancelled = api.post(f"/api/tasks/{dismissed}/cancel", json={"reason": "Budget frozen"})
        assert cancelled.status_code == 200, cancelled.text

    for tab in tabs:
        tab.goto(f"{server.url}/task?id={review}")
        expect(tab.locator("section.task-answer").get_by_role("status")).to_have_text(
            "✓ Answer recorded"
        )
        shots.append(snap(tab, shoot, "task-finished"))
        tab.goto(f"{server.url}/audit")
        expect(tab.locator("#audit-live tbody tr")).to_have_count(2)
        shots.append(snap(tab, shoot, "audit"))

    names = sorted(path.name for path in shots)
    expected = sorted(
        f"{name}-{width}.png"
        for name in (
            "setup",
            "login",
            "queue-empty",
            "queue",
            "task-open",
            "task-error",
            "users",
            "user-edit",
            "settings",
            "not-found",
            "task-finished",
            "audit",
        )
        for width in (1280, 390)
    )
    assert names == expected
    assert all(path.stat().st_size > 5_000 for path in shots)
