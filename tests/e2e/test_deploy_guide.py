"""docs/deploy.md, run: every shell block the guide gives is run here as written, or named
with the reason it cannot run on this machine (no Docker daemon, no systemd) and the test
that covers its files instead.

The blocks run in a workspace shaped like the repository's root (``tests/support/
readme_runner.py``: a private HOME, no ``AWAITHUMANS_*`` from outside, ``.venv`` activated),
each under ``set -euo pipefail`` so a failing line fails the test. The only edits are the
ones a reader makes: their own database URL in place of the guide's placeholder (here the
test's PostgreSQL or SQLite file), and no ``sudo chown`` for HAProxy's image user (HAProxy
runs as this user here).

The Compose topology runs on real parts without Docker: the guide's secrets and certificate,
two ``awaithumans serve`` with the env file and compose.yaml's environment, and HAProxy with
deploy/haproxy.cfg, only its addresses moved to 127.0.0.1 (the proxy reaches the replicas
from 127.0.0.1, so that is the trusted proxy address here) and a stats socket added to watch
its health checks.
"""

from __future__ import annotations

import asyncio
import csv
import re
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pydantic import BaseModel

from awaithumans.core import Ask
from awaithumans.server.security import parse_payload_key
from awaithumans.testing import ServerProcess, free_port
from tests._waiting import until
from tests.support.deploy_files import DEPLOY, REPO
from tests.support.haproxy import HAPROXY
from tests.support.readme_runner import FENCE, Session, assert_printed, start_session

pytestmark = pytest.mark.e2e

DOC = REPO / "docs" / "deploy.md"
PLACEHOLDER_URL = "postgresql://awaithumans:PASSWORD@db.internal:5432/awaithumans"
PUBLIC_URL = "https://approvals.example.com"
START = 60.0


@dataclass(frozen=True)
class Block:
    lang: str
    body: str

    @property
    def first(self) -> str:
        return next(
            line.strip()
            for line in self.body.splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        )


def blocks(lang: str) -> list[Block]:
    text = DOC.read_text(encoding="utf-8")
    return [Block(found, body) for found, body in FENCE.findall(text) if found == lang]


#: Every shell block of the guide, in order: its first line, and who runs it.
GUIDE = [
    (r"umask 077", "test_one_process_on_postgres_backup_and_restore"),
    (r"set -a; \. \./awaithumans\.env; set \+a", "test_one_process_on_postgres_backup_and_restore"),
    (r"cd deploy", "test_compose_topology_behind_haproxy"),
    (r"openssl req -x509 .*", "test_compose_topology_behind_haproxy"),
    (r"docker compose up -d --build", "not here: no Docker daemon (test_deploy_files.py)"),
    (r"sudo useradd .*", "not here: needs root and systemd (test_deploy_files.py)"),
    (r"docker build -f deploy/Dockerfile -t awaithumans \.", "not here: test_deploy_image.py"),
    (r"set -a; \. \./awaithumans\.env; set \+a", "test_one_process_on_postgres_backup_and_restore"),
    (r"set -a; \. \./awaithumans\.env; set \+a", "test_one_process_on_postgres_backup_and_restore"),
    (r"set -a; \. \./awaithumans\.env; set \+a", "test_sqlite_backup_while_serving"),
]


def test_every_shell_block_of_the_guide_is_run_or_accounted_for() -> None:
    found = [b.first for b in blocks("bash")]
    assert len(found) == len(GUIDE), f"the guide's blocks changed: {found}"
    for first, (pattern, _who) in zip(found, GUIDE, strict=True):
        assert re.fullmatch(pattern, first), f"{first!r} is not /{pattern}/"


def _block(index: int) -> str:
    return blocks("bash")[index].body


def _run(session: Session, script: str, timeout: float = 60) -> str:
    terminal = session.run("set -euo pipefail\n" + script)
    code = terminal.finish(timeout)
    assert code == 0, f"exit {code}:\n{script}\n{terminal.output()}"
    return terminal.output()


def _env_file(path: Path) -> dict[str, str]:
    assert path.stat().st_mode & 0o777 == 0o600, oct(path.stat().st_mode)
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line)


class Doc(BaseModel):
    note: str


class Ok(BaseModel):
    ok: bool


def _ask(key: str) -> dict[str, Any]:
    body = Ask(
        task=f"Deploy {key}?",
        payload_schema=Doc,
        payload=Doc(note=key),
        response_schema=Ok,
        timeout_seconds=900,
        idempotency_key=key,
    ).request()
    return body.model_dump(mode="json", exclude_none=True)


def _configure(session: Session, database_url: str) -> dict[str, str]:
    """The guide's first block, the reader's own database URL in it."""
    script = _block(0)
    assert PLACEHOLDER_URL in script
    _run(session, script.replace(PLACEHOLDER_URL, database_url))
    env = _env_file(session.root / "awaithumans.env")
    assert set(env) == {
        "AWAITHUMANS_DATABASE_URL",
        "AWAITHUMANS_PAYLOAD_KEY",
        "AWAITHUMANS_ADMIN_API_TOKEN",
        "AWAITHUMANS_PUBLIC_URL",
    }
    assert len(parse_payload_key(env["AWAITHUMANS_PAYLOAD_KEY"])) == 32
    assert env["AWAITHUMANS_PUBLIC_URL"] == PUBLIC_URL
    return env


@contextmanager
def _serving(session: Session, port: int, *, promised: bool = True) -> Iterator[str]:
    """The guide's ``awaithumans serve`` block, left running; its base URL here."""
    server = session.run(_block(1))
    server.wait_for(r"^  \(one-shot setup link", START, session.why)
    if promised:  # the output the guide promises (on PostgreSQL), line by line
        assert_printed(blocks("")[0].body.splitlines(), server.lines, None, {})
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
    assert server.proc.returncode == 0, server.output()


async def test_one_process_on_postgres_backup_and_restore(
    postgres_url: str, tmp_path: Path
) -> None:
    port = free_port()
    with start_session(tmp_path, AWAITHUMANS_PORT=str(port)) as session:
        # The reader pastes their URL as their other tools know it: postgresql://...
        env = _configure(session, postgres_url.replace("postgresql+asyncpg://", "postgresql://"))
        headers = {"Authorization": f"Bearer {env['AWAITHUMANS_ADMIN_API_TOKEN']}"}
        with _serving(session, port) as base:
            async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as api:
                health = await api.get("/api/health")
                assert health.status_code == 200, health.text
                assert health.json()["database"] == "postgresql"
                ready = await api.get("/api/ready")
                assert ready.status_code == 200, ready.text
                assert ready.json()["status"] == "ready"
                kept = await api.post("/api/tasks", json=_ask("kept"))
                assert kept.status_code == 201, kept.text

                _run(session, _block(7))  # pg_dump while it serves
                assert (session.root / "awaithumans.dump").stat().st_size > 0

                later = await api.post("/api/tasks", json=_ask("after-the-dump"))
                assert later.status_code == 201, later.text

        _run(session, _block(8))  # pg_restore, the server stopped

        with _serving(session, port) as base:
            async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as api:
                back = await api.get(f"/api/tasks/{kept.json()['id']}")
                assert back.status_code == 200, back.text
                assert back.json()["payload"] == {"note": "kept"}
                gone = await api.get(f"/api/tasks/{later.json()['id']}")
                assert gone.status_code == 404, gone.text


async def test_sqlite_backup_while_serving(tmp_path: Path) -> None:
    port = free_port()
    database = tmp_path / "state" / "awaithumans.db"
    database.parent.mkdir(mode=0o700)
    with start_session(tmp_path, AWAITHUMANS_PORT=str(port)) as session:
        env = _configure(session, f"sqlite:///{database}")
        headers = {"Authorization": f"Bearer {env['AWAITHUMANS_ADMIN_API_TOKEN']}"}
        with _serving(session, port, promised=False) as base:
            async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as api:
                made = await api.post("/api/tasks", json=_ask("sqlite"))
                assert made.status_code == 201, made.text
                printed = _run(session, _block(9))
        assert re.search(r"✓ Backed up .* \(1 tasks, \d+ bytes\)\.", printed), printed
        [backup] = sorted(session.root.glob("awaithumans-*.db"))
        assert re.fullmatch(r"awaithumans-\d{8}-\d{6}\.db", backup.name)
        assert backup.stat().st_mode & 0o777 == 0o600


# --- Compose's topology: PostgreSQL, two replicas, HAProxy ---------------------------------


def _stats(sock: Path) -> dict[str, dict[str, str]]:
    """HAProxy's ``show stat`` for the replicas' backend: server -> its row."""
    with socket.socket(socket.AF_UNIX) as conn:
        conn.connect(str(sock))
        conn.sendall(b"show stat\n")
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    rows = csv.DictReader(data.decode().lstrip("# ").splitlines())
    return {
        r["svname"]: r
        for r in rows
        if r["pxname"] == "awaithumans" and r["svname"] not in ("BACKEND", "FRONTEND")
    }


def _haproxy_config(root: Path, ports: dict[str, int], replicas: dict[str, int]) -> str:
    cfg = (root / "deploy" / "haproxy.cfg").read_text()
    moves = {
        "bind :8080": f"bind 127.0.0.1:{ports['http']}",
        "bind :8443 ssl crt /usr/local/etc/haproxy/certs/awaithumans.pem": (
            f"bind 127.0.0.1:{ports['https']} ssl crt {root / 'deploy/certs/awaithumans.pem'}"
        ),
        # This machine allows 20,000 open files; HAProxy needs two per connection (the
        # compose file gives the proxy 65,536).
        "maxconn 20000": "maxconn 8000",
        "\nglobal\n": f"\nglobal\n    stats socket {root / 'haproxy.sock'} mode 600 level admin\n",
        **{f"{name}:3001": f"127.0.0.1:{port}" for name, port in replicas.items()},
    }
    for old, new in moves.items():
        assert cfg.count(old) == 1, old
        cfg = cfg.replace(old, new)
    return cfg


async def test_compose_topology_behind_haproxy(postgres_url: str, tmp_path: Path) -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    shared = compose["x-awaithumans"]
    with start_session(tmp_path) as session:
        root = session.root
        shutil.copytree(DEPLOY, root / "deploy")
        _run(session, _block(2))
        cert_block = _block(3)
        chown = "sudo chown 99:99 certs/awaithumans.pem"
        assert chown in cert_block
        # The reader's shell is still in deploy/, with the umask it set.
        _run(session, "cd deploy\numask 077\n" + cert_block.replace(chown, ""))
        deploy = root / "deploy"
        postgres = _env_file(deploy / "postgres.env")
        env = _env_file(deploy / "awaithumans.env")
        pem = deploy / "certs" / "awaithumans.pem"
        assert pem.stat().st_mode & 0o777 == 0o600
        # The database password is the same in both files.
        assert (
            env["AWAITHUMANS_DATABASE_URL"]
            == f"postgresql://awaithumans:{postgres['POSTGRES_PASSWORD']}@postgres:5432/awaithumans"
        )
        assert set(env) == {
            "AWAITHUMANS_DATABASE_URL",
            "AWAITHUMANS_PAYLOAD_KEY",
            "AWAITHUMANS_ADMIN_API_TOKEN",
            "AWAITHUMANS_PUBLIC_URL",
        }

        # Each replica: the env file, compose's environment, the image's CMD and defaults.
        replica_env = {
            **env,
            **shared["environment"],
            "AWAITHUMANS_ALLOW_PRIVATE_CALLBACKS": "none",
            "AWAITHUMANS_TRUSTED_PROXIES": "127.0.0.1",
        }
        replica_env.pop("AWAITHUMANS_DATABASE_URL")
        names = ["awaithumans-1", "awaithumans-2"]
        replicas = {
            name: ServerProcess(
                database_url=postgres_url,
                payload_key=env["AWAITHUMANS_PAYLOAD_KEY"],
                admin_token=env["AWAITHUMANS_ADMIN_API_TOKEN"],
                env=replica_env,
                workdir=tmp_path / name,
            )
            for name in names
        }
        for name in names:
            (tmp_path / name).mkdir()
        ports = {"http": free_port(), "https": free_port()}
        cfg = root / "haproxy.cfg"
        cfg.write_text(_haproxy_config(root, ports, {n: r.port for n, r in replicas.items()}))
        log = (root / "haproxy.log").open("wb")
        proxy = None
        try:
            for replica in replicas.values():
                replica.start()
            proxy = subprocess.Popen(
                [HAPROXY, "-db", "-f", str(cfg)], stdout=log, stderr=subprocess.STDOUT
            )
            await _through_the_proxy(root, ports, replicas, proxy)
        finally:
            if proxy is not None:
                proxy.terminate()
                proxy.wait(10)
            log.close()
            for replica in replicas.values():
                replica.close()


async def _through_the_proxy(
    root: Path,
    ports: dict[str, int],
    replicas: dict[str, ServerProcess],
    proxy: subprocess.Popen[bytes],
) -> None:
    sock = root / "haproxy.sock"

    def why() -> str:
        logs = "\n".join(f"--- {n} ---\n{r.logs()}" for n, r in replicas.items())
        return f"{(root / 'haproxy.log').read_text(errors='replace')}\n{logs}"

    async def both_ready() -> bool:
        assert proxy.poll() is None, why()
        if not sock.exists():
            return False
        rows = _stats(sock)
        # L7OK: the check got the 200 it expects from GET /api/ready.
        return all(
            rows[n]["status"] == "UP" and rows[n]["check_status"] == "L7OK" for n in replicas
        )

    await until(both_ready, timeout=START, why=why, interval=0.2)

    # TLS with the guide's certificate (its SAN names 127.0.0.1), from client addresses
    # other than the proxy's: 127.0.0.2 and 127.0.0.3.
    trust = ssl.create_default_context(cafile=str(root / "deploy" / "certs" / "awaithumans.pem"))
    https = f"https://127.0.0.1:{ports['https']}"

    def client(source: str, **kwargs: Any) -> httpx.AsyncClient:
        transport = httpx.AsyncHTTPTransport(local_address=source, verify=trust)
        return httpx.AsyncClient(base_url=https, transport=transport, timeout=40, **kwargs)

    async with httpx.AsyncClient(timeout=10) as plain:
        moved = await plain.get(f"http://127.0.0.1:{ports['http']}/api/health")
        assert moved.status_code == 301
        assert moved.headers["location"].startswith("https://")

    async with client("127.0.0.2") as first:
        for _ in range(20):
            answer = await first.get("/api/health")
            assert answer.status_code == 200, answer.text
        assert answer.headers["strict-transport-security"].startswith("max-age=")
        # Requests went to both replicas.
        assert all(int(row["stot"]) > 0 for row in _stats(sock).values()), _stats(sock)

        # The client is the address HAProxy saw (127.0.0.2), not the proxy, and not what the
        # client wrote in X-Forwarded-For: spoofed addresses change nothing.
        wrong = {"email": "op@example.com", "display_name": "Op", "password": "x" * 12}
        refused = None
        for n in range(2 * 20 + 1):  # the setup limit, 20/600 s, counted per replica
            tried = await first.post(
                "/api/setup/operator",
                json={**wrong, "token": "not-the-token"},
                headers={"X-Forwarded-For": f"203.0.113.{n}"},
            )
            if tried.status_code == 429:
                refused = n
                break
            assert tried.status_code in (400, 401, 403), tried.text
        assert refused is not None, "spoofed X-Forwarded-For escaped the limit"
    async with client("127.0.0.3") as other:
        own = await other.post("/api/setup/operator", json={**wrong, "token": "not-it"})
        assert own.status_code != 429, "another client shares the proxy's bucket"

        # The first operator, through the proxy, with the link both replicas printed.
        tokens = {r.setup_token for r in replicas.values()}
        assert len(tokens) == 1, tokens
        [token] = tokens
        assert token is not None
        made = await other.post(
            "/api/setup/operator",
            json={"token": token, "email": "op@example.com", "display_name": "Op",
                  "password": "correct horse battery"},
        )  # fmt: skip
        assert made.status_code == 201, made.text
        signed = await other.post(
            "/api/auth/login",
            json={"email": "op@example.com", "password": "correct horse battery"},
        )
        assert signed.status_code == 200, signed.text
        [cookie] = [
            c.lower().split("; ")
            for c in signed.headers.get_list("set-cookie")
            if c.startswith("ah_session=")
        ]
        # AWAITHUMANS_PUBLIC_URL is https: the session cookie is Secure.
        assert "secure" in cookie
        assert "httponly" in cookie

    # An agent's long-poll through the proxy returns when the answer lands.
    token = replicas["awaithumans-1"].admin_token
    async with client("127.0.0.2", headers={"Authorization": f"Bearer {token}"}) as agent:
        made = await agent.post("/api/tasks", json=_ask("through-the-proxy"))
        assert made.status_code == 201, made.text
        task = made.json()["id"]
        waiting = asyncio.ensure_future(
            agent.get(f"/api/tasks/{task}/poll", params={"timeout": 25})
        )

        async def parked() -> bool:
            polls = 0
            for replica in replicas.values():
                async with httpx.AsyncClient(base_url=replica.url, timeout=10) as direct:
                    polls += (await direct.get("/api/health")).json()["waiting_polls"]
            return polls == 1

        await until(parked, timeout=10, why=why)
        done = await agent.post(f"/api/tasks/{task}/complete", json={"response": {"ok": True}})
        assert done.status_code == 200, done.text
        polled = await asyncio.wait_for(waiting, 10)
        assert polled.json()["status"] == "completed"
        assert polled.json()["response"] == {"ok": True}

        # A replica stops: requests keep being answered by the other, and HAProxy's check
        # takes it out.
        replicas["awaithumans-1"].stop()
        for _ in range(10):
            answer = await agent.get("/api/health")
            assert answer.status_code == 200, answer.text

        async def out() -> bool:
            return _stats(sock)["awaithumans-1"]["status"].startswith("DOWN")

        await until(out, timeout=20, why=why, interval=0.2)
        assert _stats(sock)["awaithumans-2"]["status"] == "UP"
