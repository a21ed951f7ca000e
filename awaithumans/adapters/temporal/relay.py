"""The relay: the awaithumans server's signed webhooks in, Temporal signals out.

For every verified ``task.*`` event it signals ``awaithumans.task_event`` to the workflow
named in ``data.task_metadata.temporal``. The server's direct delivery
(``AWAITHUMANS_TEMPORAL_ADDRESS``) calls the same :func:`resume_from_event`. It answers as
every relay does (see ``awaithumans.adapters``): 200 done (also for a workflow that has
ended: the answer has nobody to go to), 400/401 a bad request, 503 Temporal unreachable.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from awaithumans.adapters._relay import ASGIApp, Resumed, ResumeResult, relay_asgi, webhook_data
from awaithumans.adapters.temporal._shared import SIGNAL_NAME
from awaithumans.core._codes import ErrorCode
from awaithumans.core._errors import RetryLaterError
from awaithumans.core._runs import TemporalWorkflow, final_status

log = logging.getLogger("awaithumans.relay.temporal")


async def resume_from_event(client: Client, event: Any) -> ResumeResult:
    """Signal ``awaithumans.task_event`` to the workflow an awaithumans webhook names.

    Args:
        client: A connected Temporal client; only workflows of its namespace are signalled.
        event: The webhook's ``data`` object (or the whole webhook body).

    Returns:
        ``RESUMED`` once the signal is recorded; ``NOT_WAITING`` for a workflow that has
        ended or never existed, or that lives in another namespace (retrying cannot help).
        The workflow keeps the first outcome per task, so duplicates are harmless.

    Raises:
        NotOurEventError: The event names no task or workflow, or is not a final outcome.
        RetryLaterError: Temporal did not take the signal (``TEMPORAL_UNAVAILABLE``).
    """
    data = webhook_data(event)
    task_id, workflow = TemporalWorkflow.from_event(data)
    final_status(data)
    if workflow.namespace is not None and workflow.namespace != client.namespace:
        log.warning("event for namespace %s ignored (serving %s)", workflow.namespace,
                    client.namespace)  # fmt: skip
        return ResumeResult(
            Resumed.NOT_WAITING, f"namespace {workflow.namespace!r} is not served here"
        )
    try:
        await client.get_workflow_handle(workflow.workflow_id).signal(SIGNAL_NAME, data)
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            log.info("workflow %s not found for task %s", workflow.workflow_id, task_id)
            return ResumeResult(Resumed.NOT_WAITING, f"workflow {workflow.workflow_id!r} not found")
        raise RetryLaterError(
            f"Temporal: {exc.message}", code=ErrorCode.TEMPORAL_UNAVAILABLE
        ) from exc
    return ResumeResult(Resumed.RESUMED)


def relay_app(client: Client | Callable[[], Awaitable[Client]], webhook_secret: str) -> ASGIApp:
    """Build the relay's ASGI app.

    Args:
        client: A connected Temporal client (its namespace is the one signalled), or an
            async factory called once at the first request, for servers that own the loop.
        webhook_secret: The ``whsec_...`` secret printed by ``awaithumans webhook-secret``.

    Returns:
        An ASGI application; ``POST`` any path with a webhook, ``GET /healthz`` to probe.
    """
    connected: list[Client] = [client] if isinstance(client, Client) else []

    async def temporal() -> Client:
        if not connected:
            assert not isinstance(client, Client)
            connected.append(await client())
        return connected[0]

    async def resume(data: dict[str, Any]) -> ResumeResult:
        return await resume_from_event(await temporal(), data)

    return relay_asgi(webhook_secret, resume)
