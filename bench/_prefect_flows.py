"""The flows ``prefect_resume.py`` measures; self-contained, as the served deployment loads
this file by path."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import flow
from prefect.context import FlowRunContext
from prefect.flow_runs import apause_flow_run
from pydantic import BaseModel

from awaithumans.adapters.prefect import await_human, await_human_sync

# Flow run ids by run number, for the bench in the same process to find its runs.
RUN_IDS: dict[int, UUID] = {}


class Refund(BaseModel):
    order_id: str
    amount_usd: float


class Decision(BaseModel):
    approved: bool
    notes: str | None = None


def _ask(i: int) -> dict[str, Any]:
    return {
        "task": f"Refund order ord_{i:06d}?",
        "payload_schema": Refund,
        "payload": Refund(order_id=f"ord_{i:06d}", amount_usd=10 + i),
        "response_schema": Decision,
        "timeout_seconds": 3600,
    }


def _remember(i: int) -> None:
    context = FlowRunContext.get()
    assert context is not None
    assert context.flow_run is not None
    RUN_IDS[i] = context.flow_run.id


@flow
async def paused_refund(i: int, poll_interval: float) -> float:
    """Returns when (perf_counter) the flow was running again after the answer."""
    _remember(i)
    await await_human(**_ask(i), poll_interval=poll_interval)
    return time.perf_counter()


@flow
async def bare_pause(i: int, poll_interval: float) -> float:
    """Prefect alone: the same wait as a bare pause, resumed through Prefect's API."""
    _remember(i)
    await apause_flow_run(wait_for_input=Decision, timeout=3600, poll_interval=int(poll_interval))
    return time.perf_counter()


@flow
def suspended_refund(i: int, callback_url: str, out: str) -> None:
    """Writes the wall-clock time at which the re-run flow had the answer in hand."""
    await_human_sync(**_ask(i), suspend=True, callback_url=callback_url)
    Path(out).write_text(repr(time.time()))
