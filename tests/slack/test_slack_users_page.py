"""The Users page's Slack member picker: members from users.list, their name filled in."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI

from awaithumans.server.settings import SlackSettings
from tests._app_fixtures import make_settings, running_app
from tests.dashboard.test_task_page import PASSWORD, csrf_of, signed_in
from tests.support.slack_standin import BOT_TOKEN, SIGNING_SECRET, SlackStandIn


@pytest.fixture
async def app(tmp_path: object, slack: SlackStandIn) -> AsyncIterator[FastAPI]:
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path}/d.db",
        slack=SlackSettings(
            bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, api_url=slack.api_url
        ),
    )
    async with running_app(settings) as (made, admin):
        created = await admin.post(
            "/api/admin/users",
            json={"email": "ops@acme.com", "display_name": "Olga Ops", "is_operator": True,
                  "password": PASSWORD},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        yield made


async def test_an_operator_picks_a_slack_member(app: FastAPI, slack: SlackStandIn) -> None:
    async with signed_in(app, "ops@acme.com") as page:
        shown = await page.get("/users")
        options = re.findall(r'<option value="(U[0-9A-Z]+)"', shown.text)
        # People, not the bot; read through users.list's pages.
        assert set(options) == {"U0ALICE01", "U0BOB0002", "U0CAROL03"}
        assert "Alice Archer (@alice) · alice@acme.com" in shown.text
        added = await page.post(
            "/users",
            data={"csrf_token": csrf_of(shown.text), "slack_member": "U0CAROL03",
                  "display_name": "", "email": ""},
        )  # fmt: skip
        assert added.status_code == 303, added.text
        users = (await page.get("/users")).text
    row = next(r for r in users.split("<tr") if "U0CAROL03" in r)
    assert "Carol Clark" in row
    assert "Slack-only" in row


async def test_without_slack_there_is_no_picker(tmp_path: object) -> None:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/d.db")
    async with running_app(settings) as (made, admin):
        await admin.post(
            "/api/admin/users",
            json={"email": "ops@acme.com", "display_name": "Olga Ops", "is_operator": True,
                  "password": PASSWORD},
        )  # fmt: skip
        async with signed_in(made, "ops@acme.com") as page:
            shown = await page.get("/users")
    assert "slack_member" not in shown.text
