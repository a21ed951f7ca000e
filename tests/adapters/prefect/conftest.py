"""Fixtures for the Prefect adapter tests: the session's Prefect server (``prefect_server``
from ``tests._prefect_fixtures``) and a real awaithumans server per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from awaithumans.testing import ServerProcess
from awaithumans.testing.prefect import PrefectServer


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
