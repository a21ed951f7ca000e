"""Fixtures for the Prefect adapter tests: the session's Prefect server (``prefect_server``
from ``tests._prefect_fixtures``) and a real awaithumans server per module."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from awaithumans.testing import ServerProcess, stop_process
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


REPO = Path(__file__).resolve().parents[3]
DEPLOYMENT = "refund-suspend/suspend-test"


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} not up after {timeout}s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def deployment(
    aw_server: ServerProcess,
    prefect_server: PrefectServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[None]:
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {
        **os.environ,
        **prefect_server.env(),
        "AWAITHUMANS_URL": aw_server.url,
        "AWAITHUMANS_API_KEY": aw_server.admin_token,
        "AWAITHUMANS_QUIET": "1",
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.adapters.prefect.serve_flows", "suspend-test"],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"serve exited with {proc.returncode}:\n{log.read_text()}")
            resp = httpx.get(f"{prefect_server.api_url}/deployments/name/{DEPLOYMENT}")
            if resp.status_code == 200:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"deployment not served:\n{log.read_text()}")
            time.sleep(0.2)
        yield
    finally:
        stop_process(proc)
