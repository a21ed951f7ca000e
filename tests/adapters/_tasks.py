"""Helpers the adapter tests share: reaching into a test server's own SQLite file."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from awaithumans.testing import ServerProcess


def expire_now(server: ServerProcess, task_id: str) -> None:
    """Move the task's deadline into the past (the API refuses timeouts under 60 s)."""
    past = (datetime.now(UTC) - timedelta(seconds=5)).replace(tzinfo=None)
    with sqlite3.connect(server.workdir / "server.db") as db:
        changed = db.execute(
            "UPDATE tasks SET timeout_at = ? WHERE id = ?",
            (past.strftime("%Y-%m-%d %H:%M:%S.%f"), task_id),
        ).rowcount
    assert changed == 1
