"""callback_url cannot reach into the server's own network (SSRF), unless the operator says so.

Create-time refusals go through the in-process app on a real database; connect-time ones
through its real outbox, posting over real sockets to receivers on 127.0.0.1; the dev
server's setting through a real ``awaithumans dev`` process.
"""

from __future__ import annotations

import ipaddress
import shutil
import signal
import ssl
import subprocess
import threading
from collections.abc import AsyncIterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from awaithumans.server.security import KeyRing
from awaithumans.server.security.outbound import address_kind, literal_address, url_refusal
from awaithumans.server.settings import AllowPrivateCallbacks
from awaithumans.server.webhook_secret import webhook_secret
from awaithumans.testing import WebhookReceiver
from tests._api import create_and_complete
from tests._app_fixtures import make_settings, running_app
from tests._waiting import until
from tests.e2e.test_cli import DevServer, stop_process

# One URL per kind of address that must never be reached by default, in the spellings an
# attacker would try.
REFUSED = {
    "loopback": [
        "http://127.0.0.1:8080/hook",
        "http://127.9.9.9/",
        "http://[::1]/hook",
        "http://127.1/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://0177.0.0.1/",
        "http://[::ffff:127.0.0.1]/",
    ],
    "private": [
        "http://10.0.0.5/hook",
        "https://172.16.3.4/",
        "http://192.168.1.1:8443/x",
        "http://100.64.1.1/",
        "http://[fd12:3456::1]/",
        "http://[fc00::1]/",
    ],
    "link-local": ["http://169.254.10.10/", "http://[fe80::1]/", "http://[fe80::1%25eth0]/"],
    "cloud metadata": [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:169.254.169.254]/",
        "http://[::ffff:a9fe:a9fe]/",
    ],
    "unspecified": ["http://0.0.0.0:3001/", "http://[::]/", "http://0/", "http://0.1.2.3/"],
    "multicast": ["http://224.0.0.1/", "http://239.255.255.250/", "http://[ff02::1]/"],
}
PUBLIC = ["https://hooks.example.com/x", "http://93.184.215.14/hook", "https://[2606:4700::1]/"]


def task_body(key: str, callback_url: str) -> dict[str, Any]:
    return {
        "task": "Approve?",
        "payload": {},
        "payload_schema": {"type": "object"},
        "response_schema": {"type": "object", "properties": {"ok": {"type": "boolean"}}},
        "timeout_seconds": 600,
        "idempotency_key": key,
        "callback_url": callback_url,
    }


@pytest.fixture
async def app_with(tmp_path: Path) -> AsyncIterator[Any]:
    """Start the in-process app with a given setting; everything started is stopped after."""
    started: list[Any] = []

    async def start(allow: AllowPrivateCallbacks) -> httpx.AsyncClient:
        settings = make_settings(
            f"sqlite+aiosqlite:///{tmp_path / f'{allow}.db'}", allow_private_callbacks=allow
        )
        ctx = running_app(settings)
        started.append(ctx)
        _app, client = await ctx.__aenter__()
        return client

    yield start
    for ctx in reversed(started):
        await ctx.__aexit__(None, None, None)


async def task_count(api: httpx.AsyncClient) -> int:
    return len((await api.get("/api/tasks", params={"limit": 200})).json()["items"])


# --- the rule -----------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "url"), [(k, u) for k, urls in REFUSED.items() for u in urls])
def test_each_kind_of_address_is_named(kind: str, url: str) -> None:
    host = urlsplit(url).hostname
    assert host is not None
    address = literal_address(host)
    assert address is not None, host
    assert address_kind(address) == kind
    assert url_refusal(url, "none") is not None


def test_public_addresses_and_names_pass_the_literal_check() -> None:
    for url in PUBLIC:
        assert url_refusal(url, "none") is None, url
    assert address_kind(ipaddress.ip_address("8.8.8.8")) is None
    # Documentation and reserved ranges are not anyone's receiver either.
    assert address_kind(ipaddress.ip_address("192.0.2.1")) == "reserved"
    assert address_kind(ipaddress.ip_address("240.0.0.1")) == "reserved"
    assert literal_address("example.com") is None
    assert literal_address("localhost") is None  # a name: resolved and checked at connect


def test_what_each_setting_lets_through() -> None:
    loopback, private = "http://127.0.0.1/", "http://10.1.2.3/"
    metadata, any_ = "http://169.254.169.254/", "http://0.0.0.0/"
    assert [url_refusal(u, "loopback") is None for u in (loopback, private, metadata)] == [
        True,
        False,
        False,
    ]
    assert url_refusal(loopback, "all") is None
    assert url_refusal(private, "all") is None
    assert url_refusal("http://169.254.1.1/", "all") is None
    # No receiver lives at these, whatever the operator allows.
    for url in (metadata, "http://[fd00:ec2::254]/", any_, "http://224.0.0.1/"):
        assert url_refusal(url, "all") is not None, url


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", "all"), ("1", "all"), ("YES", "all"), ("loopback", "loopback"), ("false", "none")],
)
def test_the_setting_reads_as_a_switch_with_loopback_between(raw: str, expected: str) -> None:
    assert make_settings("sqlite://", allow_private_callbacks=raw).allow_private_callbacks == (
        expected
    )


def test_a_bad_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from awaithumans.server.settings import Settings, describe_error

    monkeypatch.setenv("AWAITHUMANS_ALLOW_PRIVATE_CALLBACKS", "sometimes")
    with pytest.raises(ValidationError) as info:
        Settings()
    assert describe_error(info.value).startswith("AWAITHUMANS_ALLOW_PRIVATE_CALLBACKS=")


# --- at create ------------------------------------------------------------------------------


async def test_bad_literal_addresses_are_refused_at_create(app_with: Any) -> None:
    api = await app_with("none")
    before = await task_count(api)
    for kind, urls in REFUSED.items():
        for n, url in enumerate(urls):
            resp = await api.post("/api/tasks", json=task_body(f"{kind}-{n}", url))
            assert resp.status_code == 400, (url, resp.text)
            body = resp.json()
            assert body["error"] == "CALLBACK_URL_NOT_ALLOWED", body
            assert kind in body["message"], body
            assert "AWAITHUMANS_ALLOW_PRIVATE_CALLBACKS" in body["message"]
    assert await task_count(api) == before
    deliveries = (await api.get("/api/admin/deliveries")).json()
    assert deliveries == []
    for n, url in enumerate(PUBLIC):
        resp = await api.post("/api/tasks", json=task_body(f"public-{n}", url))
        assert resp.status_code == 201, (url, resp.text)


async def test_the_setting_widens_what_create_accepts(app_with: Any) -> None:
    loopback = await app_with("loopback")
    assert (await loopback.post("/api/tasks", json=task_body("l1", "http://127.0.0.1:9/h"))).json()[
        "callback_url"
    ] == "http://127.0.0.1:9/h"
    refused = await loopback.post("/api/tasks", json=task_body("l2", "http://10.0.0.1/h"))
    assert refused.json()["error"] == "CALLBACK_URL_NOT_ALLOWED"
    everything = await app_with("all")
    accepted = await everything.post("/api/tasks", json=task_body("a1", "http://10.0.0.1/h"))
    assert accepted.status_code == 201, accepted.text
    metadata = await everything.post(
        "/api/tasks", json=task_body("a2", "http://169.254.169.254/latest/")
    )
    assert metadata.json()["error"] == "CALLBACK_URL_NOT_ALLOWED"


# --- at connect -----------------------------------------------------------------------------


async def complete(api: httpx.AsyncClient, key: str, url: str) -> str:
    return await create_and_complete(api, task_body(key, url))


async def settled(api: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    async def row() -> dict[str, Any] | None:
        rows = (await api.get("/api/admin/deliveries", params={"task_id": task_id})).json()
        return rows[0] if rows and rows[0]["attempts"] >= 1 else None

    found: dict[str, Any] = await until(row, timeout=15)
    return found


async def test_a_name_that_resolves_to_loopback_is_refused_when_it_connects(
    app_with: Any,
) -> None:
    api = await app_with("none")
    with WebhookReceiver() as receiver:
        # Not an address literal, so create accepts it; the connect resolves and refuses.
        url = f"http://localhost:{receiver.port}/hook"
        row = await settled(api, await complete(api, "rebind", url))
        assert row["status"] == "failed", row
        assert row["attempts"] == 1
        assert "loopback" in row["last_error"], row
        assert "refused" in row["last_error"]
        assert receiver.deliveries == []


async def test_the_same_name_is_delivered_when_loopback_is_allowed(app_with: Any) -> None:
    api = await app_with("loopback")
    with WebhookReceiver() as receiver:
        url = f"http://localhost:{receiver.port}/hook"
        task_id = await complete(api, "allowed", url)
        (delivery,) = await until(lambda: _deliveries(receiver), timeout=15)
        assert delivery.json()["data"]["task_id"] == task_id
        row = await settled(api, task_id)
        assert row["status"] in ("delivered", "pending"), row  # recorded after the reply


async def _deliveries(receiver: WebhookReceiver) -> list[Any]:
    return list(receiver.deliveries)


def self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A certificate for ``name`` (and its key), made by the openssl command."""
    cert, key = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    subprocess.run(
        [shutil.which("openssl") or "openssl", "req", "-x509", "-newkey", "ec",
         "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
         "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


class TlsReceiver:
    """HTTPS on 127.0.0.1 with the given certificate; counts the POSTs it accepts."""

    def __init__(self, cert: Path, key: str | Path) -> None:
        self.bodies: list[bytes] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.bodies.append(self.rfile.read(int(self.headers["content-length"])))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def test_tls_still_checks_the_name_while_connecting_to_the_checked_address(
    app_with: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The guard connects to the address it checked, not the name; the certificate must
    # still be verified against the name (localhost), and a wrong one still refused.
    good_cert, good_key = self_signed(tmp_path, "localhost")
    wrong_cert, wrong_key = self_signed(tmp_path, "elsewhere.test")
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(good_cert.read_bytes() + wrong_cert.read_bytes())
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))  # read when the app's client is built
    api = await app_with("loopback")
    good, wrong = TlsReceiver(good_cert, good_key), TlsReceiver(wrong_cert, wrong_key)
    try:
        ok = await settled(api, await complete(api, "tls-1", f"https://localhost:{good.port}/h"))
        bad = await settled(api, await complete(api, "tls-2", f"https://localhost:{wrong.port}/h"))
    finally:
        good.close()
        wrong.close()
    assert ok["status"] == "delivered", ok
    assert len(good.bodies) == 1
    assert bad["status"] == "pending", bad
    assert "Hostname mismatch" in bad["last_error"], bad
    assert wrong.bodies == []


class Redirector:
    """Answers every POST with a 307 to ``location``."""

    def __init__(self, location: str) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", "0")))
                self.send_response(307)
                self.send_header("Location", location)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def test_redirects_are_not_followed(app_with: Any) -> None:
    api = await app_with("loopback")
    with WebhookReceiver() as elsewhere:
        redirector = Redirector(elsewhere.url)
        try:
            row = await settled(api, await complete(api, "redirect", redirector.url))
        finally:
            redirector.close()
        assert row["last_status_code"] == 307, row
        assert row["status"] == "pending"  # retried later, never followed
        assert elsewhere.deliveries == []


# --- awaithumans dev ------------------------------------------------------------------------


def test_dev_lets_callbacks_reach_this_machine_only(tmp_path: Path) -> None:
    project, home = tmp_path / "project", tmp_path / "home"
    server = DevServer(project, home).start()
    try:
        with server.client() as api, WebhookReceiver() as receiver:
            payload_key = (project / ".awaithumans" / "payload.key").read_text().strip()
            key = webhook_secret(
                make_settings("sqlite://", payload_key=payload_key), KeyRing.from_text(payload_key)
            )
            created = api.post("/api/tasks", json=task_body("dev-1", receiver.url))
            assert created.status_code == 201, created.text
            task_id = created.json()["id"]
            api.post(f"/api/tasks/{task_id}/complete", json={"response": {"ok": True}})
            (delivery,) = receiver.wait_for(1)
            Webhook(key).verify(delivery.body, delivery.headers)
            private = api.post("/api/tasks", json=task_body("dev-2", "http://10.0.0.1/hook"))
            assert private.status_code == 400
            assert private.json()["error"] == "CALLBACK_URL_NOT_ALLOWED"
    finally:
        assert server.proc is not None
        stop_process(server.proc, signal.SIGTERM)
