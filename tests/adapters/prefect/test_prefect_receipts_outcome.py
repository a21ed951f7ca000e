"""With a receipt key set, a run input claiming an outcome that is not an answer (here a
timeout) must be the server's: receipts sign answers only, and Prefect's UI lets anyone who
may resume the run pick ``status`` and fill in ``response`` (with ``on_timeout`` set, that
response would be handed over as "the default the server applied").

A real Prefect server and a real awaithumans server; the flow pauses in this process.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from awaithumans import ReceiptInvalidError
from awaithumans.core._receipts import PUBLIC_KEY_ENV
from awaithumans.testing import ServerProcess
from tests.adapters.prefect.test_prefect_pause import api
from tests.adapters.prefect.test_prefect_receipts import resumed_with, server_key


async def test_a_made_up_timeout_in_the_run_input_is_refused(
    aw_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PUBLIC_KEY_ENV, await server_key(aw_server))
    made_up = {
        "status": "timed_out",
        "response": {"approved": True, "note": "made up"},
        "answered_in": "prefect",
    }
    flow, task = await resumed_with(aw_server, f"t-{uuid.uuid4().hex[:8]}", 64, made_up)
    with pytest.raises(ReceiptInvalidError) as refused:
        await asyncio.wait_for(flow, 30)
    assert (refused.value.reason, refused.value.task_id) == ("mismatch", task["id"])
    async with api(aw_server) as http:
        stored = (await http.get(f"/api/tasks/{task['id']}")).json()
    assert stored["status"] in {"created", "notified"}  # the run's claim changed nothing
    assert f"status {stored['status']!r} there" in refused.value.message
