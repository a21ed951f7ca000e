"""The signed dashboard link in a Slack DM: it signs a Slack-only reviewer in for that one
task, until its deadline, and for nothing else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx

from awaithumans.server.auth import SESSION_COOKIE
from awaithumans.server.security import KeyRing
from awaithumans.server.services.handoff import handoff_url
from awaithumans.testing import ServerProcess
from tests.slack._helpers import add_user, buttons, create, posted
from tests.support.slack_standin import SlackStandIn


def _browser(server: ServerProcess) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, timeout=10, follow_redirects=False)


async def test_the_dm_link_signs_in_for_that_task_only(
    server: ServerProcess, slack: SlackStandIn
) -> None:
    # Carol is in the directory through Slack alone: no email, no password.
    carol = await add_user(server, "Carol Clark", slack_user_id="U0CAROL03", operator=True)
    mine = await create(server, ["slack:U0CAROL03"], task="Carol's task?")
    other = await create(server, [], task="Someone else's task?")
    (message,) = await posted(slack, server)
    link = buttons(message)[1]["url"]
    assert "/handoff?t=" in link
    async with _browser(server) as browser:
        landed = await browser.get(link.removeprefix(server.url))
        assert landed.status_code == 303
        assert landed.headers["location"] == f"/task?id={mine['id']}"
        page = await browser.get(landed.headers["location"])
        assert page.status_code == 200
        assert "Carol&#39;s task?" in page.text or "Carol's task?" in page.text
        # Nothing else: not another task, not the operator pages (Carol is an operator,
        # but a link is not her password).
        assert (await browser.get(f"/task?id={other['id']}")).status_code == 404
        queue = await browser.get("/")
        assert "Someone else" not in queue.text
        assert (await browser.get("/users")).status_code == 403
        api = await browser.get(f"/api/tasks/{other['id']}")
        assert api.status_code == 404
    assert mine["assigned_to_user_id"] == carol


async def test_tampered_and_expired_links_are_refused(
    server: ServerProcess, slack: SlackStandIn
) -> None:
    carol = await add_user(server, "Carol Clark", slack_user_id="U0CAROL03")
    made = await create(server, ["slack:U0CAROL03"])
    (message,) = await posted(slack, server)
    link = buttons(message)[1]["url"]
    token = parse_qs(urlsplit(link).query)["t"][0]
    keyring = KeyRing.from_text(server.payload_key)
    expired = handoff_url(
        keyring, server.url, carol, made["id"], datetime.now(UTC) - timedelta(seconds=5)
    )
    other_key = KeyRing.from_text("a" * 64)
    foreign = handoff_url(other_key, server.url, carol, made["id"], datetime.now(UTC))
    async with _browser(server) as browser:
        tampered = await browser.get("/handoff", params={"t": token[:-3] + "AAA"})
        old = await browser.get(expired.removeprefix(server.url))
        wrong_key = await browser.get(foreign.removeprefix(server.url))
        missing = await browser.get("/handoff")
        for refused in (tampered, old, wrong_key, missing):
            assert refused.status_code == 400
            assert SESSION_COOKIE not in refused.headers.get("set-cookie", "")
        assert "expired" in old.text
        # Still signed out.
        assert (await browser.get(f"/task?id={made['id']}")).status_code in (303, 307)
