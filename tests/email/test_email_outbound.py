"""The email channel's mails, as a real SMTP server receives them: what they say, who they
sign in, and how the outbox carries them through a relay that is down or refuses them."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx

from awaithumans.testing import ServerProcess, free_port
from tests._api import add_user, admin, create, deliveries, task
from tests._waiting import until
from tests.email.conftest import SENDER, ServerFactory, smtp_env
from tests.support.resend_standin import API_KEY, ResendStandIn, resend_error
from tests.support.smtp_sink import Received, SmtpSink


def open_link(mail: Received) -> str:
    found = re.search(r"Open task: (\S+)", mail.text())
    assert found, mail.text()
    return found[1]


def _browser(server: ServerProcess) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, timeout=10, follow_redirects=False)


async def _delivery(
    server: ServerProcess, task_id: str, status: str, event: str = "task.created"
) -> dict[str, object]:
    async def check() -> dict[str, object] | None:
        rows = await deliveries(server, task_id)
        found = [
            r
            for r in rows
            if r["kind"] == "notify" and r["status"] == status and r["event"] == event
        ]
        return found[0] if found else None

    row: dict[str, object] = await until(check, timeout=20, why=server.logs)
    return row


async def test_the_mail_asks_and_its_link_signs_the_recipient_in(
    server: ServerProcess, sink: SmtpSink
) -> None:
    made = await create(server, ["email:Dana@Acme.test"], task="Refund $42 for ord_7?")
    other = await create(server, [], task="Someone else's task?")
    (mail,) = await sink.wait_for_async(1)

    # The envelope and headers of a transactional mail.
    assert mail.mail_from == SENDER
    # The domain is case-insensitive (and canonicalised); the local part is sent as written.
    assert mail.rcpt_tos == ["Dana@acme.test"]
    assert mail.header("Subject") == "Review: Refund $42 for ord_7?"
    assert mail.header("From") == f"Acme Approvals <{SENDER}>"
    assert mail.header("Auto-Submitted") == "auto-generated"
    assert mail.header("List-Unsubscribe") is None
    assert mail.header("X-Awaithumans-Task") == made["id"]
    message_id = mail.header("Message-ID")
    assert message_id is not None
    assert re.fullmatch(r"<msg_[0-9a-f]{24}\.\d+@acme\.test>", message_id)
    assert mail.message.get_content_type() == "multipart/alternative"
    # What the task is about, in both parts; no remote images in the HTML.
    for body in (mail.text(), mail.html()):
        assert "ord_7" in body
        assert "42" in body
        assert " left" in body
    assert "<img" not in mail.html()
    link = open_link(mail)
    assert link.startswith(f"{server.url}/handoff?t=")
    assert f'href="{link}"' in mail.html()

    # Dana was not in the directory: she is now, as a passwordless reviewer the email
    # added, and the task is hers to answer.
    async with admin(server) as http:
        users = (await http.get("/api/admin/users")).json()
    (dana,) = [u for u in users if u["email"] == "dana@acme.test"]
    assert dana["is_operator"] is False
    found = await until(lambda: _assigned(server, made["id"]), timeout=10)
    assert found == dana["id"]

    async with _browser(server) as browser:
        landed = await browser.get(link.removeprefix(server.url))
        assert landed.status_code == 303
        assert landed.headers["location"] == f"/task?id={made['id']}"
        page = await browser.get(landed.headers["location"])
        assert page.status_code == 200
        assert "Refund $42 for ord_7?" in page.text
        # For that task alone.
        assert (await browser.get(f"/task?id={other['id']}")).status_code == 404
        assert (await browser.get("/users")).status_code in (303, 403)
    row = await _delivery(server, made["id"], "delivered")
    assert row["target"] == "email:Dana@acme.test"


async def _assigned(server: ServerProcess, task_id: str) -> str | None:
    found = await task(server, task_id)
    assignee: str | None = found["assigned_to_user_id"]
    return assignee


async def test_a_known_recipient_is_not_added_again_and_keeps_an_assignee(
    server: ServerProcess, sink: SmtpSink
) -> None:
    erin = await add_user(server, "Erin Ember", email="erin@acme.test")
    frank = await add_user(server, "Frank Fir", email="frank@acme.test")
    made = await create(server, ["email:erin@acme.test"], assign_to={"user_id": frank})
    (mail,) = await sink.wait_for_async(1)
    # The task is Frank's: Erin is told of it, with the task's page (no link that signs her
    # in to a task she may not open, no buttons that would refuse her).
    assert open_link(mail) == f"{server.url}/task?id={made['id']}"
    assert "/api/channels/email/answer" not in mail.text()
    async with admin(server) as http:
        users = (await http.get("/api/admin/users")).json()
    assert sorted(u["email"] for u in users if u["email"]) == [
        "erin@acme.test",
        "frank@acme.test",
    ]
    assert erin in {u["id"] for u in users}
    # The task was Frank's, and stays his: a mail does not take it from him.
    assert (await task(server, made["id"]))["assigned_to_user_id"] == frank


async def test_a_redacted_payload_stays_out_of_the_mail(
    server: ServerProcess, sink: SmtpSink
) -> None:
    await create(server, ["email:gina@acme.test"], task="A sensitive refund", redact_payload=True)
    (mail,) = await sink.wait_for_async(1)
    for body in (mail.text(), mail.html()):
        assert "ord_7" not in body
        assert "Details hidden" in body


async def test_a_relay_that_is_down_gets_the_mail_when_it_is_back(
    make_server: ServerFactory,
) -> None:
    port = free_port()
    later = SmtpSink(port=port)
    with make_server(**smtp_env(later)) as server:
        started = time.monotonic()
        made = await create(server, ["email:hana@acme.test"])
        # The task is there at once; its mail waits for the relay.
        assert time.monotonic() - started < 2
        gone = await create(server, ["email:ida@acme.test"])
        pending = await _delivery(server, made["id"], "pending")
        await until(lambda: _tried(server, made["id"]), timeout=20, why=server.logs)
        assert pending["target"] == "email:hana@acme.test"
        # One task ends while its mail waits: the outbox drops the ask (it would only lead
        # to "already answered").
        async with admin(server) as http:
            cancelled = await http.post(f"/api/tasks/{gone['id']}/cancel", json={})
        assert cancelled.status_code == 200, cancelled.text
        with later:
            (mail,) = await later.wait_for_async(1, timeout=30)
            assert mail.rcpt_tos == ["hana@acme.test"]
            row = await _delivery(server, made["id"], "delivered")
            assert int(str(row["attempts"])) >= 2
            skipped = await _delivery(server, gone["id"], "skipped")
            assert "the task ended before this notification went out" in str(skipped["last_error"])
            assert len(later.messages) == 1


async def _tried(server: ServerProcess, task_id: str) -> bool:
    rows = await deliveries(server, task_id)
    return any(r["kind"] == "notify" and r["last_error"] for r in rows)


async def test_a_refused_address_is_final_and_says_why(
    make_server: ServerFactory, sink: SmtpSink
) -> None:
    sink.refuse["nobody@acme.test"] = (550, "5.1.1 No such user here")
    with make_server(**smtp_env(sink)) as server:
        made = await create(server, ["email:nobody@acme.test", "email:ivy@acme.test"])
        row = await _delivery(server, made["id"], "failed")
        assert row["target"] == "email:nobody@acme.test"
        assert row["attempts"] == 1
        assert "550" in str(row["last_error"])
        assert "No such user" in str(row["last_error"])
        # The other recipient got theirs.
        (mail,) = await sink.wait_for_async(1)
        assert mail.rcpt_tos == ["ivy@acme.test"]


async def test_a_temporary_refusal_is_retried(make_server: ServerFactory, sink: SmtpSink) -> None:
    sink.fail_data.append((451, "4.3.0 Try again later"))
    with make_server(**smtp_env(sink)) as server:
        made = await create(server, ["email:jo@acme.test"])
        (mail,) = await sink.wait_for_async(1, timeout=30)
        row = await _delivery(server, made["id"], "delivered")
        assert row["attempts"] == 2
        assert mail.rcpt_tos == ["jo@acme.test"]


async def test_login_over_starttls(make_server: ServerFactory) -> None:
    with SmtpSink(tls="starttls", username="mailer", password="s3cret-pass") as secure:
        env = smtp_env(
            secure,
            AWAITHUMANS_SMTP_START_TLS="true",
            AWAITHUMANS_SMTP_HOST="localhost",
            AWAITHUMANS_SMTP_USERNAME="mailer",
            AWAITHUMANS_SMTP_PASSWORD="s3cret-pass",
            # The relay's certificate is self-signed: trusted the standard way.
            SSL_CERT_FILE=secure.cert_path,
        )
        with make_server(**env) as server:
            await create(server, ["email:kim@acme.test"])
            (mail,) = await secure.wait_for_async(1)
            assert mail.rcpt_tos == ["kim@acme.test"]
            assert secure.authenticated_as == ["mailer"]


async def test_implicit_tls(make_server: ServerFactory) -> None:
    with SmtpSink(tls="implicit") as secure:
        env = smtp_env(
            secure,
            AWAITHUMANS_SMTP_USE_TLS="true",
            AWAITHUMANS_SMTP_HOST="localhost",
            SSL_CERT_FILE=secure.cert_path,
        )
        with make_server(**env) as server:
            await create(server, ["email:lin@acme.test"])
            (mail,) = await secure.wait_for_async(1)
            assert mail.rcpt_tos == ["lin@acme.test"]


async def test_the_ending_is_not_mailed_unless_asked(
    make_server: ServerFactory, sink: SmtpSink
) -> None:
    with make_server(**smtp_env(sink)) as server:
        made = await create(server, ["email:lee@acme.test"])
        await sink.wait_for_async(1)
        await _answer(server, made["id"])
        row = await _delivery(server, made["id"], "skipped", "task.completed")
        assert "AWAITHUMANS_EMAIL_NOTIFY_OUTCOME" in str(row["last_error"])
        assert len(sink.messages) == 1
    with make_server(**smtp_env(sink, AWAITHUMANS_EMAIL_NOTIFY_OUTCOME="true")) as server:
        made = await create(server, ["email:lee@acme.test"])
        (ask,) = [
            m for m in await sink.wait_for_async(2) if m.header("X-Awaithumans-Task") == made["id"]
        ]
        await _answer(server, made["id"])
        messages = await sink.wait_for_async(3)
        ending = messages[-1]
        assert ending.header("In-Reply-To") == ask.header("Message-ID")
        assert ending.header("Subject") == f"Re: {ask.header('Subject')}"
        assert "✅ Completed by" in ending.text()
        assert "/handoff" not in ending.text()


async def _answer(server: ServerProcess, task_id: str) -> None:
    async with admin(server) as http:
        done = await http.post(
            f"/api/tasks/{task_id}/complete", json={"response": {"approved": True}}
        )
    assert done.status_code == 200, done.text


async def test_file_and_logging_transports(make_server: ServerFactory, tmp_path: Path) -> None:
    folder = tmp_path / "mail"
    with make_server(
        AWAITHUMANS_EMAIL_TRANSPORT="file", AWAITHUMANS_EMAIL_FILE_DIR=str(folder)
    ) as server:
        made = await create(server, ["email:max@acme.test"])

        async def written() -> list[Path]:
            return sorted(folder.glob("*.eml"))

        (eml,) = await until(written, timeout=20, why=server.logs)
        assert eml.name.endswith(f"-{made['id']}.eml")
        text = eml.read_text()
        assert "Subject: Review: Refund $42 for ord_7?" in text
        assert "Content-Type: text/html" in text
    with make_server(AWAITHUMANS_EMAIL_TRANSPORT="logging") as server:
        made = await create(server, ["email:max@acme.test"])

        async def printed() -> bool:
            return "Subject: Review: Refund $42 for ord_7?" in server.logs()

        await until(printed, timeout=20, why=server.logs)
        assert f"{server.url}/handoff?t=" in server.logs()


async def test_resend_through_its_sdk(make_server: ServerFactory) -> None:
    with ResendStandIn() as resend:
        resend.faults.append(resend_error(429, "rate_limit_exceeded"))
        env = {
            "AWAITHUMANS_EMAIL_TRANSPORT": "resend",
            "AWAITHUMANS_RESEND_API_KEY": API_KEY,
            "AWAITHUMANS_EMAIL_FROM": SENDER,
            "RESEND_API_URL": resend.url,
            "AWAITHUMANS_OUTBOX_POLL_SECONDS": "0.3",
        }
        with make_server(**env) as server:
            made = await create(server, ["email:noa@acme.test"])
            (sent,) = await resend.wait_for_async(1, timeout=30)
            assert sent["to"] == ["noa@acme.test"]
            assert sent["from"] == SENDER
            assert sent["subject"] == "Review: Refund $42 for ord_7?"
            assert "ord_7" in sent["text"]
            assert "ord_7" in sent["html"]
            assert sent["headers"]["Auto-Submitted"] == "auto-generated"
            # The rate-limited try and the one that went through carry one idempotency key.
            first, second = resend.calls[:2]
            assert first.status == 429
            key = first.headers["idempotency-key"]
            assert key == second.headers["idempotency-key"] == sent["headers"]["Message-ID"]
            row = await _delivery(server, made["id"], "delivered")
            assert row["attempts"] == 2
        # A retry whose key Resend already used (with the minute-older body): it went.
        resend.faults.append(resend_error(409, "invalid_idempotent_request"))
        with make_server(**env) as server:
            made = await create(server, ["email:noa@acme.test"])
            row = await _delivery(server, made["id"], "delivered")
            assert row["attempts"] == 1
        with make_server(**{**env, "AWAITHUMANS_RESEND_API_KEY": "re_wrong"}) as server:
            made = await create(server, ["email:noa@acme.test"])
            row = await _delivery(server, made["id"], "failed")
            assert "invalid_api_key" in str(row["last_error"])
