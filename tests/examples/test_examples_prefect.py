"""``examples/prefect`` as a user runs it: ``python flow.py`` against a real Prefect server
and a real awaithumans server; the reviewer answers through the API."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from awaithumans.testing import PrefectServer, ServerProcess, free_port, stop_process
from tests._waiting import until

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "prefect"
RELAY = [sys.executable, "-m", "awaithumans._cli_entry", "relay", "prefect"]


@pytest.fixture(scope="module")
def aw_server() -> Iterator[ServerProcess]:
    with ServerProcess() as proc:
        yield proc


@pytest.mark.parametrize(
    ("response", "printed"),
    [
        ({"approved": True, "notes": "double charge"}, "refunded 4200 cents to cus_{tail}: double"),
        ({"approved": False, "notes": "past 90 days"}, "refund declined: past 90 days"),
    ],
)
async def test_paused_refund_flow_end_to_end(
    aw_server: ServerProcess,
    prefect_server: PrefectServer,
    response: dict[str, Any],
    printed: str,
) -> None:
    order = f"ord_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        **prefect_server.env(),
        "AWAITHUMANS_URL": aw_server.url,
        "AWAITHUMANS_API_KEY": aw_server.admin_token,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "flow.py",
        order,
        "4200",
        cwd=EXAMPLE,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    seen: list[str] = []
    try:
        # Prefect's run log names the review page; the flow is paused from here on.
        while True:
            line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
            assert line, "flow.py ended early:\n" + "".join(seen)
            seen.append(line)
            found = re.search(r"Waiting for a human: (\S+) \(task (tsk_[0-9a-f]{24})\)", line)
            if found:
                review_url, task_id = found.groups()
                break
        assert review_url == f"{aw_server.url}/task?id={task_id}"
        async with httpx.AsyncClient(
            base_url=aw_server.url, headers={"Authorization": f"Bearer {aw_server.admin_token}"}
        ) as http:
            view = (await http.get(f"/api/tasks/{task_id}")).json()
            assert view["payload"]["amount_cents"] == 4200
            assert view["task"] == f"Refund 42.00 USD for order {order}?"
            done = await http.post(f"/api/tasks/{task_id}/complete", json={"response": response})
            assert done.status_code == 200, done.text
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, "".join(seen) + out.decode()
    last = out.decode().strip().splitlines()[-1]
    assert last.startswith(printed.format(tail=order[-4:])), out.decode()


async def test_suspended_deployment_end_to_end(
    aw_server: ServerProcess, prefect_server: PrefectServer, tmp_path: Path
) -> None:
    """The README's second part: the relay, ``serve.py``, ``prefect deployment run``."""
    from awaithumans.server.security import KeyRing
    from awaithumans.server.settings import Settings
    from awaithumans.server.webhook_secret import webhook_secret

    key = aw_server.payload_key
    relay_port = free_port()
    env = {
        **os.environ,
        **prefect_server.env(),
        "AWAITHUMANS_URL": aw_server.url,
        "AWAITHUMANS_API_KEY": aw_server.admin_token,
        "AWAITHUMANS_WEBHOOK_SECRET": webhook_secret(
            Settings(payload_key=key), KeyRing.from_text(key)
        ),
        "RELAY_URL": f"http://127.0.0.1:{relay_port}/",
    }
    logs = {name: (tmp_path / f"{name}.log").open("wb") for name in ("relay", "serve")}
    relay = subprocess.Popen(
        [*RELAY, "--port", str(relay_port)],
        env=env,
        stdout=logs["relay"],
        stderr=subprocess.STDOUT,
    )
    served = subprocess.Popen(
        [sys.executable, "serve.py"], cwd=EXAMPLE, env=env, stdout=logs["serve"],
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    order = f"ord_{uuid.uuid4().hex[:8]}"

    def why() -> str:
        return "\n".join(
            f"--- {name} ---\n" + (tmp_path / f"{name}.log").read_text(errors="replace")
            for name in logs
        )

    try:
        async with (
            httpx.AsyncClient(
                base_url=aw_server.url,
                headers={"Authorization": f"Bearer {aw_server.admin_token}"},
            ) as http,
            httpx.AsyncClient(base_url=prefect_server.api_url) as prefect,
        ):

            async def deployment() -> bool:
                resp = await prefect.get("/deployments/name/refund/refund-suspended")
                return resp.status_code == 200

            await until(deployment, 60, why)
            started = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "prefect", "deployment", "run", "refund/refund-suspended",
                "-p", f"order_id={order}", "-p", "amount_cents=990",
                env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
            out, _ = await asyncio.wait_for(started.communicate(), 60)
            assert started.returncode == 0, out.decode()

            async def task() -> dict[str, Any] | None:
                items = (await http.get("/api/tasks", params={"limit": 200})).json()["items"]
                mine = [t for t in items if t["task"] == f"Refund 9.90 USD for order {order}?"]
                return mine[0] if mine else None

            found: dict[str, Any] = await until(task, 60, why)
            assert found["callback_url"] == env["RELAY_URL"]
            run_url = f"/flow_runs/{found['task_metadata']['prefect']['flow_run_id']}"

            async def state(name: str) -> bool:
                run = (await prefect.get(run_url)).json()
                return bool(run["state"] and run["state"]["name"] == name)

            await until(lambda: state("Suspended"), 60, why)
            done = await http.post(
                f"/api/tasks/{found['id']}/complete",
                json={"response": {"approved": True, "notes": "charged twice"}},
            )
            assert done.status_code == 200, done.text
            await until(lambda: state("Completed"), 90, why)
    finally:
        for proc in (served, relay):
            stop_process(proc)
        for f in logs.values():
            f.close()
    assert "Relaying webhooks" in (tmp_path / "relay.log").read_text()
