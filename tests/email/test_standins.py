"""The email stand-ins work through the real clients the channel uses: ``aiosmtplib`` against
the SMTP sink, the ``resend`` SDK against the Resend stand-in. If these pass, a failing
channel test is about the channel, not about its test doubles."""

from __future__ import annotations

import ssl
import time
from collections import deque
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import pytest
import resend
from resend import exceptions as resend_errors

from awaithumans.testing import free_port
from tests.support.resend_standin import API_KEY, ResendStandIn, resend_error
from tests.support.smtp_sink import SmtpSink

# -- SMTP -----------------------------------------------------------------------------------


def _message(to: str = "alice@acme.com", subject: str = "Approve the refund?") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Await Humans <tasks@awaithumans.test>"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = "<task-1@awaithumans.test>"
    message.set_content("Approve the refund of 40 EUR?\n")
    message.add_alternative("<p>Approve the refund of <b>40 EUR</b>?</p>\n", subtype="html")
    return message


async def _send(sink: SmtpSink, message: EmailMessage | None = None, /, **kwargs: Any) -> None:
    """``aiosmtplib.send`` to the sink; ``kwargs`` are its options (TLS, AUTH, hostname)."""
    kwargs.setdefault("hostname", "127.0.0.1")
    kwargs.setdefault("timeout", 5)
    await aiosmtplib.send(
        message or _message(), port=sink.port, local_hostname="client.test", **kwargs
    )


async def test_a_message_arrives_with_its_envelope_headers_and_both_bodies() -> None:
    with SmtpSink() as sink:
        before = time.monotonic()
        await _send(sink, _message(), recipients=["alice@acme.com", "audit@acme.com"])
        (got,) = sink.wait_for(1)
    assert got.mail_from == "tasks@awaithumans.test"
    assert got.rcpt_tos == ["alice@acme.com", "audit@acme.com"]  # the envelope, not To:
    assert got.header("Subject") == "Approve the refund?"
    assert got.header("message-id") == "<task-1@awaithumans.test>"
    assert got.header("X-Missing") is None
    assert got.text() == "Approve the refund of 40 EUR?\n"
    assert got.html() == "<p>Approve the refund of <b>40 EUR</b>?</p>\n"
    assert b"Subject: Approve the refund?" in got.raw
    assert before <= got.received_at <= time.monotonic()


async def test_wait_for_names_what_did_arrive_when_it_times_out() -> None:
    with SmtpSink() as sink:
        await _send(sink)
        with pytest.raises(AssertionError, match=r"expected 2 .* got 1: .*Approve the refund"):
            sink.wait_for(2, timeout=0.05)
        assert len(await sink.wait_for_async(1)) == 1


async def test_a_text_only_message_has_no_html_part() -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@x.test", "b@y.test", "Plain"
    message.set_content("just text\n")
    with SmtpSink() as sink:
        await _send(sink, message)
        (got,) = sink.wait_for(1)
    assert got.text() == "just text\n"
    with pytest.raises(AssertionError, match="no text/html part"):
        got.html()


async def test_auth_is_required_and_checked_with_plain_and_login() -> None:
    with SmtpSink(username="mailer", password="s3cret") as sink:
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as no_auth:
            await _send(sink)
        assert no_auth.value.code == 530
        with pytest.raises(aiosmtplib.SMTPAuthenticationError) as wrong:
            await _send(sink, username="mailer", password="wrong")
        assert wrong.value.code == 535
        await _send(sink, username="mailer", password="s3cret")
        for mechanism in ("auth_plain", "auth_login"):
            async with aiosmtplib.SMTP(
                hostname="127.0.0.1", port=sink.port, local_hostname="client.test", timeout=5
            ) as client:
                assert {"plain", "login"} <= set(client.server_auth_methods)
                response = await getattr(client, mechanism)("mailer", "s3cret")
                assert response.code == 235
                await client.send_message(_message())
        assert len(sink.wait_for(3)) == 3
        assert sink.authenticated_as == ["mailer", "mailer", "mailer"]


async def test_starttls_with_the_sinks_certificate_trusted() -> None:
    with SmtpSink(tls="starttls", username="mailer", password="s3cret") as sink:
        # Without STARTTLS the server refuses to go on.
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as plain:
            await _send(sink, start_tls=False)
        assert plain.value.code == 530
        # The certificate is checked for real: not trusted, no session.
        with pytest.raises(ssl.SSLCertVerificationError):
            await _send(sink, start_tls=True)
        credentials = {"username": "mailer", "password": "s3cret"}
        await _send(sink, start_tls=True, cert_bundle=sink.cert_path, **credentials)
        # start_tls=None (the default): upgraded because the server offers STARTTLS.
        context = sink.client_tls_context()
        await _send(sink, hostname="localhost", tls_context=context, **credentials)
        assert len(sink.wait_for(2)) == 2
    assert sink.authenticated_as == ["mailer", "mailer"]


async def test_implicit_tls_with_the_sinks_certificate_trusted() -> None:
    with SmtpSink(tls="implicit", username="mailer", password="s3cret") as sink:
        context = sink.client_tls_context()
        context.verify_flags |= ssl.VERIFY_X509_STRICT  # as Python 3.13 does by default
        await _send(sink, use_tls=True, tls_context=context, username="mailer", password="s3cret")
        await _send(
            sink,
            hostname="localhost",
            use_tls=True,
            cert_bundle=sink.cert_path,
            username="mailer",
            password="s3cret",
        )
        assert len(sink.wait_for(2)) == 2
        # The certificate is checked for real: not trusted, no session.
        with pytest.raises(aiosmtplib.SMTPConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await _send(sink, use_tls=True)
    assert sink.authenticated_as == ["mailer", "mailer"]


async def test_a_refused_recipient_gets_the_reply_set_for_it() -> None:
    refuse = {"Nobody@Acme.com": (550, "5.1.1 No such user")}
    with SmtpSink(refuse=refuse) as sink:
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
            await _send(sink, _message(to="nobody@acme.com"))
        (recipient,) = refused.value.recipients
        assert (recipient.recipient, recipient.code) == ("nobody@acme.com", 550)
        assert "No such user" in recipient.message
        # Some refused, some accepted: the message goes to those accepted.
        errors, _ = await aiosmtplib.send(
            _message(),
            recipients=["nobody@acme.com", "alice@acme.com"],
            hostname="127.0.0.1",
            port=sink.port,
            local_hostname="client.test",
        )
        assert errors["nobody@acme.com"].code == 550
        (got,) = sink.wait_for(1)
    assert got.rcpt_tos == ["alice@acme.com"]


async def test_a_queued_data_failure_then_success() -> None:
    with SmtpSink(fail_data=deque([(451, "4.3.0 Try again later")])) as sink:
        with pytest.raises(aiosmtplib.SMTPDataError) as failed:
            await _send(sink)
        assert failed.value.code == 451
        assert "Try again later" in failed.value.message
        assert sink.messages == []
        await _send(sink)
        assert len(sink.wait_for(1)) == 1


async def test_a_reserved_port_is_down_until_started_and_free_again_after_stop() -> None:
    port = free_port()
    sink = SmtpSink(port=port)
    with pytest.raises(aiosmtplib.SMTPConnectError):
        await _send(sink)
    with sink:
        assert sink.port == port
        # A connection open when the server goes down is dropped with it.
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, local_hostname="client.test")
        await client.connect()
        await _send(sink)
    with pytest.raises(aiosmtplib.SMTPServerDisconnected):
        await client.noop()
    with pytest.raises(aiosmtplib.SMTPConnectError):
        await _send(sink)
    with SmtpSink(port=port) as again:
        await _send(again)
        assert len(again.wait_for(1)) == 1
    assert len(sink.messages) == 1


# -- Resend ---------------------------------------------------------------------------------


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResendStandIn]:
    with ResendStandIn() as standin:
        # The SDK's configuration is module-wide; monkeypatch puts it back after.
        monkeypatch.setattr(resend, "api_key", API_KEY)
        monkeypatch.setattr(resend, "api_url", standin.url)
        yield standin


def _params(subject: str = "Approve the refund?") -> resend.Emails.SendParams:
    return {
        "from": "Await Humans <tasks@awaithumans.test>",
        "to": ["alice@acme.com"],
        "subject": subject,
        "text": "Approve the refund of 40 EUR?",
        "html": "<p>Approve the refund of <b>40 EUR</b>?</p>",
        "headers": {"X-Task-Id": "task-1"},
    }


async def test_an_async_send_is_recorded_and_answered_with_an_id(standin: ResendStandIn) -> None:
    sent = await resend.Emails.send_async(_params())
    (email,) = standin.wait_for(1)
    assert sent["id"] == standin.ids[0]
    assert email == _params()  # the JSON body as the SDK sent it
    (call,) = standin.calls
    assert call.headers["authorization"] == f"Bearer {API_KEY}"
    assert call.headers["user-agent"].startswith("resend-python:")
    assert (call.method, call.path, call.status) == ("POST", "/emails", 200)


def test_a_sync_send_works_too(standin: ResendStandIn) -> None:
    sent = resend.Emails.send(_params(subject="Sync"))
    assert sent["id"] == standin.ids[0]
    assert standin.wait_for(1)[0]["subject"] == "Sync"


async def test_a_queued_429_raises_the_sdks_rate_limit_error_then_sends(
    standin: ResendStandIn,
) -> None:
    standin.faults.append(resend_error(429, "rate_limit_exceeded"))
    with pytest.raises(resend_errors.RateLimitError) as limited:
        await resend.Emails.send_async(_params())
    assert limited.value.code == 429
    assert limited.value.error_type == "rate_limit_exceeded"
    assert limited.value.headers["retry-after"] == "1"
    assert standin.emails == []
    await resend.Emails.send_async(_params())
    assert len(standin.wait_for(1)) == 1
    assert [c.status for c in standin.calls] == [429, 200]


async def test_other_errors_map_to_the_sdks_exceptions(standin: ResendStandIn) -> None:
    standin.faults.extend(
        [resend_error(500, "application_error"), resend_error(422, "validation_error")]
    )
    with pytest.raises(resend_errors.ApplicationError) as crashed:
        await resend.Emails.send_async(_params())
    assert crashed.value.code == 500
    with pytest.raises(resend_errors.ValidationError, match="Invalid `to` field"):
        await resend.Emails.send_async(_params())
    with pytest.raises(resend_errors.MissingRequiredFieldsError, match="Missing `subject`"):
        await resend.Emails.send_async(_params(subject=""))
    assert standin.emails == []


async def test_the_api_key_is_checked(
    standin: ResendStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(resend, "api_key", "re_wrong")
    with pytest.raises(resend_errors.InvalidApiKeyError) as wrong:
        await resend.Emails.send_async(_params())
    assert wrong.value.code == 403
    assert standin.emails == []


async def test_an_idempotency_key_sends_once(standin: ResendStandIn) -> None:
    first = await resend.Emails.send_async(_params(), {"idempotency_key": "task-1/notify"})
    again = await resend.Emails.send_async(_params(), {"idempotency_key": "task-1/notify"})
    assert again["id"] == first["id"]
    assert len(standin.emails) == 1
    with pytest.raises(resend_errors.ResendError) as conflict:
        await resend.Emails.send_async(
            _params(subject="Other"), {"idempotency_key": "task-1/notify"}
        )
    assert (conflict.value.code, conflict.value.error_type) == (409, "invalid_idempotent_request")


async def test_a_resend_that_is_down_is_an_http_client_error(standin: ResendStandIn) -> None:
    standin.stop()
    with pytest.raises(resend_errors.ResendError) as down:
        await resend.Emails.send_async(_params())
    # The SDK reports a connection failure as code 500, told apart only by its type.
    assert (down.value.code, down.value.error_type) == (500, "HttpClientError")
