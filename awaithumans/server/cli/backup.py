"""``awaithumans db backup PATH`` and ``db restore PATH``: a SQLite database, copied safely.

The backup uses SQLite's online backup API, which copies a consistent snapshot page by page
while the server keeps writing (a plain ``cp`` of a WAL database can copy a torn state).
The copy holds what the database holds (sealed payloads, but also hashed agent keys and
session ids), so it is created 0600. PostgreSQL has its own tools, which do this better than
we could: the commands say which to use instead of half-doing it.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

from awaithumans.server.security.private_files import create_private_file
from awaithumans.server.settings import Settings

PG_BACKUP = (
    "PostgreSQL: back up with pg_dump, e.g. `pg_dump --format=custom --file=awaithumans.dump"
    ' "$DATABASE"`, restore with `pg_restore --clean --if-exists --dbname="$DATABASE"'
    " awaithumans.dump` (the server stopped); see docs for point-in-time recovery."
)


def _database(settings: Settings, command: str) -> Path | None:
    path = settings.sqlite_path()
    if path is None:
        print(f"awaithumans db {command}: {PG_BACKUP}", file=sys.stderr)
    return path


def _looks_like_ours(path: Path) -> str | None:
    """Why ``path`` is not an awaithumans SQLite database, or None if it is one."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            if conn.execute("PRAGMA quick_check").fetchone() != ("ok",):
                return "it fails SQLite's integrity check"
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    except sqlite3.DatabaseError as exc:
        return f"it is not a SQLite database ({exc})"
    if not {"alembic_version", "tasks"} <= tables:
        return "it has no awaithumans tables"
    return None


def _copy(source: Path, target: Path) -> None:
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    # The context managers commit; closing is explicit so the files are whole on return.
    src.close()
    dst.close()


def backup(settings: Settings, target: Path) -> int:
    source = _database(settings, "backup")
    if source is None:
        return 2
    if not source.exists():
        print(f"awaithumans db backup: there is no database at {source}.", file=sys.stderr)
        return 2
    if target.exists():
        print(f"awaithumans db backup: {target} exists; name a new file.", file=sys.stderr)
        return 2
    create_private_file(target)
    _copy(source, target)
    tasks = _count_tasks(target)
    print(f"✓ Backed up {source} to {target} ({tasks} tasks, {target.stat().st_size} bytes).")
    return 0


def restore(settings: Settings, backup_file: Path) -> int:
    target = _database(settings, "restore")
    if target is None:
        return 2
    problem = _looks_like_ours(backup_file) if backup_file.exists() else "it does not exist"
    if problem is not None:
        print(
            f"awaithumans db restore: {backup_file} cannot be restored: {problem}.", file=sys.stderr
        )
        return 2
    # Copied page by page into the database file (not moved over it), so its -wal and -shm
    # stay consistent and its permissions stay as they were.
    create_private_file(target)
    _copy(backup_file, target)
    print(
        f"✓ Restored {target} from {backup_file} ({_count_tasks(target)} tasks)."
        " Start the server again (it applies any newer migrations)."
    )
    return 0


def _count_tasks(path: Path) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        (count,) = conn.execute("SELECT count(*) FROM tasks").fetchone()
    conn.close()
    return int(count)
