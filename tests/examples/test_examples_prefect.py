"""``examples/prefect`` as a user runs it: ``python flow.py`` against a real Prefect server
and a real awaithumans server; the reviewer answers through the API."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from awaithumans.testing import PrefectServer, ServerProcess

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "prefect"


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
