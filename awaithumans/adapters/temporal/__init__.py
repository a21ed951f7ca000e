"""awaithumans for Temporal: ask a human from a workflow, wait durably, get a typed answer.

In the workflow (import under ``imports_passed_through``, as Temporal recommends for
libraries)::

    with workflow.unsafe.imports_passed_through():
        from awaithumans.adapters.temporal import await_human

    answer = await await_human(task="Approve refund?", ..., callback_url=RELAY_URL)

On the worker: ``Worker(..., plugins=[AwaitHumansPlugin()])``, or register
``activities()`` and ``AwaitHumansInterceptor()`` yourself. Run ``awaithumans relay
temporal`` where the awaithumans server can reach it; it turns the server's signed webhooks
into the ``awaithumans.task_event`` signal that wakes the workflow.
"""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from awaithumans.adapters.temporal._activities import activities, cancel_task, create_task
    from awaithumans.adapters.temporal._shared import (
        CANCEL_ACTIVITY,
        CREATE_ACTIVITY,
        METADATA_KEY,
        SIGNAL_NAME,
    )
    from awaithumans.adapters.temporal._worker import (
        PASSTHROUGH_MODULES,
        AwaitHumansInterceptor,
        AwaitHumansPlugin,
    )
    from awaithumans.adapters.temporal._workflow import await_human, to_application_error

__all__ = [
    "CANCEL_ACTIVITY",
    "CREATE_ACTIVITY",
    "METADATA_KEY",
    "PASSTHROUGH_MODULES",
    "SIGNAL_NAME",
    "AwaitHumansInterceptor",
    "AwaitHumansPlugin",
    "activities",
    "await_human",
    "cancel_task",
    "create_task",
    "to_application_error",
]
