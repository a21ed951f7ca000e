"""Direct delivery into Temporal: the server signals waiting workflows itself.

With ``AWAITHUMANS_TEMPORAL_ADDRESS`` set, a task that a Temporal workflow is waiting on
(its metadata names the workflow) is answered by a signal straight from the server's
outbox, with the same retries as a webhook; no relay needs to run. Needs the ``temporal``
extra on the server.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from awaithumans.core import NotOurEventError, RetryLaterError
from awaithumans.server.engines.resumes import delivery_outcome
from awaithumans.server.engines.webhook import webhook_body
from awaithumans.server.services.delivery import Job, Outcome

NAME = "temporal"


class TemporalSignaler:
    """Signals ``awaithumans.task_event`` for each terminal event of a Temporal task."""

    name = NAME

    def __init__(self, address: str, namespace: str) -> None:
        self._address = address
        self._namespace = namespace
        self._client: Any = None
        self._lock = asyncio.Lock()

    async def _connect(self) -> Any:
        async with self._lock:
            if self._client is None:
                from temporalio.client import Client

                self._client = await Client.connect(self._address, namespace=self._namespace)
            return self._client

    async def deliver(self, job: Job) -> Outcome:
        from awaithumans.adapters.temporal import resume_from_event

        data = webhook_body(job, datetime.now(UTC))["data"]
        try:
            client = await self._connect()
            result = await resume_from_event(client, data)
        except NotOurEventError as exc:
            return Outcome.skip(exc.message)
        except (RetryLaterError, OSError, RuntimeError) as exc:
            return Outcome.fail(f"temporal: {exc}")
        return delivery_outcome(NAME, result)

    async def aclose(self) -> None:
        self._client = None


def temporal_available() -> bool:
    try:
        import temporalio  # noqa: F401
    except ImportError:
        return False
    return True
