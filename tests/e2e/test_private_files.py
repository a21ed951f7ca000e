"""Everything the server writes is private: 0600 files in 0700 folders, from the first byte.

Real processes (``awaithumans dev`` and ``awaithumans serve``), real SQLite in WAL mode, the
``file`` email transport writing real mail; after tasks are created, every file is stat-ed.
"""

from __future__ import annotations

import os
import secrets
import signal
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from awaithumans.testing import ServerProcess
from tests.e2e.test_cli import (
    DISCOVERY_NAME,
    DevFactory,
    DevServer,
    free_port,
    mode,
    run_cli,
    stop_process,
    task_body,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The common 022, under which SQLite made dev.db 0644: the servers started here
    inherit it, so being private cannot come from a strict umask."""
    before = os.umask(0o022)
    yield
    os.umask(before)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "project").mkdir()
    return tmp_path / "project"


@pytest.fixture
def dev(project: Path, home: Path) -> Iterator[DevFactory]:
    """``awaithumans dev`` in ``project`` (as in test_cli), killed after the test."""
    started: list[DevServer] = []

    def start(*args: str, env: dict[str, str] | None = None) -> DevServer:
        started.append(DevServer(project, home, *args, env=env))
        return started[-1].start()

    yield start
    for server in started:
        if server.proc is not None:
            stop_process(server.proc, signal.SIGKILL)


def wait_for(check: Callable[[], object], timeout: float = 30.0, why: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {why}")
        time.sleep(0.05)


def modes_under(folder: Path) -> dict[str, int]:
    """Every file and folder below ``folder`` (itself included), by relative path."""
    found = {".": mode(folder)}
    for path in folder.rglob("*"):
        found[str(path.relative_to(folder))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def loose(modes: dict[str, int], folder: Path) -> dict[str, str]:
    wrong = {}
    for name, bits in modes.items():
        wanted = 0o700 if (folder / name).is_dir() else 0o600
        if bits != wanted:
            wrong[name] = oct(bits)
    return wrong


def test_dev_server_writes_every_file_private(dev: DevFactory, project: Path, home: Path) -> None:
    server = dev(
        env={
            "AWAITHUMANS_EMAIL_TRANSPORT": "file",
            "AWAITHUMANS_EMAIL_FROM": "approvals@acme.test",
            "AWAITHUMANS_PORT": str(free_port()),
        }
    )
    dev_dir = project / ".awaithumans"
    with server.client() as client:
        for n in range(3):
            body = task_body(f"private:{n}")
            body["notify"] = ["email:olga@acme.test"]
            made = client.post("/api/tasks", json=body)
            assert made.status_code == 201, made.text
        mail = dev_dir / "mail"
        wait_for(
            lambda: len(list(mail.glob("*.eml"))) == 3,
            why=f"three mails in {mail}; stderr: {server.stderr()}",
        )
        modes = modes_under(dev_dir)
    # While the server runs, SQLite's WAL files are there too: all of them private.
    for name in ("dev.db", "dev.db-wal", "dev.db-shm", "payload.key", "admin.token", "mail"):
        assert name in modes, sorted(modes)
    assert loose(modes, dev_dir) == {}, modes
    assert mode(server.discovery_path) == 0o600


def test_dev_makes_an_older_dev_folder_private_again(
    dev: DevFactory, project: Path, home: Path
) -> None:
    # What an older version left: the folder and dev.db as SQLite and mkdir made them.
    dev_dir = project / ".awaithumans"
    dev_dir.mkdir(mode=0o755)
    dev_dir.chmod(0o755)
    (dev_dir / "dev.db").touch()
    (dev_dir / "dev.db").chmod(0o644)
    server = dev()
    with server.client() as client:
        assert client.post("/api/tasks", json=task_body("older")).status_code == 201
        modes = modes_under(dev_dir)
    assert {"dev.db", "dev.db-wal", "dev.db-shm"} <= modes.keys()
    assert loose(modes, dev_dir) == {}, modes


def test_a_chosen_sqlite_path_is_private_and_its_folder_left_alone(
    tmp_path: Path, project: Path, home: Path
) -> None:
    chosen = tmp_path / "srv"
    chosen.mkdir()
    chosen.chmod(0o755)  # the user's folder, shared on purpose: not ours to change
    database = chosen / "made" / "by" / "us.db"
    url = f"sqlite:///{database}"
    with ServerProcess(database_url=url, workdir=project) as server:
        assert mode(server.log_path) == 0o600  # it carries the setup link
        with admin_client(server) as client:
            for n in range(3):
                made = client.post("/api/tasks", json=task_body(f"chosen:{n}"))
                assert made.status_code == 201, made.text
        files = {p.name: mode(p) for p in database.parent.iterdir()}
        assert files == {"us.db": 0o600, "us.db-wal": 0o600, "us.db-shm": 0o600}
    assert mode(chosen / "made") == 0o700
    assert mode(chosen / "made" / "by") == 0o700
    assert mode(chosen) == 0o755

    env = {"AWAITHUMANS_DATABASE_URL": url, "AWAITHUMANS_PAYLOAD_KEY": secrets.token_hex(32)}
    report = run_cli("doctor", cwd=project, home=home, env=env)
    assert "readable by other users" not in report.stdout, report.stdout
    assert f"Other users can open {chosen}" not in report.stdout
    # A database in the user's shared folder, made 0644 by hand: doctor says so, and the
    # server (which never chmods a file it did not create) leaves it as it is.
    shared = chosen / "shared.db"
    shared.touch()
    shared.chmod(0o644)
    env["AWAITHUMANS_DATABASE_URL"] = f"sqlite:///{shared}"
    report = run_cli("doctor", cwd=project, home=home, env=env)
    assert f"✗ {shared} is readable by other users." in report.stdout, report.stdout
    assert f"fix: chmod 600 {shared}" in report.stdout
    assert f"· Other users can open {chosen} (the database's folder)" in report.stdout
    assert mode(shared) == 0o644
    assert mode(chosen) == 0o755


def admin_client(server: ServerProcess) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {server.admin_token}"}, timeout=10
    )


def test_the_discovery_file_replaces_a_loose_one(dev: DevFactory, home: Path) -> None:
    # A file left 0644 by hand (or an older version): rewritten private, never written
    # into while still readable by others.
    stale = home / DISCOVERY_NAME
    stale.write_text("{}")
    stale.chmod(0o644)
    server = dev()
    assert mode(server.discovery_path) == 0o600
    assert server.admin_token() in server.discovery_path.read_text()
