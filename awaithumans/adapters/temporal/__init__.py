"""awaithumans for Temporal: ask a human from a workflow, wait durably, get a typed answer.

In the workflow (import under ``imports_passed_through``, as Temporal recommends for
libraries)::

    with workflow.unsafe.imports_passed_through():
        from awaithumans.adapters.temporal import await_human

    decision = await await_human(task="Approve refund?", ..., callback_url=RELAY_URL)

On the worker: ``Worker(..., plugins=[AwaitHumansPlugin()])``, or register
``activities()`` and ``AwaitHumansInterceptor()`` yourself. The answer comes back as the
``awaithumans.task_event`` signal, sent by the server itself (``AWAITHUMANS_TEMPORAL_ADDRESS``)
or by :func:`relay_app` (``awaithumans relay temporal``) from the server's signed webhooks.
Workflow code is async only, so there is no ``await_human_sync`` here.
"""

from awaithumans.core._extras import require_extra

require_extra("awaithumans.adapters.temporal", "temporalio", "temporal")

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from awaithumans.adapters._relay import Resumed, ResumeResult
    from awaithumans.adapters.temporal._activities import activities, cancel_task, create_task
    from awaithumans.adapters.temporal._shared import CANCEL_ACTIVITY, CREATE_ACTIVITY, SIGNAL_NAME
    from awaithumans.adapters.temporal._worker import (
        PASSTHROUGH_MODULES,
        AwaitHumansInterceptor,
        AwaitHumansPlugin,
    )
    from awaithumans.adapters.temporal._workflow import await_human, to_application_error
    from awaithumans.adapters.temporal.relay import relay_app, resume_from_event
    from awaithumans.core._runs import TemporalWorkflow

__all__ = [
    "CANCEL_ACTIVITY",
    "CREATE_ACTIVITY",
    "PASSTHROUGH_MODULES",
    "SIGNAL_NAME",
    "AwaitHumansInterceptor",
    "AwaitHumansPlugin",
    "ResumeResult",
    "Resumed",
    "TemporalWorkflow",
    "activities",
    "await_human",
    "cancel_task",
    "create_task",
    "relay_app",
    "resume_from_event",
    "to_application_error",
]
