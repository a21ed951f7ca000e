"""Verifier call time in /metrics, against the providers' stand-in: one observation per model
call, by provider and result (a verdict, a provider error, a timeout)."""

from __future__ import annotations

from awaithumans.testing import ServerProcess
from tests._waiting import until
from tests.support.llm_standin import ProviderStandIn
from tests.support.metrics import Samples, parse, value
from tests.verifiers._helpers import admin, answer, create, reaches, verifier
from tests.verifiers.conftest import ServerFactory

NAME = "awaithumans_verifier_call_seconds"


async def scrape(server: ServerProcess) -> Samples:
    async with admin(server) as http:
        got = await http.get("/metrics")
    assert got.status_code == 200, got.text
    return parse(got.text)


async def test_each_model_call_is_timed_by_provider_and_result(
    make_server: ServerFactory, standin: ProviderStandIn
) -> None:
    with make_server() as server:
        # First a provider error (500), then a call that outlasts the 2 s timeout, then a
        # verdict: three calls, three observations.
        standin.fail_next(1, "status", status=500)
        standin.fail_next(1, "hang", seconds=3)
        task_id = await create(server, verifier("claude"))
        submitted = await answer(server, task_id, {"approved": True, "notes": "charged twice"})
        assert submitted.status_code == 200, submitted.text
        await reaches(server, task_id, "completed", timeout=30)

        async def observed() -> Samples | None:
            seen = await scrape(server)
            count = sum(
                value(seen, f"{NAME}_count", provider="claude", result=result)
                for result in ("verdict", "error", "timeout")
            )
            return seen if count == 3 else None

        seen = await until(observed, timeout=20, why=server.logs)
    for result in ("verdict", "error", "timeout"):
        assert value(seen, f"{NAME}_count", provider="claude", result=result) == 1, result
    # The timed-out call took the verifier timeout (2 s in these tests), no more.
    timed_out = value(seen, f"{NAME}_sum", provider="claude", result="timeout")
    assert 1.9 <= timed_out < 3
    assert value(seen, f"{NAME}_bucket", provider="claude", result="timeout", le="2.5") == 1
    assert value(seen, f"{NAME}_bucket", provider="claude", result="timeout", le="1.0") == 0
    assert len(standin.calls_for("claude")) >= 2
