"""Fixtures for verifier tests: the providers' stand-in, and servers that reach it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from awaithumans.testing import ServerProcess
from tests.support.llm_standin import ProviderStandIn

# Short enough that a test sees a timeout, a retry and a lapsed claim within seconds.
FAST = {
    "AWAITHUMANS_VERIFIER_TIMEOUT_SECONDS": "2",
    "AWAITHUMANS_VERIFIER_RETRY_MAX_SECONDS": "1",
    "AWAITHUMANS_OUTBOX_POLL_SECONDS": "0.3",
    # A deadline moved into the past by a test is seen within a fraction of a second.
    "AWAITHUMANS_SCHEDULER_MAX_SLEEP_SECONDS": "0.2",
}

ServerFactory = Callable[..., Any]


@pytest.fixture
def standin() -> Iterator[ProviderStandIn]:
    with ProviderStandIn() as running:
        yield running


@pytest.fixture
def make_server(tmp_path: Path, standin: ProviderStandIn) -> ServerFactory:
    """Start servers whose environment points every provider at the stand-in.

    ``make_server(drop=("ANTHROPIC_API_KEY",), **env)`` leaves variables out or adds some.
    """
    started: list[ServerProcess] = []  # each its own folder

    @contextmanager
    def factory(drop: tuple[str, ...] = (), **env: str) -> Iterator[ServerProcess]:
        values = {**standin.env(), **FAST, **env}
        for name in drop:
            values[name] = ""  # empty counts as unset, and hides the test runner's own
        workdir = tmp_path / f"server{len(started)}"
        workdir.mkdir()
        server = ServerProcess(workdir=workdir, env=values)
        started.append(server)
        with server:
            yield server

    return factory
