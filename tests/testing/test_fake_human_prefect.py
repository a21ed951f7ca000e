"""The fake human with the Prefect adapter: a flow run in this process pauses on its ask
and goes on with the fake human's answer (a real Prefect server, the session's)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from awaithumans.testing.fake_human import FakeHuman
from awaithumans.testing.prefect import PrefectServer
from tests.adapters.prefect.flows import Approval, refund_flow

pytestmark = pytest.mark.e2e


async def test_a_paused_flow_gets_the_fake_humans_answer(
    prefect_server: PrefectServer, fake_human: FakeHuman
) -> None:
    fake_human.answer(title_contains="Refund 40", with_=Approval(approved=True, note="fine"))
    fake_human.reject(title_contains="Refund 41")
    approved, refused = await asyncio.wait_for(
        asyncio.gather(
            refund_flow(f"f-{uuid.uuid4().hex[:8]}", 40),
            refund_flow(f"f-{uuid.uuid4().hex[:8]}", 41),
        ),
        120,
    )
    assert approved == {"outcome": "answered", "approved": True, "note": "fine"}
    assert refused == {"outcome": "answered", "approved": False, "note": ""}
    assert sorted(a.outcome for a in fake_human.asked) == ["answered", "rejected"]
