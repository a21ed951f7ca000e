"""An answer a verifier passes gets its receipt when the verdict completes the task.

The receipt names the person whose answer passed (not the verifier) and the channel they
answered through; a rejected attempt gets none. ``await_human`` with the server's key
configured returns the verified answer after checking that receipt.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from awaithumans import verify_receipt
from awaithumans.core._receipts import PUBLIC_KEY_ENV, sha256_of
from tests.verifiers._helpers import Decision, answer, ask_refund, reaches, task, verifier
from tests.verifiers.conftest import ServerFactory


async def test_a_verified_answer_carries_the_answerers_receipt(
    make_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWAITHUMANS_QUIET", "1")
    with make_server() as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            keys = (await http.get("/api/receipts/public-keys")).json()["keys"]
        monkeypatch.setenv(PUBLIC_KEY_ENV, keys[0]["public_key"])
        waiting, task_id = await ask_refund(server, verifier("claude"))
        # The stand-in rejects an answer without notes, then passes one with.
        await answer(server, task_id, {"approved": True})
        rejected = await reaches(server, task_id, "rejected")
        await answer(server, task_id, {"approved": True, "notes": "charged twice"})
        done = await reaches(server, task_id, "completed")
        decision = await asyncio.wait_for(waiting, 20)
        again = await task(server, task_id)

    assert rejected["receipt"] is None
    assert decision == Decision(approved=True, notes="charged twice")
    verified = verify_receipt(done["receipt"], keys[0]["public_key"])
    assert (verified.answered_by_id, verified.channel) == ("admin", "api")
    assert verified.response_sha256 == sha256_of(done["response"])
    assert verified.at.isoformat().replace("+00:00", "Z") == done["completed_at"]
    assert again["receipt"] == done["receipt"]
