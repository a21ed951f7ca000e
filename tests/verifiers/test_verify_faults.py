"""A provider that fails costs the human nothing: no attempt used, the answer kept, the
trouble shown, and the same task verified once the provider answers again."""

from __future__ import annotations

import pytest

from awaithumans.testing import ServerProcess, free_port
from tests._waiting import until
from tests.adapters._tasks import expire_now
from tests.support.llm_standin import ProviderStandIn
from tests.verifiers._helpers import admin, answer, audit, create, reaches, task, verifier
from tests.verifiers.conftest import ServerFactory


async def _trouble(server: ServerProcess, task_id: str, tries: int) -> dict[str, object]:
    async def seen() -> dict[str, object] | None:
        found = await task(server, task_id)
        error = found["verification_error"]
        return found if error and error["tries"] >= tries else None

    found: dict[str, object] = await until(seen, timeout=20, why=server.logs)
    return found


@pytest.mark.parametrize(
    ("provider", "fault", "status"),
    [
        ("claude", "status", 500),
        ("openai", "status", 429),
        ("gemini", "status", 503),
        ("azure_openai", "hang", 0),
        ("claude", "malformed", 0),
        ("openai", "no_verdict", 0),
    ],
)
async def test_no_verdict_uses_no_attempt_and_is_retried(
    make_server: ServerFactory,
    standin: ProviderStandIn,
    provider: str,
    fault: str,
    status: int,
) -> None:
    # Two failures in a row (the hang outlasts the server's 2 s call timeout), then a verdict.
    standin.fail_next(2, fault, status=status or 500, seconds=4)
    config = verifier(provider, deployment="d1") if provider == "azure_openai" else None
    with make_server() as server:
        task_id = await create(server, config or verifier(provider))
        await answer(server, task_id, {"approved": True, "notes": "ok"})
        waiting = await _trouble(server, task_id, tries=2)
        assert waiting["status"] == "submitted"
        assert waiting["verification_attempt"] == 0
        error = waiting["verification_error"]
        assert isinstance(error, dict)
        assert error["code"] == "VERIFIER_PROVIDER_ERROR"
        assert error["message"]
        done = await reaches(server, task_id, "completed")
        trail = await audit(server, task_id)
    assert done["verification_attempt"] == 1
    assert done["verification_error"] is None
    assert len(standin.calls_for(provider)) == 3
    # The trouble is in the trail once (the same message is not repeated per retry).
    troubles = [r for r in trail if r["action"] == "verifier_error"]
    assert len(troubles) == 1
    assert troubles[0]["from_status"] == troubles[0]["to_status"] == "submitted"


async def test_connection_refused_then_the_provider_comes_up(tmp_path: object) -> None:
    # Nothing listens on the provider's port when the answer comes.
    port = free_port()
    standin = ProviderStandIn(port=port)
    env = {
        **standin.env(),
        "AWAITHUMANS_VERIFIER_TIMEOUT_SECONDS": "2",
        # Long between tries: the operator's "retry now" is what brings the verdict.
        "AWAITHUMANS_VERIFIER_RETRY_MAX_SECONDS": "600",
        "AWAITHUMANS_OUTBOX_POLL_SECONDS": "0.3",
    }
    with ServerProcess(env=env) as server:
        task_id = await create(server, verifier("claude"))
        await answer(server, task_id, {"approved": True, "notes": "ok"})
        waiting = await _trouble(server, task_id, tries=1)
        error = waiting["verification_error"]
        assert isinstance(error, dict)
        assert "Connection" in str(error["message"])
        with standin:
            async with admin(server) as http:
                retried = await http.post(f"/api/tasks/{task_id}/verify")
                assert retried.status_code == 200, retried.text
                done = await reaches(server, task_id, "completed", timeout=10)
                again = await http.post(f"/api/tasks/{task_id}/verify")
    assert done["verification_attempt"] == 1
    assert again.status_code == 409
    assert again.json()["error"] == "VERIFICATION_NOT_FAILING"


async def test_a_killed_server_resumes_verifying_after_restart(
    make_server: ServerFactory, standin: ProviderStandIn
) -> None:
    # The provider is slow to answer; the server dies while it waits (kill -9).
    standin.fail_next(1, "hang", seconds=1.5)
    with make_server() as server:
        task_id = await create(server, verifier("claude"))
        await answer(server, task_id, {"approved": True, "notes": "ok"})

        async def called() -> bool:
            return bool(standin.calls)

        await until(called, timeout=10, why=server.logs)
        server.stop(kill=True)
        server.start()
        # The next process takes the job once the dead one's claim lapses, and the same
        # answer is verified: nothing was lost, and no attempt was used on the way.
        done = await reaches(server, task_id, "completed", timeout=30)
    assert done["verification_attempt"] == 1
    assert len(standin.calls) == 2


async def test_the_task_deadline_ends_a_verification_that_never_gets_a_verdict(
    make_server: ServerFactory, standin: ProviderStandIn
) -> None:
    standin.fail_next(1000, "status", status=500)
    with make_server() as server:
        task_id = await create(server, verifier("openai"))
        await answer(server, task_id, {"approved": True, "notes": "ok"})
        await _trouble(server, task_id, tries=1)
        expire_now(server, task_id)
        ended = await reaches(server, task_id, "timed_out")
        calls = len(standin.calls)

        async def settled() -> bool:
            # The pending job finds the task over and stops; no more calls are made.
            rows = await _verify_jobs(server, task_id)
            return all(r["status"] != "pending" for r in rows)

        await until(settled, timeout=15, why=server.logs)
    assert ended["verification_attempt"] == 0
    assert len(standin.calls) <= calls + 1


async def _verify_jobs(server: ServerProcess, task_id: str) -> list[dict[str, object]]:
    async with admin(server) as http:
        got = await http.get("/api/admin/deliveries", params={"task_id": task_id})
    assert got.status_code == 200, got.text
    return [r for r in got.json() if r["kind"] == "verify"]
