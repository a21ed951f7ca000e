"""Resuming one paused flow run, safely: the relay and the pausing process share this.

Prefect's resume endpoint resumes whatever pause a run is in. A late webhook for an earlier
ask, arriving while the run waits on a later one, would hand the wrong answer to the wrong
question; so the run's current pause must carry the pause key the task was created for.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID

import httpx
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import State, StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

from awaithumans.core._errors import AwaitHumansError


class Resumed(StrEnum):
    """What became of one attempt to resume a run with a task's outcome."""

    RESUMED = "resumed"
    #: The run went past this pause already (a duplicate or late event): nothing to do.
    ALREADY = "already_resumed"
    #: The run has ended, or Prefect does not know it.
    FINISHED = "run_finished"
    #: The run has not reached this pause yet (the human was quicker): try again later.
    NOT_READY = "not_paused_yet"
    #: Prefect's own pause timeout ran out first: the run can no longer be resumed.
    EXPIRED = "pause_expired"
    #: Prefect refused the input (it does not fit the schema the run waits for).
    REJECTED = "input_rejected"


@dataclass(frozen=True)
class ResumeResult:
    outcome: Resumed
    #: Prefect's reason, for refusals.
    reason: str | None = None
    #: Where Prefect keeps the pause's input (schema, description, response), when known.
    keyset: dict[str, str] | None = None


class PrefectUnavailableError(AwaitHumansError):
    """Prefect's API could not be reached or failed; the resume can be tried again."""

    default_code = "PREFECT_UNAVAILABLE"


async def resume_paused_run(
    client: PrefectClient, flow_run_id: UUID, pause_key: str, run_input: dict[str, Any]
) -> ResumeResult:
    """Resume ``flow_run_id`` with ``run_input`` if it waits at ``pause_key``.

    Raises:
        PrefectUnavailableError: Prefect's API is unreachable or answered with a 5xx.
    """
    try:
        return await _resume(client, flow_run_id, pause_key, run_input)
    except ObjectNotFound:
        return ResumeResult(Resumed.FINISHED, "Prefect does not know this flow run")
    except PrefectHTTPStatusError as exc:
        if exc.response.status_code >= 500:
            raise PrefectUnavailableError(f"Prefect answered {exc.response.status_code}") from exc
        raise
    except httpx.TransportError as exc:
        raise PrefectUnavailableError(f"{type(exc).__name__}: {exc}") from exc


def _keyset(state: State) -> dict[str, str] | None:
    keyset = state.state_details.run_input_keyset
    return dict(keyset) if keyset else None


async def _resume(
    client: PrefectClient, flow_run_id: UUID, pause_key: str, run_input: dict[str, Any]
) -> ResumeResult:
    run = await client.read_flow_run(flow_run_id)
    state = run.state
    if state is not None and state.is_paused() and state.state_details.pause_key == pause_key:
        result = await client.resume_flow_run(flow_run_id, run_input=run_input)
        keyset = _keyset(state)
        if result.status == SetStateStatus.ACCEPT:
            return ResumeResult(Resumed.RESUMED, None, keyset)
        reason = getattr(result.details, "reason", None)
        if result.state is not None and result.state.type == StateType.FAILED:
            return ResumeResult(Resumed.EXPIRED, reason)
        if result.status == SetStateStatus.ABORT:
            # Someone else resumed it between our read and our resume.
            return ResumeResult(Resumed.ALREADY, reason, keyset)
        if reason and "schema not found" in reason:
            # Paused a moment ago: the flow saves its input schema right after pausing.
            return ResumeResult(Resumed.NOT_READY, reason)
        return ResumeResult(Resumed.REJECTED, reason)
    if state is None or state.is_final():
        return ResumeResult(Resumed.FINISHED)
    # Running, scheduled, or paused elsewhere: has the run been at this pause before?
    for past in await client.read_flow_run_states(flow_run_id):
        if past.is_paused() and past.state_details.pause_key == pause_key:
            return ResumeResult(Resumed.ALREADY, None, _keyset(past))
    return ResumeResult(Resumed.NOT_READY)
