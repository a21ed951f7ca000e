"""Stopping the app right after a create ends at once (found while fuzzing, issue 15).

A create wakes the timeout scheduler (its deadline may be the next one). Stopping the app
before the scheduler ran again cancelled it while its ``asyncio.wait_for`` on the wake-up
event had just completed; on Python 3.11 ``wait_for`` then returns instead of raising the
cancellation, the scheduler went on looping, and the shutdown waited for it forever (an
outer deadline's own cancellation was swallowed on the way too).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests._app_fixtures import make_settings, running_app

DEADLINE = 10.0


async def test_stopping_right_after_a_create_does_not_hang(tmp_path: Path) -> None:
    body = {
        "task": "Stop me",
        "payload": {},
        "payload_schema": {},
        "response_schema": {},
        "timeout_seconds": 600,
    }
    for attempt in range(3):
        url = f"sqlite+aiosqlite:///{tmp_path / f'stop-{attempt}.db'}"
        started = time.monotonic()
        async with asyncio.timeout(DEADLINE):
            async with running_app(make_settings(url)) as (_app, client):
                made = await client.post(
                    "/api/tasks", json={**body, "idempotency_key": f"stop-{attempt}"}
                )
                assert made.status_code == 201, made.text
                # No await between the create's answer and the stop: the scheduler was
                # woken and has not run yet.
        took = time.monotonic() - started
        assert took < DEADLINE - 1, f"the app took {took:.1f} s to stop"
