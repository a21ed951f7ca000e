"""``examples/temporal`` as a user runs it: its worker and starter as subprocesses against a
real Temporal dev server, a real awaithumans server and the relay CLI."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from awaithumans.testing import ServerProcess
from tests._temporal_fixtures import TemporalDevServer
from tests.adapters.temporal.test_temporal_adapter import (
    api,
    aw_server,  # noqa: F401 - fixture
    find_task,
    relay_url,  # noqa: F401 - fixture
    secret,  # noqa: F401 - fixture
)

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "temporal"


@pytest.fixture
def example_env(
    temporal_dev_server: TemporalDevServer,
    aw_server: ServerProcess,  # noqa: F811
    relay_url: str,  # noqa: F811
) -> dict[str, str]:
    """Everything the example reads, pointed at this test's servers (no fixed ports)."""
    return {
        **os.environ,
        "TEMPORAL_ADDRESS": temporal_dev_server.address,
        "TASK_QUEUE": f"refunds-{uuid.uuid4().hex[:8]}",
        "RELAY_URL": f"{relay_url}/",
        "AWAITHUMANS_URL": aw_server.url,
        "AWAITHUMANS_API_KEY": aw_server.admin_token,
        "AWAITHUMANS_QUIET": "1",
    }


@pytest.fixture
def worker(example_env: dict[str, str], tmp_path: Path) -> Iterator[Path]:
    """``python worker.py`` in the example's directory; yields its log file."""
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "worker.py"],
            cwd=EXAMPLE,
            env=example_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield log_path
        assert proc.poll() is None, f"the worker died:\n{log_path.read_text()}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (
            {"approved": True, "notes": "duplicate charge confirmed"},
            "approved and paid (re_{order}): duplicate charge confirmed",
        ),
        ({"approved": False, "notes": "outside the refund window"}, "rejected: outside the"),
    ],
    ids=["approved", "rejected"],
)
async def test_starter_prints_the_reviewers_decision(
    response: dict[str, object],
    expected: str,
    example_env: dict[str, str],
    worker: Path,
    aw_server: ServerProcess,  # noqa: F811
) -> None:
    order = f"ord_{uuid.uuid4().hex[:8]}"
    starter = await asyncio.create_subprocess_exec(
        sys.executable,
        "starter.py",
        "--order-id",
        order,
        cwd=EXAMPLE,
        env=example_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        # The task appears once the worker ran the workflow's first step.
        task = await find_task(aw_server, f"temporal:refund-{order}:0", timeout=30)
        assert task["task"] == f"Approve a $250 refund for order {order}?"
        async with api(aw_server) as http:
            view = (await http.get(f"/api/tasks/{task['id']}")).json()
            assert view["payload"]["amount_usd"] == 250, view
            resp = await http.post(f"/api/tasks/{task['id']}/complete", json={"response": response})
            assert resp.status_code == 200, resp.text
        out, _ = await asyncio.wait_for(starter.communicate(), 30)
    finally:
        if starter.returncode is None:
            starter.kill()
            await starter.wait()
    text = out.decode()
    assert starter.returncode == 0, f"{text}\nworker:\n{worker.read_text()}"
    assert f"Started workflow refund-{order}" in text
    assert f"Refund for {order} {expected.format(order=order)}" in text, text
