"""Approvers and votes on the dashboard (no JavaScript: plain form posts, in-process app).

A listed approver finds a task assigned to someone else in their queue, opens it and
answers it; the unlisted assignee sees why they cannot, and a forged post is refused with
the page's own words and changes nothing. A task that needs two approvals shows its
progress and who voted, tells a voter they already voted, and completes on the second.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html import unescape

import httpx
import pytest

from tests.policies._people import Company, company
from tests.policies._world import csrf_of, dashboard_sign_in


@pytest.fixture
async def acme(database_url: str) -> AsyncIterator[Company]:
    async with company(database_url) as made:
        yield made


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


@asynccontextmanager
async def browser(acme: Company, email: str) -> AsyncIterator[httpx.AsyncClient]:
    async with acme.client() as client:
        await dashboard_sign_in(client, email)
        yield client


async def submit(client: httpx.AsyncClient, task_id: str, approved: bool) -> httpx.Response:
    page = await client.get(f"/task?id={task_id}")
    return await client.post(
        "/task/submit",
        data={
            "csrf_token": csrf_of(page.text),
            "id": task_id,
            "f.approved": "true" if approved else "false",
            "f.notes": "looked at it",
        },
    )


async def test_a_listed_approver_answers_from_their_queue(acme: Company) -> None:
    task_id = await acme.create(assign_to="rita@acme.com", approvers=["role:finance"])
    async with browser(acme, "bob@acme.com") as bob:
        queue = await bob.get("/")
        assert task_id in queue.text
        page = await bob.get(f"/task?id={task_id}")
        assert page.status_code == 200
        assert 'action="/task/submit"' in page.text
        done = await submit(bob, task_id, True)
    assert done.status_code == 303, done.text
    view = (await acme.admin.get(f"/api/tasks/{task_id}")).json()
    assert (view["status"], view["completed_by_email"], view["completed_via_channel"]) == (
        "completed",
        "bob@acme.com",
        "dashboard",
    )


async def test_the_unlisted_assignee_is_told_and_refused(acme: Company) -> None:
    task_id = await acme.create(assign_to="rita@acme.com", approvers=["role:finance"])
    before = await acme.row(task_id)
    async with browser(acme, "rita@acme.com") as rita:
        page = await rita.get(f"/task?id={task_id}")
        assert page.status_code == 200
        assert 'action="/task/submit"' not in page.text
        assert "Only this task's approvers can answer it" in text_of(page.text)
        forged = await rita.post(
            "/task/submit",
            data={"csrf_token": csrf_of(page.text), "id": task_id, "f.approved": "true"},
        )
    assert forged.status_code == 403, forged.text
    assert "Only this task's approvers may decide it and you are not one of them" in text_of(
        forged.text
    )
    after = await acme.row(task_id)
    assert (after["status"], after["version"]) == (before["status"], before["version"])
    # Someone neither listed nor assigned does not find it at all.
    async with browser(acme, "alice@acme.com") as alice:
        assert task_id not in (await alice.get("/")).text
        assert (await alice.get(f"/task?id={task_id}")).status_code == 404


async def test_two_approvals_show_progress_and_who_voted(acme: Company) -> None:
    task_id = await acme.create(approvers=["role:finance", "alice@acme.com"], approvals_required=2)
    async with browser(acme, "bob@acme.com") as bob:
        page = text_of((await bob.get(f"/task?id={task_id}")).text)
        assert "0 of 2 approvals" in page
        assert "Nobody has voted yet" in page
        assert (await submit(bob, task_id, True)).status_code == 303
        page_html = (await bob.get(f"/task?id={task_id}")).text
        page = text_of(page_html)
        assert "1 of 2 approvals" in page
        assert "✓ Approved by Bob Billing (bob@acme.com) via dashboard" in page
        assert "You already voted on this task" in page
        assert 'action="/task/submit"' not in page_html
        again = await bob.post(
            "/task/submit",
            data={"csrf_token": csrf_of(page_html), "id": task_id, "f.approved": "false"},
        )
        assert again.status_code == 409, again.text
        assert "You already voted on this task; your first vote stands." in text_of(again.text)
    async with browser(acme, "carol@acme.com") as carol:
        page = (await carol.get(f"/task?id={task_id}")).text
        assert 'action="/task/submit"' in page  # her vote is still to come
        assert (await submit(carol, task_id, True)).status_code == 303
        page = text_of((await carol.get(f"/task?id={task_id}")).text)
    assert "2 of 2 approvals" in page
    assert "✓ Approved by Carol Controller" in page
    assert "Answer recorded" in page
    audit = await acme.audit(task_id)
    assert [a["action"] for a in audit][-2:] == ["vote", "completed"]
