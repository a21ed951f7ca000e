"""One-click answers, followed as a mail client and a link scanner would: the GET only
confirms, the POST answers once, and the links hold up to tampering, time and restarts."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from typing import Literal
from urllib.parse import parse_qs, urlsplit

import httpx
from pydantic import BaseModel

from awaithumans.server.notify.email.links import AnswerLink, answer_url
from awaithumans.server.security import KeyRing
from awaithumans.testing import ServerProcess
from tests._api import add_user, create, task
from tests.support.smtp_sink import Received, SmtpSink


class Approval(BaseModel):
    approved: bool


class Route(BaseModel):
    decision: Literal["approve", "reject", "escalate"]
    notes: str


class Wide(BaseModel):
    size: Literal["xs", "s", "m", "l", "xl"]


def buttons(mail: Received) -> dict[str, str]:
    """The one-click links of a mail, by label, from its text part."""
    return dict(re.findall(r"^  (.+?): (http\S+/api/channels/email/answer\?t=\S+)$",
                           mail.text(), re.MULTILINE))  # fmt: skip


def _browser(server: ServerProcess) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, timeout=10, follow_redirects=False)


def _csrf(page: httpx.Response) -> dict[str, str]:
    found = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
    return {k: html.unescape(v) for k, v in found.items()}


async def _confirm(
    browser: httpx.AsyncClient, link: str, **fields: str
) -> tuple[httpx.Response, httpx.Response]:
    page = await browser.get(link)
    assert page.status_code == 200, page.text
    done = await browser.post("/api/channels/email/answer", data={**_csrf(page), **fields})
    return page, done


async def test_approve_with_notes_in_two_clicks(server: ServerProcess, sink: SmtpSink) -> None:
    made = await create(server, ["email:olga@acme.test"])
    (mail,) = await sink.wait_for_async(1)
    links = buttons(mail)
    assert list(links) == ["Yes", "No"]
    for label, link in links.items():
        assert f'href="{html.escape(link)}"' in mail.html() or f'href="{link}"' in mail.html()
        assert label in mail.html()

    async with _browser(server) as scanner:
        # What a link scanner or a preview does: nothing is answered.
        for _ in range(2):
            seen = await scanner.get(links["Yes"])
            assert seen.status_code == 200
            assert "Approved: Yes" in seen.text
            assert 'name="notes"' in seen.text
        head = await scanner.head(links["No"])
        assert head.status_code in (200, 405)
    assert (await task(server, made["id"]))["status"] in ("notified", "assigned")

    async with _browser(server) as person:
        page, done = await _confirm(person, links["Yes"], notes="Looks right")
        assert done.status_code == 200, done.text
        assert "Answer recorded" in done.text
    answered = await task(server, made["id"])
    assert answered["status"] == "completed"
    assert answered["response"] == {"approved": True, "notes": "Looks right"}
    assert answered["completed_via_channel"] == "email"
    assert answered["completed_by_email"] == "olga@acme.test"

    async with _browser(server) as again:
        # A replay, and the other button, after the answer.
        replay_page = await again.get(links["Yes"])
        assert replay_page.status_code == 409
        assert "Already answered" in replay_page.text
        other = await again.get(links["No"])
        assert other.status_code == 409
        assert "Completed by olga@acme.test via email" in html.unescape(other.text)
        replay = await again.post("/api/channels/email/answer", data=_csrf(page))
        assert replay.status_code == 409
    assert (await task(server, made["id"]))["response"] == {
        "approved": True,
        "notes": "Looks right",
    }


async def test_a_one_field_form_and_a_required_note(server: ServerProcess, sink: SmtpSink) -> None:
    one = await create(server, ["email:pat@acme.test"], response_schema=Approval, task="One?")
    two = await create(server, ["email:pat@acme.test"], response_schema=Route, task="Two?")
    wide = await create(server, ["email:pat@acme.test"], response_schema=Wide, task="Wide?")
    mails = {m.header("X-Awaithumans-Task"): m for m in await sink.wait_for_async(3)}
    assert list(buttons(mails[one["id"]])) == ["Yes", "No"]
    assert list(buttons(mails[two["id"]])) == ["approve", "reject", "escalate"]
    # Five choices are too many for buttons: the mail offers the task page alone.
    assert buttons(mails[wide["id"]]) == {}
    assert "Open task: " in mails[wide["id"]].text()

    async with _browser(server) as person:
        page, done = await _confirm(person, buttons(mails[one["id"]])["No"])
        assert 'name="notes"' not in page.text
        assert done.status_code == 200, done.text
        # The required note must be given: the page says so, and nothing is recorded.
        page, refused = await _confirm(person, buttons(mails[two["id"]])["escalate"])
        assert refused.status_code == 400
        assert "Please confirm again" not in refused.text
        assert (await task(server, two["id"]))["status"] in ("notified", "assigned")
        retry = await person.post(
            "/api/channels/email/answer", data={**_csrf(refused), "notes": "Needs a lead"}
        )
        assert retry.status_code == 200, retry.text
    assert (await task(server, one["id"]))["response"] == {"approved": False}
    assert (await task(server, two["id"]))["response"] == {
        "decision": "escalate",
        "notes": "Needs a lead",
    }


async def test_a_post_without_the_page_answers_nothing(
    server: ServerProcess, sink: SmtpSink
) -> None:
    made = await create(server, ["email:quinn@acme.test"])
    (mail,) = await sink.wait_for_async(1)
    token = parse_qs(urlsplit(buttons(mail)["Yes"]).query)["t"][0]
    async with _browser(server) as forged:
        # The token alone (no page, no CSRF pair) is not a confirmation.
        got = await forged.post("/api/channels/email/answer", data={"t": token})
        assert got.status_code == 400
        assert "Please confirm again" in got.text
    assert (await task(server, made["id"]))["status"] in ("notified", "assigned")


async def test_tampered_expired_and_foreign_links_are_refused(
    server: ServerProcess, sink: SmtpSink
) -> None:
    made = await create(server, ["email:rae@acme.test"])
    (mail,) = await sink.wait_for_async(1)
    link = buttons(mail)["Yes"]
    token = parse_qs(urlsplit(link).query)["t"][0]
    rae = str((await task(server, made["id"]))["assigned_to_user_id"])
    keyring = KeyRing.from_text(server.payload_key)
    past = datetime.now(UTC) - timedelta(seconds=5)
    expired = answer_url(
        keyring, server.url, AnswerLink(rae, made["id"], "approved", True, 0, past)
    )
    foreign = answer_url(
        KeyRing.from_text("b" * 64),
        server.url,
        AnswerLink(rae, made["id"], "approved", True, 0, datetime.now(UTC) + timedelta(hours=1)),
    )
    async with _browser(server) as browser:
        tampered = await browser.get("/api/channels/email/answer", params={"t": token[:-2] + "AA"})
        assert tampered.status_code == 400
        assert "not valid" in tampered.text
        old = await browser.get(expired.removeprefix(server.url))
        assert old.status_code == 400
        assert "expired" in old.text
        assert (await browser.get(foreign.removeprefix(server.url))).status_code == 400
        # A link names its task: the same person's link cannot answer another task.
        other = await create(server, [], task="Another?")
        moved = answer_url(
            keyring,
            server.url,
            AnswerLink(
                rae, other["id"], "approved", True, 0, datetime.now(UTC) + timedelta(hours=1)
            ),
        )
        refused = await browser.get(moved.removeprefix(server.url))
        assert refused.status_code == 403
    assert (await task(server, made["id"]))["status"] in ("notified", "assigned")
    assert (await task(server, other["id"]))["status"] == "created"


async def test_someone_elses_task_and_a_restart(server: ServerProcess, sink: SmtpSink) -> None:
    sam = await add_user(server, "Sam Stone", email="sam@acme.test")
    theirs = await create(server, ["email:tess@acme.test"], assign_to={"user_id": sam})
    ours = await create(server, ["email:tess@acme.test"], task="Tess's own?")
    mails = {m.header("X-Awaithumans-Task"): m for m in await sink.wait_for_async(2)}
    # Sam's task reaches Tess without buttons; a link minted for her anyway is refused.
    assert buttons(mails[theirs["id"]]) == {}
    tess = str((await task(server, ours["id"]))["assigned_to_user_id"])
    later = datetime.now(UTC) + timedelta(hours=1)
    keyring = KeyRing.from_text(server.payload_key)
    minted = answer_url(
        keyring, server.url, AnswerLink(tess, theirs["id"], "approved", True, 0, later)
    )
    async with _browser(server) as browser:
        page = await browser.get(minted.removeprefix(server.url))
        assert page.status_code == 403
        assert "assigned to someone else" in page.text
    # Nothing is kept in memory: the links work after a restart.
    server.restart()
    async with _browser(server) as browser:
        _page, done = await _confirm(browser, buttons(mails[ours["id"]])["Yes"])
        assert done.status_code == 200, done.text
    assert (await task(server, ours["id"]))["status"] == "completed"
    assert (await task(server, theirs["id"]))["status"] in ("notified", "assigned")
