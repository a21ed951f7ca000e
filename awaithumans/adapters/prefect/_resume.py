"""Resuming one paused flow run, safely: the relay and the pausing process share this.

Prefect's resume endpoint resumes whatever pause a run is in. A late webhook for an earlier
ask, arriving while the run waits on a later one, would hand the wrong answer to the wrong
question; so the run's current pause must carry the pause key the task was created for.
"""

from __future__ import annotations

from typing import Any

import httpx
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import State, StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

from awaithumans.adapters._relay import Resumed, ResumeResult
from awaithumans.core._codes import ErrorCode
from awaithumans.core._errors import RetryLaterError
from awaithumans.core._runs import PrefectPause

#: Where Prefect keeps a pause's input (schema, description, response).
Keyset = dict[str, str]


def _unavailable(detail: str) -> RetryLaterError:
    return RetryLaterError(f"Prefect: {detail}", code=ErrorCode.PREFECT_UNAVAILABLE)


def _not_paused_yet(pause: PrefectPause, detail: str | None = None) -> RetryLaterError:
    return RetryLaterError(
        f"Flow run {pause.flow_run_id} is not paused at {pause.pause_key!r} yet"
        + (f" ({detail})" if detail else ""),
        code=ErrorCode.RUN_NOT_PAUSED_YET,
    )


async def resume_paused_run(
    client: PrefectClient, pause: PrefectPause, run_input: dict[str, Any]
) -> tuple[ResumeResult, Keyset | None]:
    """Resume ``pause``'s run with ``run_input`` if it waits at that pause.

    Returns the result and, when known, the pause's input keyset (the pausing process reads
    its input from there at once instead of waiting for Prefect's next poll).

    Raises:
        RetryLaterError: The run has not reached the pause yet (``RUN_NOT_PAUSED_YET``), or
            Prefect's API is unreachable or failed (``PREFECT_UNAVAILABLE``).
    """
    try:
        return await _resume(client, pause, run_input)
    except ObjectNotFound:
        return ResumeResult(Resumed.NOT_WAITING, "Prefect does not know this flow run"), None
    except PrefectHTTPStatusError as exc:
        if exc.response.status_code >= 500:
            raise _unavailable(f"answered {exc.response.status_code}") from exc
        raise
    except httpx.TransportError as exc:
        raise _unavailable(f"{type(exc).__name__}: {exc}") from exc


def _keyset(state: State) -> Keyset | None:
    keyset = state.state_details.run_input_keyset
    return dict(keyset) if keyset else None


async def _resume(
    client: PrefectClient, pause: PrefectPause, run_input: dict[str, Any]
) -> tuple[ResumeResult, Keyset | None]:
    run = await client.read_flow_run(pause.run_uuid)
    state = run.state
    if state is not None and state.is_paused() and state.state_details.pause_key == pause.pause_key:
        result = await client.resume_flow_run(pause.run_uuid, run_input=run_input)
        keyset = _keyset(state)
        if result.status == SetStateStatus.ACCEPT:
            return ResumeResult(Resumed.RESUMED), keyset
        reason = getattr(result.details, "reason", None)
        if result.state is not None and result.state.type == StateType.FAILED:
            return ResumeResult(Resumed.REFUSED, f"the pause expired: {reason}"), None
        if result.status == SetStateStatus.ABORT:
            # Someone else resumed it between our read and our resume.
            return ResumeResult(Resumed.ALREADY, reason), keyset
        if reason and "schema not found" in reason:
            # Paused a moment ago: the flow saves its input schema right after pausing.
            raise _not_paused_yet(pause, reason)
        return ResumeResult(Resumed.REFUSED, f"the input was rejected: {reason}"), None
    if state is None or state.is_final():
        return ResumeResult(Resumed.NOT_WAITING, "the flow run has ended"), None
    # Running, scheduled, or paused elsewhere: has the run been at this pause, and left it?
    history = sorted(await client.read_flow_run_states(pause.run_uuid), key=_when)
    ours = [
        i
        for i, past in enumerate(history)
        if past.is_paused() and past.state_details.pause_key == pause.pause_key
    ]
    if ours and ours[-1] < len(history) - 1:
        return ResumeResult(Resumed.ALREADY), _keyset(history[ours[-1]])
    # Never there yet, or there right now (the run paused between our two reads): soon.
    raise _not_paused_yet(pause)


def _when(state: State) -> float:
    stamp = state.timestamp
    return stamp.timestamp() if stamp is not None else 0.0
