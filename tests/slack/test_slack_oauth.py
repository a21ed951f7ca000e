"""Installing in more workspaces through OAuth: the install link, Slack's consent, the
callback's checks, the token sealed at rest, routes to a team, removal in Settings."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from awaithumans.server.security import KeyRing
from awaithumans.server.security.signing import sign
from awaithumans.testing import ServerProcess
from tests._waiting import until
from tests.slack._helpers import admin, create, deliveries, posted
from tests.slack.conftest import FAST, ServerFactory
from tests.support.slack_standin import SIGNING_SECRET, SlackStandIn

INSTALL_TOKEN = "install-" + "x" * 24
OAUTH_ENV = {
    "AWAITHUMANS_SLACK_BOT_TOKEN": "",
    "AWAITHUMANS_SLACK_CLIENT_ID": "1234.5678",
    "AWAITHUMANS_SLACK_CLIENT_SECRET": "client-secret",
    "AWAITHUMANS_SLACK_INSTALL_TOKEN": INSTALL_TOKEN,
    "AWAITHUMANS_SLACK_SIGNING_SECRET": SIGNING_SECRET,
}


def _browser(server: ServerProcess) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, timeout=10, follow_redirects=False)


async def _install(server: ServerProcess, team: str) -> httpx.Response:
    """An admin opens the install link and consents in Slack, which sends them back."""
    async with _browser(server) as browser:
        started = await browser.get(
            "/api/channels/slack/oauth/start", params={"install_token": INSTALL_TOKEN}
        )
        assert started.status_code == 303, started.text
        state = parse_qs(urlsplit(started.headers["location"]).query)["state"][0]
        return await browser.get(
            "/api/channels/slack/oauth/callback", params={"code": f"code-{team}", "state": state}
        )


async def test_an_install_then_a_task_routed_to_its_team(
    make_server: ServerFactory, slack: SlackStandIn
) -> None:
    with make_server(**OAUTH_ENV) as server:
        async with _browser(server) as browser:
            wrong = await browser.get(
                "/api/channels/slack/oauth/start", params={"install_token": "guess"}
            )
            assert wrong.status_code == 403
            started = await browser.get(
                "/api/channels/slack/oauth/start", params={"install_token": INSTALL_TOKEN}
            )
        consent = urlsplit(started.headers["location"])
        query = parse_qs(consent.query)
        assert consent.netloc == "slack.com"
        assert query["client_id"] == ["1234.5678"]
        assert "chat:write" in query["scope"][0]
        assert query["redirect_uri"] == [f"{server.url}/api/channels/slack/oauth/callback"]
        assert "ah_slack_oauth" in started.headers["set-cookie"]

        done = await _install(server, "T0SECOND")
        assert done.status_code == 200, done.text
        assert "Slack is installed" in done.text
        # The bot token is sealed at rest.
        with sqlite3.connect(server.workdir / "server.db") as db:
            (sealed,) = db.execute("SELECT token_enc FROM slack_installations").fetchone()
        assert b"xoxb-oauth-T0SECOND" not in sealed

        # The only install takes routes without a team, and slack+TEAM: names it.
        await create(server, ["slack+T0SECOND:#approvals"], task="Named team?")
        await create(server, ["slack:#general"], task="The only team?")
        await posted(slack, server, 2)
        tokens = {c.token for c in slack.calls_to("chat.postMessage")}
        assert tokens == {"xoxb-oauth-T0SECOND"}


async def test_the_callback_checks_state_cookie_and_expiry(
    make_server: ServerFactory, slack: SlackStandIn
) -> None:
    with make_server(**OAUTH_ENV) as server:
        key = KeyRing.from_text(server.payload_key).derive("slack-oauth")
        expired = sign(key, {"n": "nonce"}, expires_at=int(time.time()) - 1)
        async with _browser(server) as browser:
            started = await browser.get(
                "/api/channels/slack/oauth/start", params={"install_token": INSTALL_TOKEN}
            )
            state = parse_qs(urlsplit(started.headers["location"]).query)["state"][0]
            browser.cookies.clear()  # another browser: no state cookie
            elsewhere = await browser.get(
                "/api/channels/slack/oauth/callback", params={"code": "code-T0X", "state": state}
            )
            old = await browser.get(
                "/api/channels/slack/oauth/callback", params={"code": "code-T0X", "state": expired}
            )
            refused = await browser.get(
                "/api/channels/slack/oauth/callback", params={"error": "access_denied"}
            )
    assert (elsewhere.status_code, old.status_code, refused.status_code) == (400, 400, 400)
    assert "started elsewhere" in elsewhere.text
    assert "expired" in old.text
    assert slack.calls_to("oauth.v2.access") == []


async def test_a_removed_workspace_takes_no_more_tasks(tmp_path: Path, slack: SlackStandIn) -> None:
    env = {**slack.env(), **FAST, **OAUTH_ENV}
    with ServerProcess(workdir=tmp_path, env=env) as server:
        assert (await _install(server, "T0THIRD")).status_code == 200
        # An operator removes it in Settings (signed in through the browser's form).
        async with admin(server) as http:
            made = await http.post(
                "/api/admin/users",
                json={"email": "ops@acme.com", "display_name": "Ops", "is_operator": True,
                      "password": "correct horse battery staple"},
            )  # fmt: skip
            assert made.status_code == 201
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as browser:
            login = await browser.get("/login")
            csrf = login.text.split('name="csrf_token" value="')[1].split('"')[0]
            await browser.post("/login", data={"csrf_token": csrf, "email": "ops@acme.com",
                                               "password": "correct horse battery staple",
                                               "next": "/settings"})  # fmt: skip
            page = await browser.get("/settings")
            assert "T0THIRD" in page.text
            csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
            removed = await browser.post(
                "/settings/slack/installs/T0THIRD/remove", data={"csrf_token": csrf}
            )
            assert removed.status_code == 303
        made_task = await create(server, ["slack:#approvals"])

        async def failed() -> str | None:
            jobs = await deliveries(server, made_task["id"])
            return str(jobs[0]["last_error"]) if jobs and jobs[0]["status"] == "failed" else None

        reason = await until(failed, timeout=15, why=server.logs)
    assert "Slack is not configured" in reason
