"""``examples/langgraph`` as a user runs it: the relay and the starter as subprocesses
against a real awaithumans server; the answer comes through the API."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from awaithumans.server.security import KeyRing
from awaithumans.server.settings import Settings
from awaithumans.server.webhook_secret import webhook_secret
from awaithumans.testing import ServerProcess
from tests.examples._example_module import example_module

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "langgraph"


@pytest.fixture(scope="module")
def aw_server() -> Iterator[ServerProcess]:
    with ServerProcess() as proc:
        yield proc


@pytest.fixture
def example_env(aw_server: ServerProcess, tmp_path: Path) -> dict[str, str]:
    """What the example reads, pointed at this test's server and files (no fixed ports)."""
    key = aw_server.payload_key
    return {
        **os.environ,
        "AWAITHUMANS_URL": aw_server.url,
        "AWAITHUMANS_API_KEY": aw_server.admin_token,
        "AWAITHUMANS_QUIET": "1",
        "WEBHOOK_SECRET": webhook_secret(Settings(payload_key=key), KeyRing.from_text(key)),
        "CHECKPOINT_DB": str(tmp_path / "refunds.db"),
        "RELAY_PORT": "0",
    }


@pytest.fixture
async def relay(
    example_env: dict[str, str], tmp_path: Path
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """``python relay.py``; yields the process (stdout piped) and its URL."""
    log = (tmp_path / "relay.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "relay.py",
        cwd=EXAMPLE,
        env=example_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=log,
    )
    try:
        assert proc.stdout is not None
        first = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        assert first.startswith("relay listening on "), first + _log(tmp_path)
        yield proc, first.removeprefix("relay listening on ").strip()
        assert proc.returncode is None, f"the relay died:\n{_log(tmp_path)}"
    finally:
        if proc.returncode is None:
            proc.terminate()
        await asyncio.wait_for(proc.wait(), 15)
        log.close()


def _log(tmp_path: Path) -> str:
    return (tmp_path / "relay.log").read_text(errors="replace")


async def run_example(env: dict[str, str], *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "run.py",
        *args,
        cwd=EXAMPLE,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, out.decode()
    return out.decode()


def field(output: str, name: str) -> str:
    for line in output.splitlines():
        if line.strip().startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name!r} in:\n{output}")


@pytest.mark.parametrize(
    ("response", "outcome"),
    [
        ({"approved": True, "notes": "double charge"}, "refunded 4200 cents to cus_{tail}: double"),
        ({"approved": False, "notes": "past 90 days"}, "refund declined: past 90 days"),
    ],
)
async def test_refund_example_end_to_end(
    aw_server: ServerProcess,
    example_env: dict[str, str],
    relay: tuple[asyncio.subprocess.Process, str],
    response: dict[str, Any],
    outcome: str,
) -> None:
    proc, relay_url = relay
    env = {**example_env, "RELAY_URL": relay_url}
    order = f"ord_{uuid.uuid4().hex[:8]}"

    started = await run_example(env, order, "4200")
    task_id = field(started, "task")
    assert field(started, "review at") == f"{aw_server.url}/task?id={task_id}"
    assert field(started, "thread") == f"refund-{order}"
    # Starting it again (the process exited; the thread is in the file) asks no second time.
    assert field(await run_example(env, order, "4200"), "task") == task_id

    async with httpx.AsyncClient(
        base_url=aw_server.url, headers={"Authorization": f"Bearer {aw_server.admin_token}"}
    ) as http:
        view = (await http.get(f"/api/tasks/{task_id}")).json()
        assert view["payload"]["amount_cents"] == 4200
        done = await http.post(f"/api/tasks/{task_id}/complete", json={"response": response})
        assert done.status_code == 200, done.text

    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    prefix = f"finished refund-{order}: "
    assert line.startswith(prefix), line
    printed = json.loads(line.removeprefix(prefix))
    expected = outcome.format(tail=order[-4:])
    assert printed["outcome"].startswith(expected), printed

    # The final state, read back from the checkpoint file by another process (this one).
    async with AsyncSqliteSaver.from_conn_string(env["CHECKPOINT_DB"]) as saver:
        graph = example_module(EXAMPLE, "graph")
        state = await graph.build(saver).aget_state(graph.thread_config(order))
    assert state.next == ()
    assert state.values == printed
    assert state.values["approved"] is response["approved"]
    # Once finished, run.py reports the outcome instead of asking again.
    assert f"is already done: {printed['outcome']}" in await run_example(env, order, "4200")
