"""Suspended runs: the flow's process exits while the human thinks; the relay resumes it.

Real processes throughout: a Prefect server, a served deployment (``flow.serve``), the
awaithumans server, and ``awaithumans relay prefect`` as the tasks' ``callback_url``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.deployments.flow_runs import arun_deployment

from awaithumans.adapters.prefect import Resumed, resume_from_event
from awaithumans.core import NotOurEventError
from awaithumans.server.security import KeyRing
from awaithumans.server.settings import Settings
from awaithumans.server.webhook_secret import webhook_secret
from awaithumans.testing import ServerProcess, free_port, stop_process
from awaithumans.testing.prefect import PrefectServer
from tests._waiting import until
from tests.adapters._tasks import expire_now
from tests.adapters.prefect.conftest import DEPLOYMENT, wait_http
from tests.adapters.prefect.test_prefect_pause import act, api, run_of, task_for


@pytest.fixture(scope="module")
def relay_url(
    aw_server: ServerProcess,
    prefect_server: PrefectServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    key = aw_server.payload_key
    secret = webhook_secret(Settings(payload_key=key), KeyRing.from_text(key))
    port = free_port()
    log = tmp_path_factory.mktemp("relay") / "relay.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "awaithumans._cli_entry",
                "relay",
                "prefect",
                "--port",
                str(port),
            ],
            env={**os.environ, **prefect_server.env(), "AWAITHUMANS_WEBHOOK_SECRET": secret},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc, log, 30)
        assert "Relaying webhooks" in log.read_text()
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        stop_process(proc)


async def _state_of(run_id: Any) -> FlowRun:
    async with get_client() as prefect:
        return await prefect.read_flow_run(run_id)


async def test_suspended_run_is_resumed_by_the_relay_and_finishes(
    aw_server: ServerProcess, relay_url: str, deployment: None, tmp_path: Path
) -> None:
    order = f"s-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "result.json"
    started = await arun_deployment(
        DEPLOYMENT,
        parameters={"order_id": order, "amount": 70, "callback_url": relay_url, "out": str(out)},
        timeout=0,
    )
    task = await task_for(aw_server, order, 70)
    assert task["callback_url"] == relay_url

    async def suspended() -> FlowRun | None:
        run = await run_of(task)
        return run if run.state is not None and run.state.name == "Suspended" else None

    run = await until(suspended, timeout=60)
    assert run.id == started.id
    assert run.state is not None
    assert run.state.is_paused()
    # The flow's own code ran once and stopped: nothing of it runs while the human thinks.
    assert out.with_suffix(".runs").read_text() == "run\n"
    assert not out.exists()

    resp = await act(aw_server, task["id"], "complete", {"response": {"approved": True}})
    assert resp.status_code == 200

    async def completed() -> FlowRun | None:
        now = await _state_of(run.id)
        return now if now.state is not None and now.state.type == StateType.COMPLETED else None

    await until(completed, timeout=90)
    # Prefect ran the flow again from the top; the same call found its task answered.
    assert out.with_suffix(".runs").read_text() == "run\nrun\n"
    assert json.loads(out.read_text()) == {"outcome": "answered", "approved": True}

    # A duplicate delivery of the same webhook changes nothing.
    async with api(aw_server) as http:
        (row,) = (await http.get("/api/admin/deliveries", params={"task_id": task["id"]})).json()
        assert row["status"] == "delivered"
        redo = await http.post(f"/api/admin/deliveries/{row['id']}/redeliver")
        assert redo.status_code == 202

        async def redelivered() -> dict[str, Any] | None:
            rows = (await http.get("/api/admin/deliveries", params={"task_id": task["id"]})).json()
            again: dict[str, Any] = rows[0]
            return again if again["attempts"] >= 2 and again["status"] == "delivered" else None

        await until(redelivered)
    assert out.with_suffix(".runs").read_text() == "run\nrun\n"
    assert (await _state_of(run.id)).state.type == StateType.COMPLETED  # type: ignore[union-attr]


@pytest.mark.parametrize("ending", ["cancel", "timeout"])
async def test_cancel_and_timeout_reach_a_suspended_flow(
    aw_server: ServerProcess, relay_url: str, deployment: None, tmp_path: Path, ending: str
) -> None:
    order = f"sc-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "result.json"
    await arun_deployment(
        DEPLOYMENT,
        parameters={"order_id": order, "amount": 71, "callback_url": relay_url, "out": str(out)},
        timeout=0,
    )
    task = await task_for(aw_server, order, 71)

    async def suspended() -> FlowRun | None:
        run = await run_of(task)
        return run if run.state is not None and run.state.name == "Suspended" else None

    run = await until(suspended, timeout=60)
    if ending == "cancel":
        assert (await act(aw_server, task["id"], "cancel")).status_code == 200
    else:
        expire_now(aw_server, task["id"])  # the server's scheduler times it out at once

    async def finished() -> FlowRun | None:
        now = await _state_of(run.id)
        return now if now.state is not None and now.state.is_final() else None

    final = await until(finished, timeout=90)
    assert final.state is not None
    assert final.state.type == StateType.COMPLETED
    code = "TASK_CANCELLED" if ending == "cancel" else "TIMEOUT_EXCEEDED"
    assert json.loads(out.read_text()) == {"outcome": code}


async def test_late_and_foreign_events_are_no_ops(aw_server: ServerProcess) -> None:
    # An event for a run Prefect never saw, and one naming no run at all.
    unknown = {
        "task_id": "tsk_" + "0" * 24,
        "status": "completed",
        "response": {"approved": True},
        "task_metadata": {"prefect": {"flow_run_id": str(uuid.uuid4()), "pause_key": "k"}},
    }
    async with get_client() as prefect:
        assert (await resume_from_event(prefect, unknown)).outcome is Resumed.NOT_WAITING
        with pytest.raises(NotOurEventError, match=r"task_metadata\.prefect"):
            await resume_from_event(
                prefect, {"task_id": "tsk_1", "status": "completed", "task_metadata": {}}
            )
