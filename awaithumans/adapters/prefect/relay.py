"""The relay: the awaithumans server's signed webhooks in, Prefect resumes out.

For every verified ``task.*`` event it resumes the flow run named in
``data.task_metadata.prefect`` with the task's outcome as the run input, if the run waits
at that task's pause. Status codes tell the server's delivery queue what to do: 200 done
(also a late or duplicate event, which changes nothing), 400/401 a bad request, 410 Prefect
refused the resume for good (its pause timed out, or the input does not fit), 503 try again
later (the run has not paused yet, or Prefect is unreachable).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any
from uuid import UUID

from prefect.client.orchestration import PrefectClient, get_client

from awaithumans.adapters._events import webhook_data
from awaithumans.adapters._webhook_app import ASGIApp, Reply, webhook_app
from awaithumans.adapters.prefect._resume import (
    PrefectUnavailableError,
    Resumed,
    ResumeResult,
    resume_paused_run,
)
from awaithumans.adapters.prefect._shared import METADATA_KEY, run_input_from_event

log = logging.getLogger("awaithumans.relay.prefect")

ClientFactory = Callable[[], AbstractAsyncContextManager[PrefectClient]]


class NotAPrefectEvent(ValueError):
    """The event names no flow run: the task was not created by the Prefect adapter."""


def _target(data: dict[str, Any]) -> tuple[UUID, str]:
    meta = data.get("task_metadata")
    where = meta.get(METADATA_KEY) if isinstance(meta, dict) else None
    if not isinstance(where, dict) or not isinstance(data.get("task_id"), str):
        raise NotAPrefectEvent("data.task_id and data.task_metadata.prefect required")
    try:
        run_id = UUID(str(where.get("flow_run_id")))
    except ValueError:
        raise NotAPrefectEvent("data.task_metadata.prefect.flow_run_id is not a UUID") from None
    key = where.get("pause_key")
    if not isinstance(key, str):
        raise NotAPrefectEvent("data.task_metadata.prefect.pause_key required")
    if data.get("status") not in ("completed", "cancelled", "timed_out", "verification_exhausted"):
        raise NotAPrefectEvent(f"status {data.get('status')!r} is not a final outcome")
    return run_id, key


async def resume_from_event(event_data: Any, client: PrefectClient | None = None) -> ResumeResult:
    """Resume the flow run an awaithumans webhook reports on, if it waits for that task.

    Args:
        event_data: The webhook's ``data`` object (or the whole webhook body).
        client: A Prefect client; by default one from Prefect's settings.

    Returns:
        What happened (``outcome``, see :class:`Resumed`) and Prefect's reason for a refusal.

    Raises:
        NotAPrefectEvent: The event does not name a flow run and pause.
        PrefectUnavailableError: Prefect's API is unreachable; try again later.
    """
    try:
        data = webhook_data(event_data)
    except ValueError as exc:
        raise NotAPrefectEvent(str(exc)) from None
    run_id, key = _target(data)
    run_input = run_input_from_event(data)
    if client is not None:
        return await resume_paused_run(client, run_id, key, run_input)
    # Prefect's own settings (PREFECT_API_URL, PREFECT_API_KEY) say where the API is.
    async with get_client() as own:
        return await resume_paused_run(own, run_id, key, run_input)


def relay_app(webhook_secret: str, client_factory: ClientFactory | None = None) -> ASGIApp:
    """Build the relay's ASGI app.

    Args:
        webhook_secret: The ``whsec_...`` secret printed by ``awaithumans webhook-secret``.
        client_factory: Opens a Prefect client per event (default: from Prefect's settings).

    Returns:
        An ASGI application; ``POST`` any path with a webhook, ``GET /healthz`` to probe.
    """
    factory: ClientFactory = client_factory or get_client

    async def on_event(data: dict[str, Any]) -> dict[str, Any]:
        try:
            async with factory() as client:
                result = await resume_from_event(data, client)
        except NotAPrefectEvent as exc:
            raise Reply(400, {"error": str(exc)}) from None
        except PrefectUnavailableError as exc:
            raise Reply(503, {"error": f"prefect: {exc.message}"}) from None
        outcome, reason = result.outcome, result.reason
        body: dict[str, Any] = {"resumed": outcome is Resumed.RESUMED, "outcome": outcome.value}
        if reason:
            body["reason"] = reason
        if outcome is Resumed.NOT_READY:
            raise Reply(503, body)
        if outcome in (Resumed.EXPIRED, Resumed.REJECTED):
            log.warning("Prefect refused to resume for task %s: %s", data["task_id"], reason)
            raise Reply(410, body)
        return body

    return webhook_app(webhook_secret, on_event)
