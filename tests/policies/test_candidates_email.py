"""A first-to-claim task mailed to its two candidates, against a real SMTP sink and a real
server process (SQLite and PostgreSQL): each mail carries answer links (being mailed does
not make the first recipient the assignee); once Ana claimed the task, Ben's link stops at a
page saying Ana took it, and nothing is recorded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from awaithumans.testing import ServerProcess
from tests._api import add_user, create, task
from tests.email.conftest import smtp_env
from tests.policies._world import PASSWORD
from tests.policies.test_approvers_email import buttons, click, plain
from tests.support.smtp_sink import SmtpSink


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


@pytest.fixture
def server(database_url: str, tmp_path: Path, sink: SmtpSink) -> Iterator[ServerProcess]:
    with ServerProcess(database_url=database_url, workdir=tmp_path, env=smtp_env(sink)) as running:
        yield running


async def test_the_one_who_lost_is_told_who_took_it(server: ServerProcess, sink: SmtpSink) -> None:
    ana_id = await add_user(server, "Ana Lima", email="ana@acme.test")
    await add_user(server, "Ben Ode", email="ben@acme.test")
    made = await create(
        server,
        ["email:ana@acme.test", "email:ben@acme.test"],
        assign_to=["ana@acme.test", "ben@acme.test"],
    )
    mails = {str(m.header("To")): m for m in await sink.wait_for_async(2)}
    ana = next(buttons(m) for to, m in mails.items() if "ana@" in to)
    ben = next(buttons(m) for to, m in mails.items() if "ben@" in to)
    assert set(ana) == set(ben) == {"Yes", "No"}
    assert (await task(server, made["id"]))["assigned_to_user_id"] is None

    async with httpx.AsyncClient(base_url=server.url, timeout=10) as browser:
        login = {"email": "ana@acme.test", "password": PASSWORD}
        assert (await browser.post("/api/auth/login", json=login)).status_code == 200
        claimed = await browser.post(f"/api/tasks/{made['id']}/claim")
        assert claimed.status_code == 200, claimed.text

    late = await click(server, ben["No"])
    assert late.status_code == 403, late.text
    assert "Ana Lima took this task, so your answer was not recorded." in plain(late)
    now = await task(server, made["id"])
    assert (now["status"], now["assigned_to_user_id"]) == ("in_progress", ana_id)

    # Ana's own link still answers it.
    done = await click(server, ana["Yes"])
    assert done.status_code == 200, done.text
    assert (await task(server, made["id"]))["completed_by_email"] == "ana@acme.test"
