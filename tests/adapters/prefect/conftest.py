"""Fixtures for the Prefect adapter tests: a real Prefect server, a real awaithumans server.

Prefect reads its settings when first imported, so the address of the test's Prefect
server is fixed here, before the test modules import ``prefect``: this process, the
relay and the served deployment all talk to the same server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from awaithumans.testing import ServerProcess, free_port
from awaithumans.testing.prefect import PrefectServer

_PREFECT = PrefectServer(port=free_port())
os.environ.update(_PREFECT.env())
# Run logs stay in this process: shipping them would race the server's shutdown at the end.
os.environ["PREFECT_LOGGING_TO_API_ENABLED"] = "false"


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[PrefectServer]:
    with _PREFECT:
        yield _PREFECT


@pytest.fixture(scope="module")
def aw_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(workdir=tmp_path_factory.mktemp("aw")) as proc:
        yield proc


@pytest.fixture(autouse=True)
def _env(
    prefect_server: PrefectServer, aw_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWAITHUMANS_URL", aw_server.url)
    monkeypatch.setenv("AWAITHUMANS_API_KEY", aw_server.admin_token)
    monkeypatch.setenv("AWAITHUMANS_QUIET", "1")
