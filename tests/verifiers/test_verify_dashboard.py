"""The task page with a verifier: the verdict above the form, the answer under check, a
provider's trouble with "Retry now", and answers in the person's own words."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html import unescape
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from awaithumans.server.settings import VerifierSettings
from tests._app_fixtures import make_settings, running_app
from tests._waiting import until
from tests.dashboard.test_task_page import PASSWORD, csrf_of, signed_in
from tests.support.llm_standin import ProviderStandIn
from tests.verifiers._helpers import body, verifier


@pytest.fixture
async def app(
    tmp_path: object, standin: ProviderStandIn, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    for name, value in standin.env().items():
        monkeypatch.setenv(name, value)
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path}/d.db",
        outbox_poll_seconds=0.3,
        # Automatic retries far apart: the operator's "Retry now" is what the test uses.
        verifier=VerifierSettings(timeout_seconds=2, retry_max_seconds=600),
    )
    async with running_app(settings) as (made, admin):
        created = await admin.post(
            "/api/admin/users",
            json={
                "email": "ops@acme.com",
                "display_name": "Olga Ops",
                "is_operator": True,
                "password": PASSWORD,
            },
        )
        assert created.status_code == 201, created.text
        yield made, admin


async def _task(admin: httpx.AsyncClient, **extra: Any) -> str:
    made = await admin.post("/api/tasks", json=body(verifier("claude"), **extra))
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def _status(admin: httpx.AsyncClient, task_id: str, status: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        found: dict[str, Any] = (await admin.get(f"/api/tasks/{task_id}")).json()
        return found if found["status"] == status else None

    found: dict[str, Any] = await until(check, timeout=20)
    return found


def _text(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


async def test_a_rejection_shows_the_reason_and_keeps_the_answer(
    app: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    made, admin = app
    task_id = await _task(admin)
    async with signed_in(made, "ops@acme.com") as page:
        first = await page.get(f"/task?id={task_id}")
        assert "Claude (Anthropic) checks each answer" in _text(first.text)
        sent = await page.post(
            "/task/submit",
            data={"csrf_token": csrf_of(first.text), "id": task_id, "f.approved": "true"},
        )
        assert sent.status_code == 303
        await _status(admin, task_id, "rejected")
        again = await page.get(f"/task?id={task_id}")
    text = _text(again.text)
    assert "The verifier did not accept the last answer. Explain the decision in the notes." in text
    assert "Attempt 1 of 3 used" in text
    # The answer given is back in the form, ready to correct.
    assert re.search(r'name="f.approved" value="true"[^>]*checked', again.text)
    assert "Or answer in your own words" in text


async def test_an_answer_in_own_words_from_the_page(
    app: tuple[FastAPI, httpx.AsyncClient], standin: ProviderStandIn
) -> None:
    made, admin = app
    task_id = await _task(admin)
    async with signed_in(made, "ops@acme.com") as page:
        shown = await page.get(f"/task?id={task_id}")
        empty = await page.post(
            "/task/submit",
            data={"csrf_token": csrf_of(shown.text), "id": task_id, "mode": "text",
                  "reply_text": "  "},
        )  # fmt: skip
        assert empty.status_code == 422
        assert "Your reply was empty" in _text(empty.text)
        sent = await page.post(
            "/task/submit",
            data={"csrf_token": csrf_of(shown.text), "id": task_id, "mode": "text",
                  "reply_text": "Approve: charged twice."},
        )  # fmt: skip
        assert sent.status_code == 303
        done = await _status(admin, task_id, "completed")
        final = await page.get(f"/task?id={task_id}")
    assert done["response"] == {"approved": True, "notes": "Approve: charged twice."}
    assert done["completed_via_channel"] == "dashboard"
    assert "Answer recorded, checked by the verifier" in _text(final.text)
    # The history says which model judged it and what that cost.
    assert re.search(r"\(claude-sonnet-5-5, [\d,]+ tokens\)", _text(final.text))
    (call,) = standin.calls
    assert call.blocks["reply_text"] == "Approve: charged twice."


async def test_provider_trouble_is_shown_and_an_operator_retries_now(
    app: tuple[FastAPI, httpx.AsyncClient], standin: ProviderStandIn
) -> None:
    made, admin = app
    standin.fail_next(1, "status", status=503)
    task_id = await _task(admin)
    async with signed_in(made, "ops@acme.com") as page:
        shown = await page.get(f"/task?id={task_id}")
        await page.post(
            "/task/submit",
            data={"csrf_token": csrf_of(shown.text), "id": task_id, "f.approved": "true",
                  "f.notes": "charged twice"},
        )  # fmt: skip

        async def troubled() -> str | None:
            got = await page.get(f"/task?id={task_id}")
            return got.text if "has not answered yet" in got.text else None

        waiting = await until(troubled, timeout=20)
        text = _text(waiting)
        assert "The answer is being checked by the verifier" in text
        assert "Tried 1 time; it is tried again automatically" in text
        # While the verifier works, the task view follows the task live.
        assert f'data-live="/ui/task?id={task_id}"' in waiting
        fragment = await page.get(f"/ui/task?id={task_id}")
        assert "has not answered yet" in fragment.text
        assert "<html" not in fragment.text
        retried = await page.post(
            "/task/verify", data={"csrf_token": csrf_of(waiting), "id": task_id}
        )
        assert retried.status_code == 303
        await _status(admin, task_id, "completed")
        nothing = await page.post(
            "/task/verify", data={"csrf_token": csrf_of(waiting), "id": task_id}
        )
    assert nothing.status_code == 409
    assert len(standin.calls) == 2


async def test_a_server_that_cannot_verify_says_so_on_the_page(
    app: tuple[FastAPI, httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    made, admin = app
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    task_id = await _task(admin)
    async with signed_in(made, "ops@acme.com") as page:
        shown = await page.get(f"/task?id={task_id}")
        refused = await page.post(
            "/task/submit",
            data={"csrf_token": csrf_of(shown.text), "id": task_id, "f.approved": "true"},
        )
    assert "needs ANTHROPIC_API_KEY in the server's environment" in _text(shown.text)
    assert refused.status_code == 424
    assert "Your answer was not recorded" in _text(refused.text)
