"""The queue (/), the audit list (/audit), their live fragments and the /ui/changes feed."""

from __future__ import annotations

import asyncio
import html
import random
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert

from awaithumans.core._wire import TaskStatus
from awaithumans.server.context import ServerContext
from awaithumans.server.db.models import FINISHED_TASK_CONDITION, OPEN_TASK_CONDITION, TaskRow
from awaithumans.server.services.task_create import new_task_id
from awaithumans.server.services.views import seal_for
from tests._app_fixtures import make_settings, running_app
from tests.dashboard.test_auth_pages import browser, csrf_of, do_setup

PASSWORD = "correct horse battery"


@dataclass
class Site:
    app: FastAPI
    admin: httpx.AsyncClient  # bearer admin token, for the JSON API

    @property
    def ctx(self) -> ServerContext:
        ctx: ServerContext = self.app.state.ctx
        return ctx


@pytest.fixture
async def site(tmp_path: object) -> AsyncIterator[Site]:
    async with running_app(make_settings(f"sqlite+aiosqlite:///{tmp_path}/d.db")) as (app, admin):
        yield Site(app, admin)


@pytest.fixture
async def any_db_site(database_url: str) -> AsyncIterator[Site]:
    """The same, on SQLite and on PostgreSQL (the list queries differ per dialect)."""
    async with running_app(make_settings(database_url)) as (app, admin):
        yield Site(app, admin)


# --- helpers ------------------------------------------------------------------------------


@asynccontextmanager
async def operator(site: Site) -> AsyncIterator[httpx.AsyncClient]:
    """A browser signed in as the first operator (ops@acme.com, "Ops")."""
    async with browser(site.app) as client:
        assert (await do_setup(site.app, client)).status_code == 303
        yield client


async def add_user(site: Site, email: str, name: str, *, is_operator: bool = False) -> str:
    resp = await site.admin.post(
        "/api/admin/users",
        json={
            "email": email,
            "display_name": name,
            "password": PASSWORD,
            "is_operator": is_operator,
        },
    )
    assert resp.status_code == 201, resp.text
    user_id: str = resp.json()["id"]
    return user_id


@asynccontextmanager
async def login(site: Site, email: str) -> AsyncIterator[httpx.AsyncClient]:
    """A browser signed in as ``email`` (made with :func:`add_user`)."""
    async with browser(site.app) as client:
        page = await client.get("/login")
        done = await client.post(
            "/login",
            data={
                "csrf_token": csrf_of(page.text),
                "email": email,
                "password": PASSWORD,
                "next": "/",
            },
        )
        assert done.status_code == 303, done.text
        yield client


async def create(site: Site, title: str, assign_to: str | None = None) -> str:
    body: dict[str, Any] = {
        "task": title,
        "payload": {"amount": 250},
        "payload_schema": {"type": "object"},
        "response_schema": {
            "type": "object",
            "properties": {"approved": {"type": "boolean"}},
            "required": ["approved"],
        },
        "timeout_seconds": 3600,
        "idempotency_key": f"k-{title}-{time.monotonic_ns()}",
    }
    if assign_to:
        body["assign_to"] = {"email": assign_to}
    resp = await site.admin.post("/api/tasks", json=body)
    assert resp.status_code == 201, resp.text
    task_id: str = resp.json()["id"]
    return task_id


def seeded(
    ctx: ServerContext,
    title: str,
    *,
    status: str = "created",
    created_at: datetime | None = None,
    finished_at: datetime | None = None,
    assignee: str | None = None,
    answered_by: tuple[str, str, str] | None = None,  # (user id, email, display name)
    channel: str | None = None,
) -> dict[str, Any]:
    """A realistic ``tasks`` row, for inserting many at once without the writer."""
    task_id = new_task_id()
    created = created_at or datetime.now(UTC) - timedelta(minutes=5)
    finished = finished_at if status in FINISHED else None
    if status in FINISHED and finished is None:
        finished = created + timedelta(minutes=3)
    answered = status == "completed"
    return {
        "id": task_id,
        "idempotency_key": f"seed:{task_id}",
        "fingerprint": "0" * 64,
        "owner_id": "admin:admin",
        "task": title,
        "status": status,
        "version": 2 if finished else (1 if assignee else 0),
        "payload_enc": seal_for(ctx.sealer, task_id, {"order": task_id, "amount": 250}),
        "response_enc": seal_for(ctx.sealer, task_id, {"approved": True}) if answered else None,
        "payload_schema": {"type": "object"},
        "response_schema": {"type": "object", "properties": {"approved": {"type": "boolean"}}},
        "form_definition": None,
        "timeout_seconds": 7 * 86400,
        # Open seeded tasks must not fall due while a test runs (the scheduler would close
        # them).
        "timeout_at": max(created, datetime.now(UTC)) + timedelta(days=7),
        "assign_to": None,
        "assigned_to_user_id": assignee,
        "notify": None,
        "verifier_config": None,
        "redact_payload": False,
        "callback_url": None,
        "task_metadata": None,
        "initial_response": None,
        "verification_attempt": 0,
        "created_at": created,
        "updated_at": finished or created,
        "completed_at": finished if answered else None,
        "timed_out_at": finished if status == "timed_out" else None,
        "completed_by_user_id": answered_by[0] if answered and answered_by else None,
        "completed_by_email": answered_by[1] if answered and answered_by else None,
        "completed_by_display_name": answered_by[2] if answered and answered_by else None,
        "completed_via_channel": channel if answered else None,
    }


FINISHED = ("completed", "timed_out", "cancelled", "verification_exhausted")
OPEN = ("created", "notified", "assigned", "in_progress", "submitted", "rejected")


async def insert_rows(ctx: ServerContext, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 2000):
        async with ctx.engine.begin() as conn:
            await conn.execute(insert(TaskRow), rows[start : start + 2000])


def live_region(page: str) -> str:
    """What the page embeds inside its data-live element."""
    found = re.search(r'<div id="\w+-live"[^>]*>(.*?)\s*</div>\s*</section>', page, re.S)
    assert found, "page has no live region"
    return found.group(1)


def titles(page: str) -> list[str]:
    return [html.unescape(t) for t in re.findall(r'<a href="/task\?id=[^"]+">([^<]*)</a>', page)]


def row_count(page: str) -> int:
    return len(re.findall(r'<td class="col-title"', page))


def next_link(page: str) -> str | None:
    found = re.search(r'<a class="btn" rel="next" href="([^"]+)"', page)
    return html.unescape(found.group(1)) if found else None


def without_clock(fragment: str) -> str:
    """Ages and times left tick between two requests; everything else must match."""
    return re.sub(r"(<time [^>]*>)[^<]*(</time>)", r"\1\2", fragment).strip()


def test_open_and_finished_split_the_statuses() -> None:
    """The index conditions spell the statuses out; a new status must land in one of them."""

    def named(condition: str) -> set[str]:
        return set(re.findall(r"'(\w+)'", condition))

    terminal = {s.value for s in TaskStatus if s.is_terminal}
    assert named(OPEN_TASK_CONDITION) == terminal == set(FINISHED)
    assert named(FINISHED_TASK_CONDITION) == {s.value for s in TaskStatus} - terminal
    assert set(OPEN) == named(FINISHED_TASK_CONDITION)


# --- access -------------------------------------------------------------------------------


async def test_anonymous_visitors_are_sent_to_sign_in(site: Site) -> None:
    async with browser(site.app) as client:
        page = await client.get("/")
        assert page.status_code == 303
        assert page.headers["location"] == "/login?next=%2F"
        audit = await client.get("/audit?status=completed")
        assert audit.status_code == 303
        assert audit.headers["location"] == "/login?next=%2Faudit%3Fstatus%3Dcompleted"
        # What scripts call answers 401 (a redirect would be followed into the login page).
        for url in ("/ui/queue", "/ui/audit", "/ui/changes?since=0&timeout=1"):
            resp = await client.get(url)
            assert resp.status_code == 401, url
            assert resp.json()["error"] == "UNAUTHENTICATED"


# --- the queue ----------------------------------------------------------------------------


async def test_queue_lists_open_tasks_with_link_assignee_and_status(site: Site) -> None:
    await add_user(site, "rita@acme.com", "Rita Reviewer")
    assigned = await create(site, "Approve $250 refund?", assign_to="rita@acme.com")
    unassigned = await create(site, "Check <b>invoice</b> & 'totals'")
    done = await create(site, "Already answered")
    answer = await site.admin.post(
        f"/api/tasks/{done}/complete", json={"response": {"approved": True}}
    )
    assert answer.status_code == 200
    async with operator(site) as client:
        page = await client.get("/")
    assert page.status_code == 200
    text = page.text
    assert titles(text) == ["Check <b>invoice</b> & 'totals'", "Approve $250 refund?"]
    assert "Already answered" not in text
    assert f'href="/task?id={assigned}"' in text
    assert f'href="/task?id={unassigned}"' in text
    assert "Check &lt;b&gt;invoice&lt;/b&gt; &amp; &#39;totals&#39;" in text  # escaped
    assert "Rita Reviewer" in text
    assert "Unassigned" in text
    assert '<span class="pill ">assigned</span>' in text
    assert '<span class="pill pill-muted">created</span>' in text
    assert "<strong>2</strong> open" in text
    assert 'data-label="Time left"' in text
    assert re.search(r'data-sequence="\d+"', text)
    assert 'aria-live="polite"' in text
    assert '<caption class="visually-hidden">' in text
    assert "/static/queue.css" in text
    assert "<script>" not in text
    assert "style=" not in text


async def test_queue_filters(any_db_site: Site) -> None:
    site = any_db_site
    await add_user(site, "rita@acme.com", "Rita")
    async with operator(site) as client:
        await create(site, "Refund order 100%", assign_to="ops@acme.com")
        await create(site, "Refund order 7", assign_to="rita@acme.com")
        await create(site, "Translate email")
        claimed = await create(site, "Review contract", assign_to="rita@acme.com")
        claim = await site.admin.post(f"/api/tasks/{claimed}/claim")
        assert claim.status_code == 200

        async def shown(query: str) -> list[str]:
            page = await client.get("/" + query)
            assert page.status_code == 200
            return titles(page.text)

        assert len(await shown("")) == 4
        assert await shown("?status=in_progress") == ["Review contract"]
        assert await shown("?status=assigned") == ["Refund order 7", "Refund order 100%"]
        assert await shown("?assigned=me") == ["Refund order 100%"]
        assert await shown("?assigned=unassigned") == ["Translate email"]
        assert await shown("?q=REFUND") == ["Refund order 7", "Refund order 100%"]
        assert await shown("?q=100%25") == ["Refund order 100%"]  # % is literal
        assert await shown("?q=order+_") == []  # so is _
        assert await shown("?q=refund&assigned=me&status=assigned") == ["Refund order 100%"]
        # Values the form cannot send are ignored, not errors.
        assert len(await shown("?status=completed&assigned=someone&cursor=nonsense")) == 4
        # The form shows what is applied, and offers to clear it.
        page = await client.get("/?status=assigned&assigned=me&q=refund")
        assert '<option value="assigned" selected>' in page.text
        assert '<option value="me" selected>' in page.text
        assert 'value="refund"' in page.text
        assert "Clear filters" in page.text
        assert 'data-live="/ui/queue?status=assigned&amp;assigned=me&amp;q=refund"' in page.text


async def test_reviewer_sees_only_tasks_assigned_to_them(site: Site) -> None:
    rita = await add_user(site, "rita@acme.com", "Rita")
    await add_user(site, "sam@acme.com", "Sam")
    await create(site, "For Rita", assign_to="rita@acme.com")
    await create(site, "For Sam", assign_to="sam@acme.com")
    await create(site, "For nobody")
    await insert_rows(
        site.ctx,
        [
            seeded(site.ctx, "Rita's old one", status="completed", assignee=rita),
            seeded(
                site.ctx,
                "Answered by Rita",
                status="completed",
                answered_by=(rita, "rita@acme.com", "Rita"),
                channel="dashboard",
            ),
            seeded(site.ctx, "Sam's old one", status="cancelled"),
        ],
    )
    async with login(site, "rita@acme.com") as client:
        page = await client.get("/")
        assert titles(page.text) == ["For Rita"]
        assert "<strong>1</strong> open" in page.text
        assert 'name="assigned"' not in page.text  # nothing to filter: all are theirs
        assert "Open tasks assigned to you" in page.text
        assert titles((await client.get("/ui/queue")).text) == ["For Rita"]
        audit = await client.get("/audit")
        assert sorted(titles(audit.text)) == ["Answered by Rita", "Rita's old one"]
        assert 'href="/users"' not in audit.text
    async with login(site, "sam@acme.com") as client:
        assert titles((await client.get("/")).text) == ["For Sam"]
        assert titles((await client.get("/audit")).text) == []


async def test_fragment_is_the_pages_live_region(site: Site) -> None:
    async with operator(site) as client:
        await create(site, "First", assign_to="ops@acme.com")
        await create(site, "Second")
        for query in ("", "?status=created", "?assigned=me&q=fir"):
            page = await client.get("/" + query)
            live_url = re.search(r'data-live="([^"]+)"', page.text)
            assert live_url
            assert html.unescape(live_url.group(1)) == "/ui/queue" + query
            fragment = await client.get("/ui/queue" + query)
            assert fragment.status_code == 200
            assert fragment.headers["content-type"].startswith("text/html")
            assert fragment.headers["cache-control"] == "no-store"
            assert "<html" not in fragment.text
            assert "<form" not in fragment.text
            assert without_clock(fragment.text) == without_clock(live_region(page.text))
        # A task created after the page loaded is in the next fragment; a finished one leaves.
        before = await client.get("/ui/queue")
        third = await create(site, "Third")
        assert "Third" in (await client.get("/ui/queue")).text
        await site.admin.post(f"/api/tasks/{third}/cancel", json={"reason": "test"})
        after = await client.get("/ui/queue")
        assert "Third" not in after.text
        assert titles(after.text) == titles(before.text)


async def test_empty_queue_shows_how_to_create_a_task(site: Site) -> None:
    async with operator(site) as client:
        page = await client.get("/")
        assert "No open tasks" in page.text
        assert "<pre" in page.text
        assert "<code>" in page.text
        assert "from awaithumans import await_human_sync" in page.text
        assert "await_human_sync(" in page.text
        assert "AWAITHUMANS_URL=http://testserver" in page.text
        filtered = await client.get("/?q=nothing-like-this")
        assert "No open tasks match these filters" in filtered.text
        assert "await_human_sync" not in filtered.text
        assert 'href="/"' in filtered.text  # clear the filters
    await add_user(site, "rita@acme.com", "Rita")
    async with login(site, "rita@acme.com") as client:
        page = await client.get("/")
        assert "Nothing waiting for you" in page.text
        assert "await_human_sync" not in page.text


# --- live updates -------------------------------------------------------------------------


async def test_changes_answers_at_once_when_behind_and_waits_when_current(site: Site) -> None:
    await create(site, "Bump the sequence")
    hub = site.ctx.hub
    async with operator(site) as client:
        current = hub.sequence
        assert current > 0
        started = time.monotonic()
        behind = await client.get(f"/ui/changes?since={current - 1}&timeout=30")
        assert time.monotonic() - started < 5
        assert behind.status_code == 200
        assert behind.json() == {"sequence": current}
        assert behind.headers["cache-control"] == "no-store"
        # A sequence from before a restart (ahead of this process) is answered at once too.
        started = time.monotonic()
        ahead = await client.get(f"/ui/changes?since={current + 100}&timeout=30")
        assert time.monotonic() - started < 5
        assert ahead.json() == {"sequence": current}
        # Current: waits out the timeout (clamped to at least 1 s) and reports no change.
        for timeout in ("1", "0", "-5"):
            started = time.monotonic()
            idle = await client.get(f"/ui/changes?since={current}&timeout={timeout}")
            waited = time.monotonic() - started
            assert idle.json() == {"sequence": current}
            assert 0.9 <= waited < 5, (timeout, waited)
        assert (await client.get("/ui/changes?since=x")).status_code == 422


async def test_changes_wakes_as_soon_as_a_task_is_created(site: Site) -> None:
    hub = site.ctx.hub
    async with operator(site) as client:
        since = hub.sequence
        loop = asyncio.get_running_loop()

        async def poll() -> tuple[httpx.Response, float]:
            started = loop.time()
            resp = await client.get(f"/ui/changes?since={since}&timeout=30")
            return resp, loop.time() - started

        async def create_once_parked() -> str:
            deadline = loop.time() + 5
            while hub._any_change is None:  # the poll is not waiting yet
                assert loop.time() < deadline, "the poll never parked"
                await asyncio.sleep(0.005)
            return await create(site, "Wake the dashboard")

        (resp, took), _task_id = await asyncio.wait_for(
            asyncio.gather(poll(), create_once_parked()), timeout=10
        )
    assert resp.status_code == 200
    assert resp.json()["sequence"] > since
    assert took < 5  # the timeout was 30 s


# --- the audit list -----------------------------------------------------------------------


async def test_audit_lists_finished_tasks_with_filters(any_db_site: Site) -> None:
    site = any_db_site
    ctx = site.ctx
    rita = await add_user(site, "rita@acme.com", "Rita Reviewer")
    day = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    await insert_rows(
        ctx,
        [
            seeded(
                ctx,
                "Refund approved in Slack",
                status="completed",
                created_at=day - timedelta(days=3),
                finished_at=day - timedelta(days=2),
                answered_by=(rita, "rita@acme.com", "Rita Reviewer"),
                channel="slack",
            ),
            seeded(
                ctx,
                "Refund approved on the web",
                status="completed",
                created_at=day - timedelta(days=1),
                finished_at=day,
                answered_by=("usr_" + "b" * 24, "bob@partner.io", "Bob"),
                channel="dashboard",
            ),
            seeded(
                ctx,
                "Nobody came",
                status="timed_out",
                created_at=day - timedelta(days=9),
                finished_at=day - timedelta(days=8),
            ),
            seeded(ctx, "Called off", status="cancelled", finished_at=day + timedelta(days=1)),
            seeded(ctx, "Still open", status="assigned", assignee=rita),
        ],
    )
    async with operator(site) as client:

        async def shown(query: str) -> list[str]:
            page = await client.get("/audit" + query)
            assert page.status_code == 200
            return titles(page.text)

        everything = await client.get("/audit")
        assert titles(everything.text) == [  # most recently finished first
            "Called off",
            "Refund approved on the web",
            "Refund approved in Slack",
            "Nobody came",
        ]
        assert "Rita Reviewer" in everything.text
        assert "rita@acme.com" in everything.text
        assert '<span class="pill pill-ok">completed</span>' in everything.text
        assert '<span class="pill pill-warn">timed out</span>' in everything.text
        assert "2026-03-10 12:00 UTC" in everything.text
        assert 'data-label="Answered by"' in everything.text
        assert await shown("?status=timed_out") == ["Nobody came"]
        assert await shown("?channel=slack") == ["Refund approved in Slack"]
        assert await shown("?answered_by=PARTNER.io") == ["Refund approved on the web"]
        assert await shown("?answered_by=rita") == ["Refund approved in Slack"]
        assert await shown("?q=refund&channel=dashboard") == ["Refund approved on the web"]
        assert await shown("?from=2026-03-08&to=2026-03-10") == [
            "Refund approved on the web",
            "Refund approved in Slack",
        ]
        assert await shown("?to=2026-03-02") == ["Nobody came"]
        assert await shown("?from=2026-03-11") == ["Called off"]
        # A date that is not one is reported, and the list is not narrowed by it.
        bad = await client.get("/audit?from=yesterday")
        assert bad.status_code == 200
        assert "“yesterday” is not a date" in bad.text
        assert 'aria-invalid="true"' in bad.text
        assert len(titles(bad.text)) == 4
        backwards = await client.get("/audit?from=2026-03-10&to=2026-03-01")
        assert "before the start date" in backwards.text
        empty = await client.get("/audit?q=zzz")
        assert "No finished tasks match these filters" in empty.text
        fragment = await client.get("/ui/audit?channel=slack")
        assert titles(fragment.text) == ["Refund approved in Slack"]
        assert "<html" not in fragment.text


# --- pagination and scale -----------------------------------------------------------------


async def test_pagination_follows_the_next_page_link(any_db_site: Site) -> None:
    site = any_db_site
    ctx = site.ctx
    start = datetime.now(UTC) - timedelta(hours=3)
    same_moment = start + timedelta(minutes=1)
    rows = [
        seeded(ctx, f"Open {i:03d}", created_at=start + timedelta(seconds=i)) for i in range(115)
    ]
    # Ties on the timestamp are broken by id, so no row is skipped or repeated at a boundary.
    rows += [seeded(ctx, f"Tied {i}", created_at=same_moment) for i in range(10)]
    rows += [
        seeded(ctx, f"Done {i:03d}", status="completed", finished_at=start + timedelta(seconds=i))
        for i in range(60)
    ]
    await insert_rows(ctx, rows)
    async with operator(site) as client:
        seen: list[str] = []
        url: str | None = "/?q=e"  # filters ride along on the next-page link
        pages = 0
        while url:
            page = await client.get(url)
            assert page.status_code == 200
            seen += titles(page.text)
            pages += 1
            url = next_link(page.text)
            if url:
                assert url.startswith("/?q=e&cursor=")
                assert row_count(page.text) == 50
        assert pages == 3
        assert len(seen) == len(set(seen)) == 125
        assert seen[0] == "Open 114"
        assert "<strong>125</strong> open" in page.text
        assert "back to newest" in page.text

        first = await client.get("/audit")
        assert row_count(first.text) == 50
        older = next_link(first.text)
        assert older
        assert older.startswith("/audit?cursor=")
        second = await client.get(older)
        assert titles(second.text) == [f"Done {i:03d}" for i in range(9, -1, -1)]
        assert next_link(second.text) is None


def many_rows(
    ctx: ServerContext, users: list[str], count: int, open_share: float = 0.2
) -> list[dict[str, Any]]:
    """``count`` tasks over the last 30 days, a fifth of them open, like a busy install."""
    rng = random.Random(7)
    now = datetime.now(UTC)
    channels = ("dashboard", "slack", "email", "api")
    rows = []
    for i in range(count):
        created = now - timedelta(days=30) + timedelta(seconds=i * 30 * 86400 // count)
        status = rng.choice(OPEN) if rng.random() < open_share else rng.choice(FINISHED)
        who = rng.randrange(len(users))
        assignee = users[who] if rng.random() < 0.7 else None
        rows.append(
            seeded(
                ctx,
                f"Refund {rng.randrange(10, 900)} USD for order {i:05d}",
                status=status,
                created_at=created,
                finished_at=min(created + timedelta(minutes=rng.randrange(1, 600)), now),
                assignee=assignee,
                answered_by=(users[who], f"r{who}@acme.com", f"Reviewer {who}"),
                channel=rng.choice(channels),
            )
        )
    return rows


async def test_ten_thousand_tasks(site: Site) -> None:
    """Both lists stay correct at scale (timings are measured by hand, not asserted)."""
    ctx = site.ctx
    users = [await add_user(site, f"r{i}@acme.com", f"Reviewer {i}") for i in range(20)]
    rows = many_rows(ctx, users, 10_000)
    await insert_rows(ctx, rows)

    def expect(keep: Any) -> list[str]:
        """Titles of the first page: newest first, ties by id."""
        found = sorted((r for r in rows if keep(r)), key=lambda r: (r["created_at"], r["id"]))
        return [r["task"] for r in reversed(found)][:50]

    def expect_audit(keep: Any) -> list[str]:
        found = sorted(
            (r for r in rows if r["status"] in FINISHED and keep(r)),
            key=lambda r: (r["updated_at"], r["id"]),
        )
        return [r["task"] for r in reversed(found)][:50]

    def is_open(r: dict[str, Any]) -> bool:
        return r["status"] in OPEN

    open_total = sum(1 for r in rows if is_open(r))
    async with operator(site) as client:
        page = await client.get("/")
        assert page.status_code == 200
        assert f"<strong>{open_total}</strong> open" in page.text
        assert titles(page.text) == expect(is_open)
        assert next_link(page.text)
        assert titles((await client.get("/?status=created&assigned=unassigned")).text) == expect(
            lambda r: r["status"] == "created" and r["assigned_to_user_id"] is None
        )
        assert titles((await client.get("/?q=order+0999")).text) == expect(
            lambda r: is_open(r) and "order 0999" in r["task"]
        )
        audit = await client.get("/audit")
        assert titles(audit.text) == expect_audit(lambda r: True)
        assert next_link(audit.text)
        slack_r3 = await client.get("/audit?channel=slack&answered_by=r3@")
        assert titles(slack_r3.text) == expect_audit(
            lambda r: (
                r["completed_via_channel"] == "slack"
                and (r["completed_by_email"] or "").startswith("r3@")
            )
        )
    async with login(site, "r5@acme.com") as client:
        mine = await client.get("/")
        mine_open = [r for r in rows if is_open(r) and r["assigned_to_user_id"] == users[5]]
        assert f"<strong>{len(mine_open)}</strong> open" in mine.text
        assert titles(mine.text) == expect(
            lambda r: is_open(r) and r["assigned_to_user_id"] == users[5]
        )
        assert titles((await client.get("/audit")).text) == expect_audit(
            lambda r: users[5] in (r["assigned_to_user_id"], r["completed_by_user_id"])
        )
