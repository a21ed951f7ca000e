"""Secrets on disk for ``awaithumans dev``: created once, kept 0600, reused after."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from awaithumans.core._discovery import dev_file_path
from awaithumans.server.security import generate_admin_token, generate_payload_key

DEV_DIR = Path(".awaithumans")


def _write_private(path: Path, text: str) -> None:
    # Create with 0600 from the first byte: a chmod after the write would leave a window.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, 0o600)


def read_or_create_secret(path: Path, make: Any) -> str:
    if path.exists():
        value = path.read_text(encoding="utf-8").strip()
        if value:
            if path.stat().st_mode & 0o077:
                os.chmod(path, 0o600)
            return value
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = str(make())
    _write_private(path, value + "\n")
    return value


def dev_secrets(base: Path = DEV_DIR) -> tuple[str, str]:
    """(payload key, admin token) for the dev server in ``base``."""
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    if base.stat().st_mode & 0o077:
        base.chmod(0o700)  # made by hand or by an older version: the secrets live here
    payload_key = read_or_create_secret(base / "payload.key", generate_payload_key)
    admin_token = read_or_create_secret(base / "admin.token", generate_admin_token)
    return payload_key, admin_token


def write_discovery(record: dict[str, Any], path: Path | None = None) -> Path:
    path = path or dev_file_path()
    _write_private(path, json.dumps(record, indent=2) + "\n")
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
