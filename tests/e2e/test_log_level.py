"""``AWAITHUMANS_LOG_LEVEL`` sets how much ``serve`` logs; ``--log-level`` wins over it."""

from __future__ import annotations

from pathlib import Path

import pytest

from awaithumans.testing import ServerProcess

pytestmark = pytest.mark.e2e

STARTED = "Application startup complete."  # uvicorn's INFO line


def test_the_environment_sets_the_level_and_the_flag_wins(tmp_path: Path) -> None:
    runs = {
        "default": ({}, ()),
        "env": ({"AWAITHUMANS_LOG_LEVEL": "info"}, ()),
        "flag": ({"AWAITHUMANS_LOG_LEVEL": "info"}, ("--log-level", "warning")),
    }
    seen = {}
    for name, (env, args) in runs.items():
        (tmp_path / name).mkdir()
        with ServerProcess(workdir=tmp_path / name, env=env, args=args) as server:
            seen[name] = STARTED in server.logs()
    assert seen == {"default": False, "env": True, "flag": False}
