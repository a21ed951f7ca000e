"""``awaithumans audit export`` and ``audit verify`` against a real server's database.

Tasks are created and moved through a running server (SQLite and PostgreSQL); the export
has every row with its chain hash, in JSON lines and CSV; ``verify`` passes, then names the
task and row after a row is edited with SQL, after a row in the middle is deleted, and after
a task's newest row is deleted; an edited export fails ``verify --input`` the same way.
"""

from __future__ import annotations

import asyncio
import csv
import json
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from awaithumans.server.cli.main import run
from awaithumans.server.security.receipts import chain_hash
from awaithumans.testing import ServerProcess

pytestmark = pytest.mark.e2e

CLI = str(Path(sys.executable).parent / "awaithumans")
SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}


def audit(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed command, in its own process."""
    return subprocess.run(
        [CLI, "audit", *args],
        env={"PATH": str(Path(sys.executable).parent), **settings_env(server)},
        cwd=server.workdir,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )


def settings_env(server: ServerProcess) -> dict[str, str]:
    return {
        "AWAITHUMANS_DATABASE_URL": server.database_url,
        "AWAITHUMANS_PAYLOAD_KEY": server.payload_key,
    }


class InProcess:
    """The same command through the CLI's ``run`` in this process: a process start costs
    about 1.5 s of imports, and this test runs the command a dozen times."""

    def __init__(self, server: ServerProcess, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
        for name, value in settings_env(server).items():
            monkeypatch.setenv(name, value)
        self.capsys = capsys

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        self.capsys.readouterr()
        code = run(["audit", *args])
        out, err = self.capsys.readouterr()
        return subprocess.CompletedProcess(["audit", *args], code, out, err)


def create(api: httpx.Client, n: int) -> str:
    made = api.post(
        "/api/tasks",
        json={
            "task": f"Audit {n}?",
            "payload": {"n": n, "note": "ünïcode ✓"},
            "payload_schema": {"type": "object"},
            "response_schema": SCHEMA,
            "timeout_seconds": 3600,
            "idempotency_key": f"audit-{n}",
        },
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def sql(database_url: str, statement: str, **params: Any) -> None:
    """Change the database behind the server's back, as someone with database access could."""

    async def change() -> None:
        engine = create_async_engine(database_url)
        try:
            async with engine.begin() as conn:
                await conn.execute(text(statement), params)
        finally:
            await engine.dispose()

    asyncio.run(change())


def lines(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert result.returncode == 0, result.stdout + result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def assert_chains(rows: list[dict[str, Any]]) -> None:
    last: dict[str, str | None] = {}
    for row in rows:
        assert row["chain_hash"] == chain_hash(last.get(row["task_id"]), row), row
        last[row["task_id"]] = row["chain_hash"]


def test_export_has_the_chain_and_verify_finds_each_break(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    server = ServerProcess(database_url=database_url, workdir=tmp_path)
    cli = InProcess(server, monkeypatch, capsys)
    with (
        server,
        httpx.Client(
            base_url=server.url,
            headers={"Authorization": f"Bearer {server.admin_token}"},
            timeout=10,
        ) as api,
    ):
        answered, cancelled, untouched = (create(api, n) for n in range(3))
        assert api.post(f"/api/tasks/{answered}/claim").status_code == 200
        done = api.post(f"/api/tasks/{answered}/complete", json={"response": {"ok": True}})
        assert done.status_code == 200, done.text
        assert api.post(f"/api/tasks/{cancelled}/claim").status_code == 200
        gone = api.post(f"/api/tasks/{cancelled}/cancel", json={"reason": "dup ✓"})
        assert gone.status_code == 200, gone.text

        # -- the export, while the server runs
        rows = lines(audit(server, "export", "--format", "jsonl"))
        assert [(r["task_id"], r["action"]) for r in rows] == sorted(
            [
                (answered, "created"),
                (answered, "claimed"),
                (answered, "completed"),
                (cancelled, "created"),
                (cancelled, "claimed"),
                (cancelled, "cancelled"),
                (untouched, "created"),
            ],
            key=lambda pair: pair[0],  # by task, each task's rows in order
        )
        assert_chains(rows)
        assert {r["detail"]["reason"] for r in rows if r["action"] == "cancelled"} == {"dup ✓"}
        assert all(r["at"].endswith("Z") for r in rows)
        one = lines(cli("export", "--task", answered))
        assert one == [r for r in rows if r["task_id"] == answered]

        out = tmp_path / "exports" / "audit.csv"
        out.parent.mkdir()
        made = cli("export", "--format", "csv", "--output", str(out))
        assert made.returncode == 0, made.stderr
        assert f"Exported 7 audit rows to {out} (csv)" in made.stderr
        assert stat.S_IMODE(out.stat().st_mode) == 0o600
        with out.open(encoding="utf-8", newline="") as f:
            table = list(csv.DictReader(f))
        assert [r["chain_hash"] for r in table] == [r["chain_hash"] for r in rows]
        assert [int(r["id"]) for r in table] == [r["id"] for r in rows]
        again = cli("export", "--format", "csv", "--output", str(out))
        assert again.returncode == 2
        assert "exists; name a new file" in again.stderr

        jsonl = tmp_path / "exports" / "audit.jsonl"
        jsonl.write_text(cli("export").stdout, encoding="utf-8")

        # -- verify: intact
        intact = cli("verify")
        assert intact.returncode == 0, intact.stdout + intact.stderr
        assert "✓ Audit chain intact in the database: 7 rows of 3 tasks." in intact.stdout
        from_file = cli("verify", "--input", str(jsonl))
        assert from_file.returncode == 0, from_file.stderr
        assert "7 rows of 3 tasks" in from_file.stdout

    by_action = {(r["task_id"], r["action"]): r["id"] for r in rows}
    # -- an edited row: who answered, rewritten
    completed_row = by_action[(answered, "completed")]
    sql(
        database_url,
        "UPDATE task_audit SET actor_label = 'mallory@acme.test' WHERE id = :id",
        id=completed_row,
    )
    edited = audit(server, "verify")
    assert edited.returncode == 1, edited.stdout
    assert "✗ Audit chain broken in 1 of 3 tasks in the database:" in edited.stderr
    assert f"task {answered}, row {completed_row}: its content does not match its hash" in (
        edited.stderr
    )
    # Put back exactly as it was, the chain holds again: the hash is over the content.
    sql(
        database_url,
        "UPDATE task_audit SET actor_label = 'admin token' WHERE id = :id",
        id=completed_row,
    )
    assert cli("verify").returncode == 0
    only = cli("verify", "--task", untouched)
    assert only.returncode == 0
    assert "1 rows of 1 tasks" in only.stdout

    # -- a row deleted from the middle: the row after it no longer follows
    sql(
        database_url,
        "DELETE FROM task_audit WHERE id = :id",
        id=by_action[(cancelled, "claimed")],
    )
    middle = cli("verify")
    assert middle.returncode == 1
    assert f"task {cancelled}, row {by_action[(cancelled, 'cancelled')]}:" in middle.stderr

    # -- the newest row deleted: the task's head names a row that is gone
    sql(database_url, "DELETE FROM task_audit WHERE id = :id", id=completed_row)
    newest = cli("verify", "--task", answered)
    assert newest.returncode == 1
    assert f"task {answered}, its newest row: the task's newest hash is not its last" in (
        newest.stderr
    )

    # -- every row of a task deleted
    sql(database_url, "DELETE FROM task_audit WHERE task_id = :id", id=untouched)
    empty = cli("verify")
    assert empty.returncode == 1
    assert "✗ Audit chain broken in 3 of 3 tasks" in empty.stderr
    assert f"task {untouched}, its newest row: the task has a chain head but no audit rows" in (
        empty.stderr
    )

    # -- an edited export
    exported = jsonl.read_text(encoding="utf-8").splitlines()
    row = json.loads(exported[0])
    row["detail"] = {"forged": True}
    jsonl.write_text("\n".join([json.dumps(row), *exported[1:]]) + "\n", encoding="utf-8")
    forged = audit(server, "verify", "--input", str(jsonl))
    assert forged.returncode == 1
    assert f"task {row['task_id']}, row {row['id']}: its content does not match" in forged.stderr


def test_audit_commands_say_what_is_wrong(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    missing = ServerProcess(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'none.db'}", workdir=tmp_path
    )
    result = audit(missing, "verify")
    assert result.returncode == 2
    assert f"there is no database at {tmp_path / 'none.db'}" in result.stderr
    assert not (tmp_path / "none.db").exists()
    cli = InProcess(missing, monkeypatch, capsys)
    unreadable = cli("verify", "--input", str(tmp_path / "absent.jsonl"))
    assert unreadable.returncode == 2
    assert "cannot read" in unreadable.stderr
    # A SQLite file that is not the server's: a clear line, no traceback.
    other = tmp_path / "other.db"
    other.write_bytes(b"")
    cli = InProcess(
        ServerProcess(database_url=f"sqlite+aiosqlite:///{other}", workdir=tmp_path),
        monkeypatch,
        capsys,
    )
    refused = cli("export")
    assert refused.returncode == 2
    assert "cannot read the audit trail" in refused.stderr
