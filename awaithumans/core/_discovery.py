"""Where the server is and which token to present.

Order, as everywhere in awaithumans: explicit argument, then ``AWAITHUMANS_*`` environment
variables, then the file ``awaithumans dev`` writes (``~/.awaithumans-dev.json``, ignored when
the process that wrote it is gone), then ``http://localhost:3001``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_URL = "http://localhost:3001"
DEV_FILE_NAME = ".awaithumans-dev.json"


@dataclass(frozen=True, slots=True)
class ServerTarget:
    """A resolved server address and credential (``api_key`` may be None)."""

    url: str
    api_key: str | None
    source: str


def dev_file_path() -> Path:
    return Path.home() / DEV_FILE_NAME


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        # Another user's live process: it exists.
        return True
    return True


def read_dev_file(path: Path | None = None) -> dict[str, object] | None:
    """The running dev server's discovery record, or None if absent, stale or unreadable."""
    path = path or dev_file_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    pid = data.get("pid")
    if not isinstance(pid, int) or not _pid_alive(pid):
        return None
    return data


def resolve_server(server_url: str | None = None, api_key: str | None = None) -> ServerTarget:
    """Resolve the server URL and token by argument > env > dev file > default."""
    env_url = os.environ.get("AWAITHUMANS_URL") or None
    env_key = (
        os.environ.get("AWAITHUMANS_API_KEY")
        or os.environ.get("AWAITHUMANS_ADMIN_API_TOKEN")
        or None
    )
    url, source = (server_url, "argument") if server_url else (env_url, "env")
    key = api_key or env_key
    if url is None or key is None:
        dev = read_dev_file()
        if dev is not None:
            dev_url = dev.get("url")
            dev_token = dev.get("admin_token")
            # The dev file's token only belongs to the dev file's server.
            if url is None and isinstance(dev_url, str):
                url, source = dev_url, "dev-file"
                if key is None and isinstance(dev_token, str):
                    key = dev_token
            elif key is None and isinstance(dev_token, str) and url == dev_url:
                key = dev_token
    if url is None:
        url, source = DEFAULT_URL, "default"
    return ServerTarget(url=url.rstrip("/"), api_key=key, source=source)
