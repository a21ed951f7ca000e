"""Direct delivery: with AWAITHUMANS_PREFECT_API_URL the server resumes runs itself."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.deployments.flow_runs import arun_deployment

from awaithumans.testing import PrefectServer, ServerProcess
from tests._waiting import until
from tests.adapters.prefect.conftest import DEPLOYMENT
from tests.adapters.prefect.test_prefect_pause import act, api, run_of, task_for


@pytest.fixture(scope="module")
def aw_server(
    prefect_server: PrefectServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    # This module's server knows Prefect's address: no relay, no callback_url.
    env = {"AWAITHUMANS_PREFECT_API_URL": prefect_server.api_url}
    with ServerProcess(workdir=tmp_path_factory.mktemp("aw-direct"), env=env) as proc:
        yield proc


async def test_server_resumes_a_suspended_run_without_a_relay(
    aw_server: ServerProcess, deployment: None, tmp_path: Path
) -> None:
    order = f"d-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "result.json"
    await arun_deployment(
        DEPLOYMENT, parameters={"order_id": order, "amount": 80, "out": str(out)}, timeout=0
    )
    task = await task_for(aw_server, order, 80)
    assert task["callback_url"] is None

    async def suspended() -> FlowRun | None:
        run = await run_of(task)
        return run if run.state is not None and run.state.name == "Suspended" else None

    run = await until(suspended, timeout=60)
    resp = await act(aw_server, task["id"], "complete", {"response": {"approved": False}})
    assert resp.status_code == 200

    async def completed() -> bool:
        async with get_client() as prefect:
            state = (await prefect.read_flow_run(run.id)).state
        return state is not None and state.type == StateType.COMPLETED

    await until(completed, timeout=90)
    assert json.loads(out.read_text()) == {"outcome": "answered", "approved": False}
    async with api(aw_server) as http:
        rows: list[dict[str, Any]] = (
            await http.get("/api/admin/deliveries", params={"task_id": task["id"]})
        ).json()
    assert [(r["kind"], r["target"], r["status"]) for r in rows] == [
        ("prefect", str(run.id), "delivered")
    ]
