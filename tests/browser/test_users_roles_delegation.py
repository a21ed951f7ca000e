"""Roles, pools and delegation on the users page, in a real Chromium against ``awaithumans
dev``: the operator types a reviewer's roles and pools, sets them away with a delegate, and
the pages say so; the JSON API reads back what was saved. Screenshots for a person to look
at land in ``test-artifacts/screenshots/``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.test_dashboard_e2e import (
    OPERATOR,
    REVIEWER,
    add_reviewer,
    api_client,
    set_up_operator,
)
from tests.browser.test_dashboard_screens import no_sideways_scroll
from tests.support.browser import DevServer


def test_operator_sets_roles_pools_and_a_delegation(
    dev_server: DevServer, page: Page, shoot: Callable[[Page, str], Path]
) -> None:
    server = dev_server
    set_up_operator(page, server)
    add_reviewer(page, server)
    page.locator("tbody tr", has_text=REVIEWER.email).get_by_role("link", name="Edit").click()

    details = page.locator("form.form", has=page.get_by_label("Display name"))
    details.get_by_label("Roles").fill("finance, legal")
    details.get_by_label("Pools").fill("tier1")
    details.get_by_role("button", name="Save changes").click()
    row = page.locator("tbody tr", has_text=REVIEWER.email)
    expect(row).to_contain_text("role: finance")
    expect(row).to_contain_text("pool: tier1")

    row.get_by_role("link", name="Edit").click()
    away = page.locator("#away")
    away.get_by_label("Away until (UTC)").fill("2099-01-02T09:30")
    away.get_by_label("Delegate to").select_option(label=f"{OPERATOR.name} · {OPERATOR.email}")
    away.get_by_role("button", name="Save delegation").click()
    expect(page.get_by_role("status").first).to_contain_text("Delegation saved")
    expect(away).to_contain_text("away until")
    expect(away).to_contain_text(OPERATOR.name)
    no_sideways_scroll(page)
    shoot(page, "user-edit-away")

    with api_client(server) as api:
        users = {u["email"]: u for u in api.get("/api/admin/users").json()}
    riley, olivia = users[REVIEWER.email], users[OPERATOR.email]
    assert riley["roles"] == ["finance", "legal"]
    assert riley["pools"] == ["tier1"]
    assert riley["delegate_to_user_id"] == olivia["id"]
    assert riley["away_until"].startswith("2099-01-02T09:30")

    page.goto(f"{server.url}/users")
    expect(page.locator("tbody tr", has_text=REVIEWER.email)).to_contain_text("away until")
    no_sideways_scroll(page)
    shoot(page, "users-roles-pools")
