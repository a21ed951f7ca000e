"""Sender identities: a route's ``email+NAME:`` sends as that sender, through its own relay
or the server's; managed by operators in Settings → Email and the API, secrets sealed."""

from __future__ import annotations

import html
import re

import httpx

from awaithumans.testing import ServerProcess
from tests._api import add_user, admin, create, deliveries
from tests._waiting import until
from tests.support.smtp_sink import SmtpSink

PASSWORD = "correct horse battery staple"


async def _failed(server: ServerProcess, task_id: str) -> str:
    async def check() -> str | None:
        rows = await deliveries(server, task_id)
        done = [r for r in rows if r["kind"] == "notify" and r["status"] == "failed"]
        return str(done[0]["last_error"]) if done else None

    found: str = await until(check, timeout=20, why=server.logs)
    return found


async def test_a_sender_with_its_own_relay(server: ServerProcess, sink: SmtpSink) -> None:
    with SmtpSink(username="billing-mailer", password="relay-pass-7781") as relay:
        async with admin(server) as http:
            saved = await http.put(
                "/api/admin/email-identities/billing",
                json={
                    "from_address": "billing@acme.test",
                    "from_name": "Acme Billing",
                    "reply_to": "ap@acme.test",
                    "transport": "smtp",
                    "smtp_host": relay.host,
                    "smtp_port": relay.port,
                    "smtp_username": "billing-mailer",
                    "smtp_start_tls": False,
                    "secret": "relay-pass-7781",
                },
            )
            assert saved.status_code == 200, saved.text
            listed = (await http.get("/api/admin/email-identities")).json()
        assert listed == [saved.json()]
        assert listed[0]["has_secret"] is True
        assert "relay-pass-7781" not in saved.text
        # Sealed at rest: the password is nowhere in the database file.
        database = server.workdir / "server.db"
        stored = b"".join(p.read_bytes() for p in server.workdir.glob("server.db*"))
        assert database.exists()
        assert b"relay-pass-7781" not in stored

        made = await create(server, ["email+billing:vic@acme.test"])
        (mail,) = await relay.wait_for_async(1)
        assert mail.header("From") == "Acme Billing <billing@acme.test>"
        assert mail.header("Reply-To") == "ap@acme.test"
        assert mail.rcpt_tos == ["vic@acme.test"]
        assert mail.header("X-Awaithumans-Task") == made["id"]
        assert relay.authenticated_as == ["billing-mailer"]
        assert sink.messages == []

        # Saving it again without the password keeps the stored one.
        async with admin(server) as http:
            again = await http.put(
                "/api/admin/email-identities/billing",
                json={**saved.json(), "from_name": "Acme Accounts"},
            )
        assert again.status_code == 200, again.text
        await create(server, ["email+billing:vic@acme.test"])
        second = (await relay.wait_for_async(2))[1]
        assert second.header("From") == "Acme Accounts <billing@acme.test>"


async def test_a_sender_on_the_servers_transport_and_an_unknown_one(
    server: ServerProcess, sink: SmtpSink
) -> None:
    async with admin(server) as http:
        saved = await http.put(
            "/api/admin/email-identities/ops",
            json={"from_address": "ops@acme.test", "from_name": "Acme Ops"},
        )
        assert saved.status_code == 200, saved.text
        assert saved.json()["transport"] == "server"
    await create(server, ["email+ops:wes@acme.test"])
    (mail,) = await sink.wait_for_async(1)
    assert mail.header("From") == "Acme Ops <ops@acme.test>"
    unknown = await create(server, ["email+nope:wes@acme.test"])
    reason = await _failed(server, unknown["id"])
    assert "no sender identity 'nope'" in reason
    assert "Settings → Email" in reason
    async with admin(server) as http:
        assert (await http.delete("/api/admin/email-identities/ops")).status_code == 204
        assert (await http.delete("/api/admin/email-identities/ops")).status_code == 404
    gone = await create(server, ["email+ops:wes@acme.test"])
    assert "no sender identity 'ops'" in await _failed(server, gone["id"])


async def test_bad_identities_are_refused_and_change_nothing(server: ServerProcess) -> None:
    async with admin(server) as http:
        cases = [
            ("billing", {"from_address": "not an address"}, "from_address"),
            ("billing", {"from_address": "b@acme.test", "transport": "smtp"}, "smtp_host"),
            ("billing", {"from_address": "b@acme.test", "transport": "resend"}, "secret"),
        ]
        for name, body, field in cases:
            got = await http.put(f"/api/admin/email-identities/{name}", json=body)
            assert got.status_code == 422, got.text
            assert got.json()["error"] == "VALIDATION_ERROR"
            assert got.json()["details"][0]["loc"] == ["body", field]
        # One line: a name that would add a header is refused, not sent.
        injected = await http.put(
            "/api/admin/email-identities/billing",
            json={"from_address": "b@acme.test", "from_name": "Bill\r\nBcc: x@evil.test"},
        )
        assert injected.status_code == 422
        listy = await http.put(
            "/api/admin/email-identities/billing", json={"from_address": "a,b@acme.test"}
        )
        assert listy.status_code == 422
        bad_name = await http.put(
            "/api/admin/email-identities/Not%20A%20Name", json={"from_address": "b@acme.test"}
        )
        assert bad_name.status_code == 422
        assert (await http.get("/api/admin/email-identities")).json() == []
    # Operators only.
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as anonymous:
        assert (await anonymous.get("/api/admin/email-identities")).status_code == 401


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page
    return html.unescape(found[1])


async def test_operators_manage_senders_in_settings(server: ServerProcess) -> None:
    await add_user(server, "Ops", email="ops@acme.test", operator=True)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as browser:
        login = await browser.get("/login")
        await browser.post("/login", data={"csrf_token": _csrf(login.text),
                                           "email": "ops@acme.test", "password": PASSWORD,
                                           "next": "/settings"})  # fmt: skip
        page = await browser.get("/settings")
        assert page.status_code == 200
        assert "No senders yet" in page.text
        form = {
            "csrf_token": _csrf(page.text),
            "name": "Billing",
            "from_address": "billing@acme.test",
            "from_name": "Acme Billing",
            "transport": "resend",
        }
        refused = await browser.post("/settings/email/identities", data=form)
        assert refused.status_code == 400
        assert "The Resend API key this sender uses." in refused.text
        # What was typed stays in the form.
        assert 'value="billing@acme.test"' in refused.text
        saved = await browser.post(
            "/settings/email/identities", data={**form, "secret": "re_live_key_42"}
        )
        assert saved.status_code == 303
        page = await browser.get(saved.headers["location"])
        assert "Email sender saved." in page.text
        assert "email+billing:" in page.text
        assert "re_live_key_42" not in page.text
        removed = await browser.post(
            "/settings/email/identities/billing/remove", data={"csrf_token": _csrf(page.text)}
        )
        assert removed.status_code == 303
    async with admin(server) as http:
        assert (await http.get("/api/admin/email-identities")).json() == []


async def test_a_secret_does_not_follow_a_change_of_transport(server: ServerProcess) -> None:
    async with admin(server) as http:
        resend = await http.put(
            "/api/admin/email-identities/ops",
            json={"from_address": "ops@acme.test", "transport": "resend", "secret": "re_key_1"},
        )
        assert resend.json()["has_secret"] is True
        smtp = await http.put(
            "/api/admin/email-identities/ops",
            json={
                "from_address": "ops@acme.test",
                "transport": "smtp",
                "smtp_host": "smtp.acme.test",
                "smtp_port": 587,
                "smtp_username": "ops",
            },
        )
        assert smtp.status_code == 200, smtp.text
        # The Resend key is not kept as the relay's password.
        assert smtp.json()["has_secret"] is False
