"""Secrets on disk for ``awaithumans dev``: created once, kept 0600, reused after.

The dev folder and everything the dev server keeps in it are private (0700 / 0600): the
keys, the admin token, and the database with its ``-wal`` and ``-shm`` files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from awaithumans.core._discovery import dev_file_path
from awaithumans.server.security import generate_admin_token, generate_payload_key
from awaithumans.server.security.private_files import (
    make_private_dirs,
    sqlite_files,
    tighten,
    write_private,
)

DEV_DIR = Path(".awaithumans")
DEV_DB = "dev.db"


def read_or_create_secret(path: Path, make: Any) -> str:
    if path.exists():
        value = path.read_text(encoding="utf-8").strip()
        if value:
            tighten([path])
            return value
    value = str(make())
    write_private(path, value + "\n")
    return value


def dev_secrets(base: Path = DEV_DIR) -> tuple[str, str]:
    """(payload key, admin token) for the dev server in ``base``."""
    make_private_dirs(base)
    # Made by hand or by an older version (whose dev.db was 0644): the dev folder is the
    # dev server's own, so its files (and the mail folder of the `file` email transport) are
    # made private again rather than only reported.
    tighten([base, *sqlite_files(base / DEV_DB), base / "mail"])
    payload_key = read_or_create_secret(base / "payload.key", generate_payload_key)
    admin_token = read_or_create_secret(base / "admin.token", generate_admin_token)
    return payload_key, admin_token


def write_discovery(record: dict[str, Any], path: Path | None = None) -> Path:
    path = path or dev_file_path()
    # It carries the admin token. Its folder (the home) is the user's: left as it is.
    write_private(path, json.dumps(record, indent=2) + "\n")
    return path


def remove_discovery(pid: int, path: Path | None = None) -> None:
    """Remove the discovery file, but only if it is still ours (another dev may own it now)."""
    path = path or dev_file_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if isinstance(data, dict) and data.get("pid") == pid:
        path.unlink(missing_ok=True)
