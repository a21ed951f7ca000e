"""Approvers and votes by email: one-click links and answer pages, against a real SMTP sink
and a real server process (SQLite and PostgreSQL).

Two approvers mailed a task that needs both: each one's link records a vote (the page says
how far the approvals are), a second click says they already voted, and the second vote
completes the task. A recipient who is not an approver is stopped at the confirm page with
a clear message, and nothing is recorded.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from awaithumans.testing import ServerProcess
from tests._api import create, task
from tests.email.conftest import smtp_env
from tests.support.smtp_sink import Received, SmtpSink


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


@pytest.fixture
def server(database_url: str, tmp_path: Path, sink: SmtpSink) -> Iterator[ServerProcess]:
    with ServerProcess(database_url=database_url, workdir=tmp_path, env=smtp_env(sink)) as running:
        yield running


def buttons(mail: Received) -> dict[str, str]:
    return dict(re.findall(r"^  (.+?): (http\S+/api/channels/email/answer\?t=\S+)$",
                           mail.text(), re.MULTILINE))  # fmt: skip


def hidden(page: httpx.Response) -> dict[str, str]:
    found = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
    return {k: html.unescape(v) for k, v in found.items()}


def plain(page: httpx.Response) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page.text)))


async def click(server: ServerProcess, link: str) -> httpx.Response:
    """Open the link and confirm, as the person would; the confirm page if it stops there."""
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as browser:
        page = await browser.get(link)
        if page.status_code != 200:
            return page
        return await browser.post("/api/channels/email/answer", data=hidden(page))


async def test_two_approvers_vote_by_email(server: ServerProcess, sink: SmtpSink) -> None:
    made = await create(
        server,
        ["email:ann@acme.test", "email:ben@acme.test"],
        approvers=["ann@acme.test", "ben@acme.test"],
        approvals_required=2,
    )
    mails = {str(m.header("To")): m for m in await sink.wait_for_async(2)}
    ann = next(buttons(m) for to, m in mails.items() if "ann@" in to)
    ben = next(buttons(m) for to, m in mails.items() if "ben@" in to)

    first = await click(server, ann["Yes"])
    assert first.status_code == 200, first.text
    assert "Vote recorded" in plain(first)
    assert "The task has 1 of 2 approvals" in plain(first)
    assert (await task(server, made["id"]))["status"] != "completed"

    again = await click(server, ann["No"])
    assert again.status_code == 409, again.text
    assert "You already voted" in plain(again)

    second = await click(server, ben["Yes"])
    assert second.status_code == 200, second.text
    assert "Answer recorded" in plain(second)
    done = await task(server, made["id"])
    assert done["status"] == "completed"
    assert [(a["email"], a["channel"]) for a in done["approvals"]] == [
        ("ann@acme.test", "email"),
        ("ben@acme.test", "email"),
    ]


async def test_a_recipient_who_is_not_an_approver_is_stopped(
    server: ServerProcess, sink: SmtpSink
) -> None:
    made = await create(server, ["email:cat@acme.test"], approvers=["ann@acme.test"])
    (mail,) = await sink.wait_for_async(1)
    stopped = await click(server, buttons(mail)["Yes"])
    assert stopped.status_code == 403, stopped.text
    assert "Only this task's approvers can answer it, and you are not one of them." in plain(
        stopped
    )
    found = await task(server, made["id"])
    assert found["status"] in ("notified", "assigned")
    assert found["response"] is None
