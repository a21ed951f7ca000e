"""awaithumans for Prefect: ``await_human`` pauses or suspends a flow run until answered.

In a flow::

    from awaithumans.adapters.prefect import await_human_sync

    @flow
    def refund(order_id: str) -> None:
        decision = await_human_sync(task=..., payload_schema=..., payload=...,
                                    response_schema=RefundDecision, timeout_seconds=3600)

(``await await_human(...)`` in ``async def`` flows.) The run shows as Paused in Prefect,
waiting for a ``RefundDecisionInput`` input; the human answers in awaithumans (or in
Prefect's UI) and the run goes on. With ``suspend=True`` the process exits while waiting;
the server (``AWAITHUMANS_PREFECT_API_URL``) or :func:`relay_app` (``awaithumans relay
prefect``, the task's ``callback_url``) resumes the run, which Prefect then runs again from
its deployment.
"""

from awaithumans.core._extras import require_extra

require_extra("awaithumans.adapters.prefect", "prefect", "prefect")

from awaithumans.adapters._relay import Resumed, ResumeResult
from awaithumans.adapters.prefect._flow import (
    PAUSE_GRACE_SECONDS,
    await_human,
    await_human_sync,
)
from awaithumans.adapters.prefect._shared import decision_model
from awaithumans.adapters.prefect.relay import relay_app, resume_from_event
from awaithumans.core._runs import PrefectPause

__all__ = [
    "PAUSE_GRACE_SECONDS",
    "PrefectPause",
    "ResumeResult",
    "Resumed",
    "await_human",
    "await_human_sync",
    "decision_model",
    "relay_app",
    "resume_from_event",
]
