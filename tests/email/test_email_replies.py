"""Replies by email: a person answers the mail in their own words, through either door
(the inbound route, the built-in SMTP receiver), and gets an answer back in the thread."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import aiosmtplib
import httpx
import pytest

from awaithumans.testing import ServerProcess, free_port
from awaithumans.verifiers import VerifierConfig
from tests._api import create, task
from tests._waiting import until
from tests.email.conftest import SENDER, ServerFactory, smtp_env
from tests.support.llm_standin import ProviderStandIn
from tests.support.smtp_sink import Received, SmtpSink

NL = VerifierConfig(provider="claude", instructions="Check the decision is clear.")
DOMAIN = "reply.acme.test"
SECRET = "inbound-shared-secret"


@pytest.fixture
def inbound_port() -> int:
    return free_port()


@pytest.fixture
def server(
    make_server: ServerFactory, sink: SmtpSink, inbound_port: int
) -> Iterator[ServerProcess]:
    with ProviderStandIn() as model:
        env = smtp_env(
            sink,
            AWAITHUMANS_EMAIL_REPLY_DOMAIN=DOMAIN,
            AWAITHUMANS_EMAIL_INBOUND_SECRET=SECRET,
            AWAITHUMANS_EMAIL_INBOUND_SMTP_PORT=str(inbound_port),
            **model.env(),
        )
        with make_server(**env) as running:
            yield running


def reply(
    to: Received, text: str, *, sender: str = "uma@acme.test", **headers: str
) -> EmailMessage:
    """What a mail client sends when the person presses Reply and writes ``text``."""
    message = EmailMessage()
    message["From"] = f"Uma Ulm <{sender}>"
    message["To"] = str(to.header("Reply-To"))
    message["Subject"] = f"Re: {to.header('Subject')}"
    message["Message-ID"] = make_msgid(domain="acme.test")
    message["In-Reply-To"] = str(to.header("Message-ID"))
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    quoted = "\n".join(f"> {line}" for line in to.text().splitlines())
    message.set_content(f"{text}\n\nOn Mon, 7 Dec 2026 at 09:12, Acme Approvals wrote:\n{quoted}\n")
    return message


async def _post(
    server: ServerProcess, message: EmailMessage, secret: str = SECRET
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        return await http.post(
            "/api/channels/email/inbound",
            content=message.as_bytes(),
            headers={"Authorization": f"Bearer {secret}", "Content-Type": "message/rfc822"},
        )


async def _settled(server: ServerProcess, task_id: str) -> dict[str, Any]:
    """The task once its verifier has spoken."""

    async def check() -> dict[str, Any] | None:
        found = await task(server, task_id)
        return None if found["status"] == "submitted" else found

    settled: dict[str, Any] = await until(check, timeout=20, why=server.logs)
    return settled


async def test_a_reply_is_read_into_the_answer_and_answered(
    server: ServerProcess, sink: SmtpSink
) -> None:
    made = await create(server, ["email:uma@acme.test"], verifier=NL)
    (ask,) = await sink.wait_for_async(1)
    reply_to = str(ask.header("Reply-To"))
    assert reply_to.startswith("reply+")
    assert reply_to.endswith(f"@{DOMAIN}")
    assert len(reply_to.split("@")[0]) <= 64
    assert "Or reply to this email in your own words." in ask.text()

    sent = reply(ask, "Approve it: the charge was doubled.")
    got = await _post(server, sent)
    assert got.status_code == 200, got.text
    # Acknowledged once the answer is stored; the verifier reads it meanwhile.
    assert got.json()["status"] == "answered"
    done = await _settled(server, made["id"])
    assert done["status"] == "completed"
    # The quoted mail below the reply is not part of the answer.
    assert done["response"] == {"approved": True, "notes": "Approve it: the charge was doubled."}
    assert done["completed_via_channel"] == "email"
    assert done["completed_by_email"] == "uma@acme.test"

    back = (await sink.wait_for_async(2))[1]
    assert back.rcpt_tos == ["uma@acme.test"]
    assert back.header("In-Reply-To") == sent["Message-ID"]
    assert back.header("Auto-Submitted") == "auto-replied"
    assert back.header("Subject") == f"Re: {ask.header('Subject')}"
    assert "Recorded. I understood:" in back.text()
    assert "Approved: Yes" in back.text()


async def test_the_smtp_door_and_an_unclear_reply(
    server: ServerProcess, sink: SmtpSink, inbound_port: int
) -> None:
    made = await create(server, ["email:uma@acme.test"], verifier=NL)
    (ask,) = await sink.wait_for_async(1)
    # It relays nothing: any other recipient is refused at RCPT.
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
        await aiosmtplib.send(
            reply(ask, "approve"), hostname="127.0.0.1", port=inbound_port,
            recipients=["someone@else.test"],
        )  # fmt: skip
    await aiosmtplib.send(reply(ask, "ok"), hostname="127.0.0.1", port=inbound_port)
    back = (await sink.wait_for_async(2, timeout=30))[1]
    assert "I couldn't take that as your answer" in back.text()
    assert (await task(server, made["id"]))["status"] == "rejected"
    # A bounce (empty return path) is nobody's answer.
    bounce = reply(ask, "Approve: delivery failed")
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=inbound_port) as smtp:
        await smtp.sendmail("", [str(bounce["To"])], bounce.as_bytes())
    assert (await task(server, made["id"]))["status"] == "rejected"
    assert len(sink.messages) == 2
    # They say it again, plainly: recorded.
    await aiosmtplib.send(reply(ask, "Reject, please."), hostname="127.0.0.1", port=inbound_port)
    notes = await sink.wait_for_async(3, timeout=30)
    back = notes[2]
    assert "Recorded." in back.text()
    # Each note is its own mail.
    assert notes[1].header("Message-ID") != notes[2].header("Message-ID")
    final = await task(server, made["id"])
    assert final["response"] == {"approved": False, "notes": "Reject, please."}


async def test_forged_automatic_and_unauthenticated_mail_changes_nothing(
    server: ServerProcess, sink: SmtpSink
) -> None:
    made = await create(server, ["email:uma@acme.test"], verifier=NL)
    (ask,) = await sink.wait_for_async(1)
    forged = await _post(server, reply(ask, "Approve it.", sender="mallory@evil.test"))
    assert forged.json()["status"] == "refused"
    # A display name shaped like the address: the address is the one in brackets.
    named = reply(ask, "Approve it.")
    named.replace_header("From", "uma@acme.test <mallory@evil.test>")
    assert (await _post(server, named)).json()["status"] == "refused"
    # A sender's own Authentication-Results below the receiving server's counts for nothing,
    # and a DKIM pass for another domain proves nothing.
    below = reply(ask, "Approve it.", Authentication_Results="mx.acme.test; spf=fail")
    below["Authentication-Results"] = "mx.acme.test; dkim=pass header.d=acme.test"
    assert (await _post(server, below)).json()["status"] == "refused"
    other = reply(
        ask, "Approve.", Authentication_Results="mx; spf=fail; dkim=pass header.d=evil.test"
    )
    assert (await _post(server, other)).json()["status"] == "refused"
    spoofed = await _post(
        server,
        reply(ask, "Approve it.", Authentication_Results="mx.acme.test; spf=fail; dkim=none"),
    )
    assert spoofed.json()["status"] == "refused"
    vacation = await _post(
        server, reply(ask, "I'm away until Monday.", Auto_Submitted="auto-replied")
    )
    assert vacation.json()["status"] == "ignored"
    wrong = await _post(server, reply(ask, "Approve it."), secret="guess")
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "UNAUTHORIZED"
    empty = await _post(server, EmailMessage())
    assert empty.status_code == 400
    assert empty.json()["error"] == "BAD_REQUEST"
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        junk = await http.post(
            "/api/channels/email/inbound",
            content=b"\x00\xff not a mail at all",
            headers={"Authorization": f"Bearer {SECRET}"},
        )
    assert junk.status_code == 200, junk.text
    assert junk.json()["status"] == "ignored"
    assert (await task(server, made["id"]))["status"] in ("notified", "assigned")
    # Nobody was mailed back: not the forger, not the responder.
    assert len(sink.messages) == 1
    # A receiving server's DKIM pass for the sender's domain outweighs an SPF soft failure
    # (a forwarded mail).
    forwarded = await _post(
        server,
        reply(
            ask,
            "Approve it.",
            Authentication_Results="mx; spf=softfail; dkim=pass header.d=acme.test",
        ),
    )
    assert forwarded.json()["status"] == "answered"
    assert (await _settled(server, made["id"]))["status"] == "completed"


async def test_without_a_verifier_that_reads_text_there_is_no_reply_address(
    server: ServerProcess, sink: SmtpSink
) -> None:
    await create(server, ["email:uma@acme.test"])
    (ask,) = await sink.wait_for_async(1)
    assert ask.header("Reply-To") is None
    assert "reply to this email" not in ask.text()
    assert ask.header("From") == f"Acme Approvals <{SENDER}>"


async def test_a_reply_in_an_unknown_charset_is_read(server: ServerProcess, sink: SmtpSink) -> None:
    made = await create(server, ["email:uma@acme.test"], verifier=NL)
    (ask,) = await sink.wait_for_async(1)
    raw = (
        f"From: uma@acme.test\r\nTo: {ask.header('Reply-To')}\r\nSubject: Re: x\r\n"
        "Content-Type: text/plain; charset=unknown-8bit\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\nApprove it, caf\xe9 bill.\r\n"
    ).encode("latin-1")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        got = await http.post(
            "/api/channels/email/inbound",
            content=raw,
            headers={"Authorization": f"Bearer {SECRET}"},
        )
    assert got.status_code == 200, got.text
    assert got.json()["status"] == "answered"
    assert (await _settled(server, made["id"]))["status"] == "completed"


async def test_only_the_assignee_gets_buttons_and_a_reply_address(
    server: ServerProcess, sink: SmtpSink
) -> None:
    made = await create(server, ["email:uma@acme.test", "email:vic@acme.test"], verifier=NL)
    mails = {m.rcpt_tos[0]: m for m in await sink.wait_for_async(2)}
    done = await task(server, made["id"])
    first = "uma@acme.test" if mails["uma@acme.test"].header("Reply-To") else "vic@acme.test"
    second = "vic@acme.test" if first == "uma@acme.test" else "uma@acme.test"
    # The first mailed is the assignee; the other is told of the task, with nothing that
    # would refuse them.
    assert mails[first].header("Reply-To") is not None
    assert "/api/channels/email/answer?t=" in mails[first].text()
    assert mails[second].header("Reply-To") is None
    assert "/api/channels/email/answer?t=" not in mails[second].text()
    assert "/handoff?t=" not in mails[second].text()
    assert f"/task?id={made['id']}" in mails[second].text()
    assert done["assigned_to_user_id"] is not None
