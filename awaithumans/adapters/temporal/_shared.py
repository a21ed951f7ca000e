"""Names and activity arguments shared by the workflow side, the activities and the relay.

Kept free of ``temporalio`` worker imports so the relay and the workflow sandbox can both
import it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: The signal the relay sends and the workflow listens for; its argument is the webhook's
#: ``data`` object (task_id, status, response, ...).
SIGNAL_NAME = "awaithumans.task_event"
CREATE_ACTIVITY = "awaithumans_create_task"
CANCEL_ACTIVITY = "awaithumans_cancel_task"
#: Run as a local activity: checks a completed answer's decision receipt on the worker (and
#: confirms another final outcome a signal brought with the server).
CHECK_RECEIPT_ACTIVITY = "awaithumans_check_receipt"


@dataclass(frozen=True)
class CreateTaskInput:
    """Argument of the create activity.

    Attributes:
        body: The ``CreateTaskRequest`` as JSON, built in the workflow.
        server_url: Explicit server URL; None resolves it in the activity (env, dev file).
        api_key: Explicit credential; None resolves it in the activity. An explicit key is
            recorded in the workflow history, so prefer ``AWAITHUMANS_API_KEY`` on workers.
    """

    body: dict[str, Any]
    server_url: str | None = None
    api_key: str | None = None


@dataclass(frozen=True)
class CancelTaskInput:
    """Argument of the cancel activity."""

    task_id: str
    reason: str
    server_url: str | None = None
    api_key: str | None = None


@dataclass(frozen=True)
class CheckReceiptInput:
    """Argument of the receipt check: a completed answer as the workflow is about to return it.

    Attributes:
        task_id: The task.
        response: The answer the workflow got (signal, or the task read by an activity).
        receipt: The receipt that came with it; None when none came (an older server).
        shown: The hash of what the create sent the person (None without a form).
        status: The outcome's status. A completed answer's receipt is checked; another
            final outcome (timed out, cancelled...) carries no receipt, as the server signs
            answers only, so it is read back from the server and must be the same.
        server_url: Where to read it back (else discovered on the worker).
        api_key: The credential to read it with (else discovered on the worker).
    """

    task_id: str
    response: dict[str, Any] | None
    receipt: dict[str, Any] | None
    shown: str | None = None
    status: str = "completed"
    server_url: str | None = None
    api_key: str | None = None
