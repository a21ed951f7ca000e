"""Run the refund workflow's worker until Ctrl-C.

    python worker.py

``TEMPORAL_ADDRESS`` (default ``localhost:7233``) and ``TASK_QUEUE`` (default ``refunds``)
say where to poll. The awaithumans server is found like the SDK finds it everywhere else:
``AWAITHUMANS_URL`` and ``AWAITHUMANS_API_KEY``, or the ``awaithumans dev`` server started
from this directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

from temporalio.client import Client
from temporalio.worker import Worker
from workflow import RefundWorkflow, issue_refund

from awaithumans.adapters.temporal import AwaitHumansPlugin

TEMPORAL_ADDRESS = os.environ.get("TEMPORAL_ADDRESS", "localhost:7233")
TASK_QUEUE = os.environ.get("TASK_QUEUE", "refunds")


async def main() -> None:
    client = await Client.connect(TEMPORAL_ADDRESS)
    worker = Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[RefundWorkflow],
        activities=[issue_refund],
        # Adds await_human's activities, its error handling and the sandbox settings.
        plugins=[AwaitHumansPlugin()],
    )
    print(f"Worker polling {TASK_QUEUE!r} on {TEMPORAL_ADDRESS}", flush=True)
    await worker.run()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
