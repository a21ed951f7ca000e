"""The relay: the awaithumans server's signed webhooks in, Prefect resumes out.

For every verified ``task.*`` event it resumes the flow run named in
``data.task_metadata.prefect`` with the task's outcome as the run input, if the run waits
at that task's pause. It answers as every relay does (see ``awaithumans.adapters``): 200
done (also a late or duplicate event, which changes nothing), 400/401 a bad request, 410
Prefect refused the resume for good (its pause timed out, or the input does not fit), 503
try again later (the run has not paused yet, or Prefect is unreachable).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from prefect.client.orchestration import PrefectClient

from awaithumans.adapters._relay import ASGIApp, ResumeResult, relay_asgi, webhook_data
from awaithumans.adapters.prefect._resume import resume_paused_run
from awaithumans.adapters.prefect._shared import run_input_from_event
from awaithumans.core._runs import PrefectPause, final_status

ClientFactory = Callable[[], AbstractAsyncContextManager[PrefectClient]]


async def resume_from_event(client: PrefectClient, event: Any) -> ResumeResult:
    """Resume the flow run an awaithumans webhook reports on, if it waits for that task.

    Args:
        client: A Prefect client (``prefect.get_client()`` reads Prefect's settings).
        event: The webhook's ``data`` object (or the whole webhook body).

    Returns:
        ``RESUMED``; ``ALREADY`` (a duplicate or late event); ``NOT_WAITING`` (the run has
        ended, or Prefect does not know it); ``REFUSED`` (the pause expired, or Prefect
        rejected the input), with Prefect's reason.

    Raises:
        NotOurEventError: The event names no flow run and pause, or is not a final outcome.
        RetryLaterError: The run has not paused yet, or Prefect is unreachable.
    """
    data = webhook_data(event)
    _task_id, pause = PrefectPause.from_event(data)
    final_status(data)
    result, _keyset = await resume_paused_run(client, pause, run_input_from_event(data))
    return result


def relay_app(client_factory: ClientFactory, webhook_secret: str) -> ASGIApp:
    """Build the relay's ASGI app.

    Args:
        client_factory: Opens a Prefect client per event, e.g. ``prefect.get_client``
            (Prefect's own settings, ``PREFECT_API_URL`` and ``PREFECT_API_KEY``).
        webhook_secret: The ``whsec_...`` secret printed by ``awaithumans webhook-secret``.

    Returns:
        An ASGI application; ``POST`` any path with a webhook, ``GET /healthz`` to probe.
    """

    async def resume(data: dict[str, Any]) -> ResumeResult:
        async with client_factory() as client:
            return await resume_from_event(client, data)

    return relay_asgi(webhook_secret, resume)
