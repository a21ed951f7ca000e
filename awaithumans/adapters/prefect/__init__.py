"""awaithumans for Prefect: ``await_human`` pauses or suspends a flow run until answered.

In a flow::

    from awaithumans.adapters.prefect import await_human

    @flow
    def refund(order_id: str) -> None:
        decision = await_human(task=..., payload_schema=..., payload=...,
                               response_schema=RefundDecision, timeout_seconds=3600)

The run shows as Paused in Prefect, waiting for a ``RefundDecisionInput`` input; the
human answers in awaithumans (or in Prefect's UI) and the run goes on. With
``suspend=True`` the process exits while waiting; the server (``AWAITHUMANS_PREFECT_API_URL``)
or ``awaithumans relay prefect`` (the task's ``callback_url``) resumes the run, which Prefect
then runs again from its deployment. The relay's pieces: :mod:`.relay`.
"""

from __future__ import annotations

try:
    import prefect  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    raise ImportError(
        'awaithumans.adapters.prefect needs Prefect: pip install "awaithumans[prefect]"'
    ) from exc

from awaithumans.adapters.prefect._flow import PAUSE_GRACE_SECONDS, await_human, await_human_async
from awaithumans.adapters.prefect._resume import PrefectUnavailableError, Resumed, ResumeResult
from awaithumans.adapters.prefect._shared import METADATA_KEY, decision_model

__all__ = [
    "METADATA_KEY",
    "PAUSE_GRACE_SECONDS",
    "PrefectUnavailableError",
    "ResumeResult",
    "Resumed",
    "await_human",
    "await_human_async",
    "decision_model",
]
