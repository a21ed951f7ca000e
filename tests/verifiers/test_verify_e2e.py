"""A verifier judges each answer on the server, through each provider's official SDK.

The server is a real process; the providers are the local stand-in, reached through the
variables the SDKs read (``ANTHROPIC_BASE_URL``, ``OPENAI_BASE_URL``, ...).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from awaithumans import VerificationExhaustedError
from tests.support.llm_standin import ProviderStandIn
from tests.verifiers._helpers import (
    Decision,
    admin,
    answer,
    ask_refund,
    audit,
    body,
    create,
    reaches,
    refund,
    task,
    verifier,
)
from tests.verifiers.conftest import ServerFactory

PROVIDERS = ["claude", "openai", "gemini", "azure_openai"]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_reject_then_pass_through_each_provider(
    make_server: ServerFactory, standin: ProviderStandIn, provider: str
) -> None:
    config = verifier(provider, deployment="verifier-prod") if provider == "azure_openai" else None
    with make_server() as server:
        waiting, task_id = await ask_refund(server, config or verifier(provider))

        first = await answer(server, task_id, {"approved": True})
        # The answer is stored at once, before any verdict.
        assert first.status_code == 200, first.text
        assert first.json()["status"] == "submitted"
        rejected = await reaches(server, task_id, "rejected")
        assert rejected["verification_attempt"] == 1
        assert rejected["verification_reason"] == "Explain the decision in the notes."
        assert not waiting.done()

        second = await answer(server, task_id, {"approved": True, "notes": "charged twice"})
        assert second.json()["status"] == "submitted"
        done = await reaches(server, task_id, "completed")
        decision = await asyncio.wait_for(waiting, 20)
        rows = await audit(server, task_id)

    assert decision == Decision(approved=True, notes="charged twice")
    assert done["verification_attempt"] == 2
    assert done["completed_by_user_id"] == "admin"
    assert done["completed_via_channel"] == "api"
    calls = standin.calls_for(provider)
    assert len(calls) == 2
    if provider == "azure_openai":
        assert calls[0].path.startswith("/openai/deployments/verifier-prod/chat/completions")
    # The second call told the model why the first answer was refused.
    assert calls[1].blocks["earlier_rejections"] == ["Explain the decision in the notes."]
    trail = [(row["action"], row["from_status"], row["to_status"]) for row in rows]
    assert trail[-4:] == [
        ("submitted", "created", "submitted"),
        ("rejected", "submitted", "rejected"),
        ("submitted", "rejected", "submitted"),
        ("verified", "submitted", "completed"),
    ]


async def test_the_audit_trail_records_verdicts_and_costs(
    make_server: ServerFactory, standin: ProviderStandIn
) -> None:
    with make_server() as server:
        task_id = await create(server, verifier("claude"))
        await answer(server, task_id, {"approved": False, "notes": "not a duplicate"})
        await reaches(server, task_id, "completed")
        verified = [r for r in await audit(server, task_id) if r["action"] == "verified"]
    (row,) = verified
    detail = row["detail"]
    assert row["channel"] == "verifier"
    assert detail["attempt"] == 1
    assert detail["passed"] is True
    assert detail["provider"] == "claude"
    assert detail["model"] == "claude-sonnet-5-5"  # the default model
    assert detail["usage"]["output_tokens"] == 42
    assert detail["usage"]["input_tokens"] > 100
    assert detail["ms"] >= 0


async def test_exhausted_after_max_attempts_with_the_true_count(
    make_server: ServerFactory,
) -> None:
    with make_server() as server:
        waiting, task_id = await ask_refund(server, verifier("openai", max_attempts=2))
        await answer(server, task_id, {"approved": True})
        await reaches(server, task_id, "rejected")
        await answer(server, task_id, {"approved": False})
        ended = await reaches(server, task_id, "verification_exhausted")
        with pytest.raises(VerificationExhaustedError) as err:
            await asyncio.wait_for(waiting, 20)
        trail = await audit(server, task_id)
        async with admin(server) as http:
            poll = (await http.get(f"/api/tasks/{task_id}/poll", params={"timeout": 1})).json()
        # A closed task takes no more answers.
        late = await answer(server, task_id, {"approved": True, "notes": "x"})
    assert ended["verification_attempt"] == 2
    assert (poll["status"], poll["verification_attempt"]) == ("verification_exhausted", 2)
    assert err.value.attempts == 2
    assert err.value.task_id == task_id
    assert [r["action"] for r in trail].count("rejected") == 1
    assert trail[-1]["action"] == "verification_exhausted"
    assert trail[-1]["detail"]["attempt"] == 2
    assert late.status_code == 409


async def test_missing_key_is_refused_at_submit_and_changes_nothing(
    make_server: ServerFactory, standin: ProviderStandIn
) -> None:
    with make_server(drop=("ANTHROPIC_API_KEY",)) as server:
        task_id = await create(server, verifier("claude"))
        before = await task(server, task_id)
        refused = await answer(server, task_id, {"approved": True, "notes": "ok"})
        after = await task(server, task_id)
        trail = await audit(server, task_id)
    assert refused.status_code == 424
    assert refused.json()["error"] == "VERIFIER_API_KEY_MISSING"
    assert "ANTHROPIC_API_KEY" in refused.json()["message"]
    assert after == before  # same status, version, attempt count
    assert [r["action"] for r in trail] == ["created"]
    assert standin.calls == []


async def test_a_missing_sdk_is_refused_at_submit_naming_the_extra(
    make_server: ServerFactory, standin: ProviderStandIn, tmp_path: Path
) -> None:
    # The server's interpreter cannot import anthropic, as without the extra installed.
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text("import sys\nsys.modules['anthropic'] = None\n")
    with make_server(PYTHONPATH=str(shim)) as server:
        task_id = await create(server, verifier("claude"))
        refused = await answer(server, task_id, {"approved": True, "notes": "ok"})
        after = await task(server, task_id)
    assert refused.status_code == 424
    assert refused.json()["error"] == "VERIFIER_UNAVAILABLE"
    assert 'pip install "awaithumans[verifier-claude]"' in refused.json()["message"]
    assert after["status"] == "created"
    assert standin.calls == []


async def test_key_variables_are_limited_to_an_allowlist(make_server: ServerFactory) -> None:
    with make_server(AWAITHUMANS_VERIFIER_KEY_ENVS="TEAM_CLAUDE_KEY") as server:
        async with admin(server) as http:
            secret = await http.post(
                "/api/tasks", json=body(verifier("claude", api_key_env="AWAITHUMANS_PAYLOAD_KEY"))
            )
            custom = await http.post(
                "/api/tasks", json=body(verifier("claude", api_key_env="TEAM_CLAUDE_KEY"))
            )
    assert secret.status_code == 400
    assert secret.json()["error"] == "VERIFIER_KEY_ENV_NOT_ALLOWED"
    assert "AWAITHUMANS_PAYLOAD_KEY" in secret.json()["message"]
    assert custom.status_code == 201, custom.text


async def test_redacted_payload_is_withheld_from_the_model(
    make_server: ServerFactory, standin: ProviderStandIn
) -> None:
    with make_server() as server:
        task_id = await create(
            server, verifier("gemini"), payload=refund(reason="card 4242 stolen"), redact=True
        )
        await answer(server, task_id, {"approved": True, "notes": "fine"})
        await reaches(server, task_id, "completed")
    (call,) = standin.calls_for("gemini")
    assert "payload" not in call.blocks
    assert "4242" not in call.user
    assert "4242" not in call.system
    assert "payload is redacted" in call.user
