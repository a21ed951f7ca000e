"""What a resume into a workflow engine means for the outbox row that carried it."""

from __future__ import annotations

from awaithumans.adapters import Resumed, ResumeResult
from awaithumans.server.services.delivery import Outcome


def delivery_outcome(engine: str, result: ResumeResult) -> Outcome:
    """Resumed: delivered. Refused: failed for good. Already resumed, or no run waits: done,
    with nothing to deliver (retrying cannot change that)."""
    if result.outcome is Resumed.RESUMED:
        return Outcome.ok()
    if result.outcome is Resumed.REFUSED:
        return Outcome.fail(f"{engine} refused: {result.reason or 'no reason given'}", retry=False)
    return Outcome.skip(result.reason or result.outcome.value)
