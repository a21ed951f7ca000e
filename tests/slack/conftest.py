"""Fixtures for the Slack channel: the Slack stand-in, and servers pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from awaithumans.testing import ServerProcess
from tests.support.slack_standin import SlackStandIn

FAST = {
    "AWAITHUMANS_OUTBOX_POLL_SECONDS": "0.3",
    "AWAITHUMANS_SCHEDULER_MAX_SLEEP_SECONDS": "0.2",
}

ServerFactory = Callable[..., Any]


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn() as running:
        yield running


@pytest.fixture
def make_server(tmp_path: Path, slack: SlackStandIn) -> ServerFactory:
    """Start servers in static-token mode against the stand-in; ``**env`` adds or changes."""
    count = [0]

    @contextmanager
    def factory(**env: str) -> Iterator[ServerProcess]:
        count[0] += 1
        workdir = tmp_path / f"server{count[0]}"
        workdir.mkdir()
        with ServerProcess(workdir=workdir, env={**slack.env(), **FAST, **env}) as server:
            yield server

    return factory


@pytest.fixture
def server(make_server: ServerFactory) -> Iterator[ServerProcess]:
    with make_server() as running:
        yield running
