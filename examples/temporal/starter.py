"""Start one refund workflow, wait for the reviewer, print the outcome.

    python starter.py [--order-id ord_1042]

``TEMPORAL_ADDRESS`` (default ``localhost:7233``), ``TASK_QUEUE`` (default ``refunds``) and
``RELAY_URL`` (default ``http://localhost:8088/``, where ``awaithumans relay temporal``
listens) can be changed by environment.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid

from temporalio.client import Client
from workflow import RefundInput, RefundWorkflow

TEMPORAL_ADDRESS = os.environ.get("TEMPORAL_ADDRESS", "localhost:7233")
TASK_QUEUE = os.environ.get("TASK_QUEUE", "refunds")
RELAY_URL = os.environ.get("RELAY_URL", "http://localhost:8088/")


async def main(order_id: str) -> None:
    client = await Client.connect(TEMPORAL_ADDRESS)
    handle = await client.start_workflow(
        RefundWorkflow.run,
        RefundInput(
            order_id=order_id,
            customer_id="cus_demo",
            amount_usd=250,
            reason="Charged twice",
            callback_url=RELAY_URL,
        ),
        # One workflow per order: starting it twice for the same order is refused.
        id=f"refund-{order_id}",
        task_queue=TASK_QUEUE,
    )
    print(f"Started workflow {handle.id}; answer the task in the awaithumans dashboard.")
    print(await handle.result(), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Start one refund workflow and print its outcome.")
    parser.add_argument("--order-id", default=f"ord_{uuid.uuid4().hex[:6]}")
    asyncio.run(main(parser.parse_args().order_id))
    # A short-lived Temporal client process can abort while the interpreter finalizes
    # ("PyGILState_Release: thread state ... must be current", temporalio/sdk-python#300):
    # the SDK's Rust threads outlive Python. Everything is printed and flushed, so leave
    # without the teardown.
    sys.stdout.flush()
    os._exit(0)
