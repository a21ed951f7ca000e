"""Signalling a workflow with a task's terminal event: shared by the relay and the server."""

from __future__ import annotations

import logging
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from awaithumans.adapters.temporal._shared import METADATA_KEY, SIGNAL_NAME

log = logging.getLogger("awaithumans.temporal")


class NotATemporalEvent(ValueError):
    """The event names no workflow (``data.task_metadata.temporal.workflow_id``)."""


class TemporalUnavailable(Exception):
    """Temporal could not take the signal now; the delivery should be tried again."""


def workflow_target(data: dict[str, Any]) -> tuple[str, str | None]:
    """(workflow id, namespace or None) named by a task event's metadata."""
    meta = data.get("task_metadata")
    temporal = meta.get(METADATA_KEY) if isinstance(meta, dict) else None
    workflow_id = temporal.get("workflow_id") if isinstance(temporal, dict) else None
    if not isinstance(workflow_id, str) or not workflow_id:
        raise NotATemporalEvent("data.task_metadata.temporal.workflow_id required")
    if not isinstance(data.get("task_id"), str):
        raise NotATemporalEvent("data.task_id required")
    assert isinstance(temporal, dict)
    namespace = temporal.get("namespace")
    return workflow_id, namespace if isinstance(namespace, str) else None


async def signal_task_event(client: Client, data: dict[str, Any]) -> dict[str, Any]:
    """Signal ``awaithumans.task_event`` to the workflow the event names.

    Returns a small report. A workflow that finished or never existed is reported, not
    raised: the answer has nobody to go to and retrying will not change that. Other Temporal
    errors raise :class:`TemporalUnavailable` so the caller retries.
    """
    workflow_id, namespace = workflow_target(data)
    if namespace is not None and namespace != client.namespace:
        log.warning("event for namespace %s ignored (serving %s)", namespace, client.namespace)
        return {"delivered": False, "note": f"namespace {namespace!r} is not served here"}
    try:
        await client.get_workflow_handle(workflow_id).signal(SIGNAL_NAME, data)
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            log.info("workflow %s not found for task %s", workflow_id, data.get("task_id"))
            return {"delivered": False, "note": f"workflow {workflow_id!r} not found"}
        raise TemporalUnavailable(exc.message) from exc
    return {"delivered": True, "workflow_id": workflow_id}
