"""``awaithumans db backup`` while the server runs, and ``db restore`` of that backup."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from awaithumans.server.security import generate_payload_key
from awaithumans.testing import ServerProcess

pytestmark = pytest.mark.e2e

CLI = str(Path(sys.executable).parent / "awaithumans")


def db_command(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": str(Path(sys.executable).parent),
        "AWAITHUMANS_DATABASE_URL": database_url,
        "AWAITHUMANS_PAYLOAD_KEY": generate_payload_key(),
    }
    return subprocess.run(
        [CLI, "db", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def create(api: httpx.Client, n: int) -> str:
    made = api.post(
        "/api/tasks",
        json={
            "task": f"Backup {n}?",
            "payload": {"n": n},
            "payload_schema": {"type": "object"},
            "response_schema": {"type": "object"},
            "timeout_seconds": 3600,
            "idempotency_key": f"backup-{n}",
        },
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def test_a_backup_taken_while_serving_restores(tmp_path: Path) -> None:
    db = tmp_path / "server.db"
    url = f"sqlite+aiosqlite:///{db}"
    copy = tmp_path / "backups" / "monday.db"
    copy.parent.mkdir()
    key = generate_payload_key()
    with ServerProcess(workdir=tmp_path, database_url=url, payload_key=key) as server:
        token = server.admin_token
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        ) as api:
            before = [create(api, n) for n in range(5)]
            made = db_command(url, "backup", str(copy))
            assert made.returncode == 0, made.stdout + made.stderr
            assert made.stdout.startswith(f"✓ Backed up {db} to {copy} (5 tasks, ")
            assert stat.S_IMODE(copy.stat().st_mode) == 0o600
            after = create(api, 99)
            again = db_command(url, "backup", str(copy))
            assert again.returncode == 2
            assert "exists; name a new file" in again.stderr

    garbage = tmp_path / "not-a-backup.db"
    garbage.write_bytes(b"this is not sqlite" * 100)
    refused = db_command(url, "restore", str(garbage))
    assert refused.returncode == 2
    assert "cannot be restored: it is not a SQLite database" in refused.stderr

    restored = db_command(url, "restore", str(copy))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert f"✓ Restored {db} from {copy} (5 tasks)." in restored.stdout

    with (
        ServerProcess(
            workdir=tmp_path, database_url=url, payload_key=key, admin_token=token
        ) as server,
        httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        ) as api,
    ):
        for n, task_id in enumerate(before):
            got = api.get(f"/api/tasks/{task_id}")
            assert got.status_code == 200, got.text
            assert got.json()["payload"] == {"n": n}
        assert api.get(f"/api/tasks/{after}").status_code == 404


def test_postgresql_points_at_its_own_tools(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://awaithumans@127.0.0.1:1/awaithumans"
    for command in ("backup", "restore"):
        result = db_command(url, command, str(tmp_path / "x.dump"))
        assert result.returncode == 2
        assert "pg_dump --format=custom" in result.stderr
        assert "pg_restore" in result.stderr
    assert list(tmp_path.iterdir()) == []
