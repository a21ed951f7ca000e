"""The ``awaithumans`` console script as a user runs it: real processes, real files, real ports.

Every ``awaithumans dev`` runs in a temporary project directory with ``HOME`` pointing at a
temporary home, so ``~/.awaithumans-dev.json`` lands there and never in the real home.
"""

from __future__ import annotations

import importlib.metadata
import ipaddress
import json
import os
import queue
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from pydantic import BaseModel

from awaithumans.core import Ask

pytestmark = pytest.mark.e2e

# The console script installed next to the interpreter running the tests (the project venv).
CLI = str(Path(sys.executable).parent / "awaithumans")
DISCOVERY_NAME = ".awaithumans-dev.json"
TOKEN = r"[A-Za-z0-9_-]{20,}"
STARTUP_SECONDS = 30.0


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The test runner's environment without any AWAITHUMANS_* setting, and a private HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWAITHUMANS_")}
    env["HOME"] = str(home)
    env.update(extra)
    return env


def default_sigint() -> None:
    # A shell without job control starts background commands with SIGINT ignored and children
    # inherit that; Python then never raises KeyboardInterrupt. The tests send SIGINT on
    # purpose, so every child starts with the default disposition, as under a terminal.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Lines:
    """A text stream read line by line on a helper thread, waited on with deadlines."""

    def __init__(self, stream: IO[str]) -> None:
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._closed = False
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def next(self, deadline: float) -> str:
        if self._closed:
            raise AssertionError(f"stream closed; lines so far: {self.seen}")
        remaining = deadline - time.monotonic()
        try:
            line = self._queue.get(timeout=max(0.0, remaining))
        except queue.Empty:
            raise AssertionError(f"no further line in time; lines so far: {self.seen}") from None
        if line is None:
            self._closed = True
            raise AssertionError(f"stream closed; lines so far: {self.seen}")
        self.seen.append(line)
        return line

    def wait_for(self, predicate: Callable[[str], bool], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            line = self.next(deadline)
            if predicate(line):
                return line

    def rest(self, timeout: float) -> list[str]:
        """Every line until the stream closes (the process exited)."""
        deadline = time.monotonic() + timeout
        start = len(self.seen)
        while not self._closed:
            try:
                self.next(deadline)
            except AssertionError:
                if not self._closed:
                    raise
        return self.seen[start:]


def stop_process(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> int:
    """Send ``sig`` and wait; SIGKILL if it does not end in time. Returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    return proc.returncode


class DevServer:
    """One ``awaithumans dev`` process in ``workdir`` with ``HOME=home``.

    ``env`` adds to a clean environment; None means "start looking for a port at a random
    free one" (``AWAITHUMANS_PORT``).
    """

    def __init__(
        self, workdir: Path, home: Path, *args: str, env: dict[str, str] | None = None
    ) -> None:
        self.workdir = workdir
        self.home = home
        self.args = args
        if env is None:
            # A random start port keeps parallel runs (and a real dev server on 3001) apart;
            # pass ``env={}`` to get the documented default.
            env = {"AWAITHUMANS_PORT": str(free_port())}
        self.env = clean_env(home, **env)
        self.log_path = workdir.parent / f"dev-{workdir.name}-{time.monotonic_ns()}.stderr"
        self.proc: subprocess.Popen[str] | None = None
        self.banner: list[str] = []
        self.port = 0
        self.setup_token: str | None = None

    def start(self) -> DevServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("w") as log:
            self.proc = subprocess.Popen(
                [CLI, "dev", *self.args],
                cwd=self.workdir,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                encoding="utf-8",
                preexec_fn=default_sigint,
            )
        assert self.proc.stdout is not None
        self.out = Lines(self.proc.stdout)
        deadline = time.monotonic() + STARTUP_SECONDS
        try:
            while True:
                line = self.out.next(deadline)
                self.banner.append(line)
                if line.startswith(("  (one-shot", "✓ Open the dashboard at: ")):
                    break
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- stderr ---\n{self.stderr()}") from None
        found = re.fullmatch(r"✓ Server running at http://localhost:(\d+)", self.banner[0])
        assert found, self.banner
        self.port = int(found[1])
        for line in self.banner:
            if "/setup?token=" in line:
                self.setup_token = line.split("/setup?token=", 1)[1]
        return self

    @property
    def url(self) -> str:
        """Where the tests talk to it (the banner says localhost; this skips a DNS lookup)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def discovery_path(self) -> Path:
        return self.home / DISCOVERY_NAME

    def admin_token(self) -> str:
        return (self.workdir / ".awaithumans" / "admin.token").read_text().strip()

    def client(self, token: str | None = None) -> httpx.Client:
        token = token or self.admin_token()
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )

    def stderr(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        return stop_process(self.proc, sig)


DevFactory = Callable[..., DevServer]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = tmp_path / "project"
    path.mkdir()
    return path


@pytest.fixture
def dev(project: Path, home: Path) -> Iterator[DevFactory]:
    """Start ``awaithumans dev`` processes (in ``project`` by default); all are stopped after."""
    started: list[DevServer] = []

    def start(
        *args: str, workdir: Path | None = None, env: dict[str, str] | None = None
    ) -> DevServer:
        server = DevServer(workdir or project, home, *args, env=env)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        if server.proc is not None:
            stop_process(server.proc, signal.SIGKILL)


def run_cli(
    *args: str, cwd: Path, home: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args],
        cwd=cwd,
        env=clean_env(home, **(env or {})),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def free_port_pair() -> int:
    """A port P with P and P+1 both free on 127.0.0.1 right now."""
    for _ in range(50):
        port = free_port()
        if port >= 65535:
            continue
        with socket.socket() as nxt:
            try:
                nxt.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise AssertionError("no two adjacent free ports")


def occupy(port: int) -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a TCP socket in LISTEN state on ``port``, from /proc/net/tcp{,6}."""
    found: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            rows = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            fields = row.split()
            address_hex, port_hex = fields[1].rsplit(":", 1)
            if fields[3] != "0A" or int(port_hex, 16) != port:  # 0A = TCP_LISTEN
                continue
            raw = bytes.fromhex(address_hex)
            # The kernel prints each 32-bit word in host (little-endian) byte order.
            ordered = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found.add(str(ipaddress.ip_address(ordered)))
    return found


class Refund(BaseModel):
    amount_usd: int
    customer_id: str
    reason: str


class Decision(BaseModel):
    approved: bool
    notes: str | None = None


def task_body(key: str) -> dict[str, Any]:
    return (
        Ask(
            task="Approve $250 refund?",
            payload_schema=Refund,
            payload=Refund(amount_usd=250, customer_id="cus_1", reason="Duplicate charge"),
            response_schema=Decision,
            timeout_seconds=900,
            idempotency_key=key,
        )
        .request()
        .model_dump(mode="json")
    )


# --- awaithumans dev ------------------------------------------------------------------------


def test_dev_banner_is_exactly_as_documented(dev: DevFactory) -> None:
    server = dev(env={})  # the default port: 3001, or the next free one
    assert 3001 <= server.port < 3051
    url = f"http://localhost:{server.port}"
    assert server.banner[:4] == [
        f"✓ Server running at {url}",
        "✓ Database: ./.awaithumans/dev.db",
        "✓ Open the dashboard at:",
        "",
    ]
    assert re.fullmatch(rf"    {re.escape(url)}/setup\?token={TOKEN}", server.banner[4])
    assert server.banner[5:] == ["", "  (one-shot setup link — paste it into your browser)"]
    assert httpx.get(f"{server.url}/api/health", timeout=5).status_code == 200


def test_setup_link_works_exactly_once(dev: DevFactory) -> None:
    server = dev()
    assert server.setup_token
    body = {
        "token": server.setup_token,
        "email": "ops@example.com",
        "display_name": "Ops",
        "password": "correct horse battery staple",
    }
    first = httpx.post(f"{server.url}/api/setup/operator", json=body, timeout=10)
    assert first.status_code == 201, first.text
    assert first.json()["is_operator"] is True
    again = httpx.post(
        f"{server.url}/api/setup/operator", json={**body, "email": "other@example.com"}, timeout=10
    )
    assert again.status_code == 403, again.text
    # The operator it made can sign in.
    login = httpx.post(
        f"{server.url}/api/auth/login",
        json={"email": "ops@example.com", "password": body["password"]},
        timeout=10,
    )
    assert login.status_code == 200, login.text


def test_dev_takes_the_next_port_when_the_first_is_taken(dev: DevFactory) -> None:
    port = free_port_pair()
    with occupy(port):
        server = dev(env={"AWAITHUMANS_PORT": str(port)})
        assert server.port == port + 1
        assert server.banner[0] == f"✓ Server running at http://localhost:{port + 1}"
        assert httpx.get(f"{server.url}/api/health", timeout=5).status_code == 200


def test_dev_with_an_explicit_taken_port_fails_clearly(project: Path, home: Path) -> None:
    port = free_port_pair()
    with occupy(port):
        result = run_cli("dev", "--port", str(port), cwd=project, home=home)
    assert result.returncode == 1, result
    assert f"Port {port}" in result.stderr
    assert "taken" in result.stderr
    assert "--port" in result.stderr
    assert "Traceback" not in result.stderr
    assert "Server running" not in result.stdout
    assert not (home / DISCOVERY_NAME).exists()


def test_dev_secrets_are_private_and_reused(dev: DevFactory, project: Path) -> None:
    first = dev()
    secrets_dir = project / ".awaithumans"
    files = [secrets_dir / "payload.key", secrets_dir / "admin.token"]
    assert mode(secrets_dir) == 0o700
    for path in files:
        assert mode(path) == 0o600, path
    before = [path.read_text() for path in files]
    assert all(text.strip() for text in before)
    with first.client() as client:
        created = client.post("/api/tasks", json=task_body("refund:reuse"))
        assert created.status_code == 201, created.text
    assert first.stop(signal.SIGINT) == 0

    second = dev()
    assert [path.read_text() for path in files] == before
    for path in files:
        assert mode(path) == 0o600, path
    # Same payload key and token: the old task is still readable with the old credential.
    with second.client() as client:
        page = client.get("/api/tasks")
        assert page.status_code == 200, page.text
        assert [item["idempotency_key"] for item in page.json()["items"]] == ["refund:reuse"]
        task_id = page.json()["items"][0]["id"]
        one = client.get(f"/api/tasks/{task_id}")
        assert one.status_code == 200, one.text
        assert one.json()["payload"]["customer_id"] == "cus_1"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_discovery_file_written_private_and_removed_on_exit(
    dev: DevFactory, project: Path, home: Path, sig: signal.Signals
) -> None:
    server = dev()
    path = home / DISCOVERY_NAME
    assert server.discovery_path == path
    assert mode(path) == 0o600
    record = json.loads(path.read_text())
    assert set(record) == {"url", "host", "port", "pid", "started_at", "dev_dir", "admin_token"}
    assert server.proc is not None
    assert record["pid"] == server.proc.pid
    assert record["url"] == f"http://localhost:{server.port}"
    assert record["host"] == "127.0.0.1"
    assert record["port"] == server.port
    assert record["admin_token"] == (project / ".awaithumans" / "admin.token").read_text().strip()
    assert abs(record["started_at"] - time.time()) < 120

    assert server.stop(sig) == 0, server.stderr()
    assert not path.exists()
    assert "Traceback" not in server.stderr()


def test_dev_restart_keeps_its_port(dev: DevFactory) -> None:
    # A connection still open when the server stops leaves the server's side of it lingering
    # (FIN-WAIT/TIME_WAIT); the port is bindable again at once and a restart must reuse it.
    port = free_port()
    first = dev(env={"AWAITHUMANS_PORT": str(port)})
    assert first.port == port
    with httpx.Client(base_url=first.url, timeout=5) as keep_alive:
        assert keep_alive.get("/api/health").status_code == 200
        assert first.stop(signal.SIGINT) == 0
        second = dev(env={"AWAITHUMANS_PORT": str(port)})
        assert second.port == port
        assert second.stop(signal.SIGINT) == 0
        third = dev("--port", str(port), env={})
        assert third.port == port


def test_dev_listens_on_loopback_only(dev: DevFactory) -> None:
    server = dev()
    assert listening_addresses(server.port) == {"127.0.0.1"}


def test_dev_host_flag_binds_where_told(dev: DevFactory, home: Path) -> None:
    server = dev("--host", "0.0.0.0")
    assert listening_addresses(server.port) == {"0.0.0.0"}
    assert json.loads((home / DISCOVERY_NAME).read_text())["host"] == "0.0.0.0"
    assert httpx.get(f"{server.url}/api/health", timeout=5).status_code == 200


def test_dev_host_flag_accepts_ipv6_any(dev: DevFactory) -> None:
    server = dev("--host", "::")
    assert server.banner[0] == f"✓ Server running at http://localhost:{server.port}"
    assert listening_addresses(server.port) == {"::"}


def test_dev_with_a_malformed_payload_key_fails_clearly(project: Path, home: Path) -> None:
    result = run_cli(
        "dev", cwd=project, home=home, env={"AWAITHUMANS_PAYLOAD_KEY": "not-a-real-key"}
    )
    assert result.returncode == 2, result
    assert result.stderr.startswith("awaithumans dev: invalid payload key:"), result.stderr
    assert "awaithumans gen-key" in result.stderr
    assert "not-a-real-key" not in result.stderr
    assert "Traceback" not in result.stderr
    assert not (home / DISCOVERY_NAME).exists()


# --- awaithumans serve ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({}, ["AWAITHUMANS_DATABASE_URL", "AWAITHUMANS_PAYLOAD_KEY"]),
        ({"AWAITHUMANS_PAYLOAD_KEY": "ab" * 32}, ["AWAITHUMANS_DATABASE_URL"]),
        ({"AWAITHUMANS_DATABASE_URL": "sqlite:///x.db"}, ["AWAITHUMANS_PAYLOAD_KEY"]),
    ],
    ids=["nothing", "no-database", "no-key"],
)
def test_serve_refuses_without_explicit_configuration(
    project: Path, home: Path, given: dict[str, str], missing: list[str]
) -> None:
    result = run_cli("serve", cwd=project, home=home, env=given)
    assert result.returncode == 2, result
    first = result.stderr.splitlines()[0]
    assert first.startswith("awaithumans serve needs an explicit configuration; missing:")
    for name in ("AWAITHUMANS_DATABASE_URL", "AWAITHUMANS_PAYLOAD_KEY"):
        assert (name in first) == (name in missing), first
    assert "awaithumans gen-key" in result.stderr
    assert "awaithumans dev" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert not (project / "x.db").exists()


def test_serve_refuses_a_malformed_payload_key(project: Path, home: Path) -> None:
    env = {"AWAITHUMANS_DATABASE_URL": "sqlite:///x.db", "AWAITHUMANS_PAYLOAD_KEY": "short"}
    result = run_cli("serve", "--port", str(free_port()), cwd=project, home=home, env=env)
    assert result.returncode == 2, result
    assert result.stderr.startswith("awaithumans serve: invalid payload key:"), result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_webhook_secret_without_a_payload_key_fails_clearly(project: Path, home: Path) -> None:
    env = {"AWAITHUMANS_DATABASE_URL": "sqlite:///x.db"}
    result = run_cli("webhook-secret", cwd=project, home=home, env=env)
    assert result.returncode == 2, result
    assert "AWAITHUMANS_PAYLOAD_KEY is not set" in result.stderr
    assert "Traceback" not in result.stderr
    good = run_cli(
        "webhook-secret",
        cwd=project,
        home=home,
        env={**env, "AWAITHUMANS_PAYLOAD_KEY": "ab" * 32},
    )
    assert good.returncode == 0, good
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]+=*\n", good.stdout), good.stdout


# --- awaithumans create-agent-key -----------------------------------------------------------


def make_agent_key(project: Path, home: Path, name: str) -> str:
    result = run_cli("create-agent-key", "--name", name, cwd=project, home=home)
    assert result.returncode == 0, result
    lines = result.stdout.splitlines()
    assert re.fullmatch(
        rf"✓ Agent key key_[0-9a-f]+ \({re.escape(name)}\) created\. It is shown only this once:",
        lines[0],
    ), lines
    key = lines[2].strip()
    assert lines[2] == f"    {key}", lines
    assert len(key) >= 20, lines
    assert "AWAITHUMANS_API_KEY" in result.stdout
    return key


def test_agent_key_creates_and_reads_only_its_own_tasks(
    dev: DevFactory, project: Path, home: Path
) -> None:
    server = dev()
    key = make_agent_key(project, home, "refund-bot")
    other_key = make_agent_key(project, home, "other-bot")
    assert key != other_key
    with server.client(key) as agent, server.client(other_key) as other, server.client() as admin:
        mine = agent.post("/api/tasks", json=task_body("refund:agent-1"))
        assert mine.status_code == 201, mine.text
        my_id = mine.json()["id"]
        theirs = other.post("/api/tasks", json=task_body("refund:other-1"))
        assert theirs.status_code == 201, theirs.text
        by_admin = admin.post("/api/tasks", json=task_body("refund:admin-1"))
        assert by_admin.status_code == 201, by_admin.text

        listed = agent.get("/api/tasks")
        assert listed.status_code == 200, listed.text
        assert [item["id"] for item in listed.json()["items"]] == [my_id]
        assert agent.get(f"/api/tasks/{my_id}").status_code == 200
        assert agent.get(f"/api/tasks/{theirs.json()['id']}").status_code == 404
        assert agent.get(f"/api/tasks/{by_admin.json()['id']}").status_code == 404

        answer = {"response": {"approved": True}}
        refused = agent.post(f"/api/tasks/{my_id}/complete", json=answer)
        assert refused.status_code == 403, refused.text
        # Still open, and the admin (a human credential) may answer it.
        assert agent.get(f"/api/tasks/{my_id}").json()["status"] != "completed"
        assert len(admin.get("/api/tasks").json()["items"]) == 3
        done = admin.post(f"/api/tasks/{my_id}/complete", json=answer)
        assert done.status_code == 200, done.text

    with httpx.Client(base_url=server.url, timeout=10) as anonymous:
        assert anonymous.get("/api/tasks").status_code == 401
        bad = anonymous.get("/api/tasks", headers={"Authorization": "Bearer ah_not_a_key"})
        assert bad.status_code == 401


# --- awaithumans doctor ---------------------------------------------------------------------


def test_doctor_passes_in_a_healthy_dev_dir(dev: DevFactory, project: Path, home: Path) -> None:
    server = dev()
    result = run_cli("doctor", cwd=project, home=home)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✗" not in result.stdout
    assert f"✓ A dev server is running at http://localhost:{server.port}" in result.stdout
    assert result.stdout.splitlines()[-1] == "All good."


def test_doctor_elsewhere_checks_the_running_dev_server(
    dev: DevFactory, tmp_path: Path, home: Path
) -> None:
    # Run from another folder (a second terminal's home folder, say), doctor follows the
    # discovery file to the dev server's own folder instead of reporting a missing key.
    server = dev()
    assert server.proc is not None
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_cli("doctor", cwd=elsewhere, home=home)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✗" not in result.stdout
    dev_dir = (tmp_path / "project" / ".awaithumans").resolve()
    assert f"· No .awaithumans here; checking the running dev server's folder {dev_dir}." in (
        result.stdout
    )
    assert f"✓ Payload key found ({dev_dir / 'payload.key'})." in result.stdout
    assert "✓ Database reachable (sqlite)." in result.stdout
    assert (
        f"✓ A dev server is running at http://localhost:{server.port} (pid {server.proc.pid})"
        " and answers." in result.stdout
    )
    assert list(elsewhere.iterdir()) == []  # a check changes nothing where it runs


def test_doctor_flags_a_malformed_payload_key(dev: DevFactory, project: Path, home: Path) -> None:
    dev()
    result = run_cli(
        "doctor", cwd=project, home=home, env={"AWAITHUMANS_PAYLOAD_KEY": "not-a-real-key"}
    )
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    bad = [i for i, line in enumerate(lines) if line.startswith("✗ ")]
    assert bad, lines
    assert "AWAITHUMANS_PAYLOAD_KEY" in lines[bad[0]]
    assert "malformed" in lines[bad[0]]
    assert "not-a-real-key" not in result.stdout  # a secret is never echoed
    assert lines[bad[0] + 1].strip().startswith("fix:")
    assert "awaithumans gen-key" in lines[bad[0] + 1]
    assert "Traceback" not in result.stderr


def test_doctor_without_any_configuration_says_what_to_do(project: Path, home: Path) -> None:
    result = run_cli("doctor", cwd=project, home=home)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "✗ No payload key" in result.stdout
    assert "fix:" in result.stdout
    assert "Traceback" not in result.stderr
    # A check changes nothing: no database file, no .awaithumans folder.
    assert list(project.iterdir()) == []


# --- awaithumans version --------------------------------------------------------------------


def test_version(project: Path, home: Path) -> None:
    result = run_cli("version", cwd=project, home=home)
    assert result.returncode == 0, result
    assert result.stdout == f"awaithumans {importlib.metadata.version('awaithumans')}\n"


def test_doctor_checks_the_channel_settings(project: Path, home: Path) -> None:
    env = {
        "AWAITHUMANS_PAYLOAD_KEY": "0" * 64,
        "AWAITHUMANS_EMAIL_TRANSPORT": "smtp",
        "AWAITHUMANS_EMAIL_FROM": "approvals@acme.com",
        "AWAITHUMANS_SLACK_BOT_TOKEN": "xoxb-test",
    }
    result = run_cli("doctor", cwd=project, home=home, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    problems = [line for line in result.stdout.splitlines() if line.startswith("✗ ")]
    assert problems == [
        "✗ AWAITHUMANS_SLACK_BOT_TOKEN is set but AWAITHUMANS_SLACK_SIGNING_SECRET is not.",
        "✗ The smtp email transport needs AWAITHUMANS_SMTP_HOST.",
    ]
    assert "xoxb-test" not in result.stdout


def test_doctor_says_where_mail_goes(project: Path, home: Path) -> None:
    base = {"AWAITHUMANS_PAYLOAD_KEY": "0" * 64}
    expected = {
        "logging": "✓ Email: printed on the server's terminal (nothing is sent).",
        "file": "✓ Email: written as .eml files to .awaithumans/mail/ (nothing is sent).",
    }
    for transport, line in expected.items():
        env = {**base, "AWAITHUMANS_EMAIL_TRANSPORT": transport}
        result = run_cli("doctor", cwd=project, home=home, env=env)
        assert line in result.stdout, result.stdout
        assert not [x for x in result.stdout.splitlines() if x.startswith("✗ ")], result.stdout
    smtp = {
        **base,
        "AWAITHUMANS_EMAIL_TRANSPORT": "smtp",
        "AWAITHUMANS_EMAIL_FROM": "approvals@acme.com",
        "AWAITHUMANS_SMTP_HOST": "smtp.acme.com",
        "AWAITHUMANS_SMTP_PASSWORD": "hunter22",
    }
    result = run_cli("doctor", cwd=project, home=home, env=smtp)
    assert (
        "✓ Email: SMTP through smtp.acme.com:587 (STARTTLS), from approvals@acme.com."
        in result.stdout
    )
    assert "hunter22" not in result.stdout
    nowhere = {**base, "AWAITHUMANS_EMAIL_TRANSPORT": "logging",
               "AWAITHUMANS_EMAIL_REPLY_DOMAIN": "reply.acme.com"}  # fmt: skip
    result = run_cli("doctor", cwd=project, home=home, env=nowhere)
    assert "✗ AWAITHUMANS_EMAIL_REPLY_DOMAIN is set, but replies have no way in." in result.stdout
    resend = {**base, "AWAITHUMANS_EMAIL_TRANSPORT": "resend"}
    result = run_cli("doctor", cwd=project, home=home, env=resend)
    problems = [line for line in result.stdout.splitlines() if line.startswith("✗ ")]
    assert problems == [
        "✗ AWAITHUMANS_EMAIL_TRANSPORT is set but AWAITHUMANS_EMAIL_FROM is not.",
        "✗ The resend email transport needs AWAITHUMANS_RESEND_API_KEY.",
    ]


def test_doctor_knows_socket_mode_and_swapped_slack_tokens(project: Path, home: Path) -> None:
    base = {"AWAITHUMANS_PAYLOAD_KEY": "0" * 64}
    # Socket Mode: Slack signs nothing over the websocket, so no signing secret is needed.
    socket = {
        **base,
        "AWAITHUMANS_SLACK_BOT_TOKEN": "xoxb-1-2-abc",
        "AWAITHUMANS_SLACK_APP_TOKEN": "xapp-1-A1-abc",
    }
    result = run_cli("doctor", cwd=project, home=home, env=socket)
    assert not [line for line in result.stdout.splitlines() if line.startswith("✗ ")], result
    assert (
        "✓ Slack: static token; Slack's clicks and replies arrive over Socket Mode."
        in result.stdout
    )
    swapped = {
        **base,
        "AWAITHUMANS_SLACK_BOT_TOKEN": "xapp-1-A1-abc",
        "AWAITHUMANS_SLACK_APP_TOKEN": "xoxb-1-2-abc",
    }
    result = run_cli("doctor", cwd=project, home=home, env=swapped)
    assert result.returncode == 1, result.stdout + result.stderr
    problems = [line for line in result.stdout.splitlines() if line.startswith("✗ ")]
    assert problems == [
        "✗ AWAITHUMANS_SLACK_BOT_TOKEN does not start with xoxb-.",
        "✗ AWAITHUMANS_SLACK_APP_TOKEN does not start with xapp-.",
    ]
    assert "xapp-1-A1-abc" not in result.stdout  # secrets are never echoed
    assert "xoxb-1-2-abc" not in result.stdout


def test_a_malformed_setting_is_one_clear_line(project: Path, home: Path) -> None:
    result = run_cli("serve", cwd=project, home=home, env={"AWAITHUMANS_PORT": "eighty"})
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "AWAITHUMANS_PORT='eighty' is not valid: Input should be a valid integer,"
        " unable to parse string as an integer."
    ]
