"""A waiting SDK call is back within a second of a restarted server's readiness (issue 15).

The figure printed by each run ("reconnect: ... ms after /api/health first answered") is
the measurement; the assertion is the issue's requirement, with the design at ~0.5 s.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from awaithumans.core._client import backoff_delay
from awaithumans.testing import ServerProcess
from tests.e2e.test_resilience import Answer, answer, start_waiting

# Long enough that the SDK's old backoff (capped at 5 s) had grown to seconds between tries.
OUTAGE_SECONDS = 3.0
REQUIRED_SECONDS = 1.0


def test_backoff_stays_under_half_a_second_for_a_minute_then_grows() -> None:
    delays = [backoff_delay(attempt, away=59.0) for attempt in range(200)]
    assert max(delays) <= 0.5
    assert min(delays) >= 0.0
    # After a minute away it is an outage: tries thin out (still jittered, at most 5 s).
    later = [backoff_delay(attempt, away=61.0) for attempt in range(10, 400)]
    assert 0.5 < max(later) <= 5.0
    # The first retries are quick whatever happens: a dropped connection is retried at once.
    assert all(backoff_delay(0, away=away) <= 0.1 for away in (0.0, 3600.0))


async def first_health(server: ServerProcess, starting: asyncio.Task[ServerProcess]) -> float:
    """The monotonic time /api/health first answers 200, probed every 5 ms."""
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=server.url, timeout=0.5) as probe:
        while time.monotonic() < deadline:
            if starting.done() and starting.exception() is not None:
                raise AssertionError(f"the server did not start:\n{server.logs()}")
            try:
                if (await probe.get("/api/health")).status_code == 200:
                    return time.monotonic()
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.005)
    raise AssertionError(f"the server never answered /api/health:\n{server.logs()}")


@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
async def test_waiting_call_returns_within_a_second_of_the_server_being_back(
    server: ServerProcess, kill: bool
) -> None:
    waiter, task_id = await start_waiting(server, f"reconnect-{kill}")
    returned: list[float] = []
    waiter.add_done_callback(lambda _: returned.append(time.monotonic()))

    await asyncio.to_thread(server.stop, kill=kill)
    # The outage itself, not a wait for something to happen: the SDK keeps retrying meanwhile.
    await asyncio.sleep(OUTAGE_SECONDS)
    assert not waiter.done()
    starting = asyncio.create_task(asyncio.to_thread(server.start))
    ready = await first_health(server, starting)
    await answer(server, task_id)
    await starting

    assert await asyncio.wait_for(waiter, 15) == Answer(ok=True)
    late = returned[0] - ready
    print(f"\nreconnect: {late * 1000:.0f} ms after /api/health first answered")
    assert late < REQUIRED_SECONDS, (
        f"the SDK returned {late:.3f} s after the server was back (required < {REQUIRED_SECONDS} s)"
    )
