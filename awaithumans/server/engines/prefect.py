"""Direct delivery into Prefect: the server resumes waiting flow runs itself.

With ``AWAITHUMANS_PREFECT_API_URL`` set, a task that a paused or suspended flow run waits
on (its metadata names the run and the pause) resumes that run straight from the server's
outbox, with the same retries as a webhook; no relay needs to run. Needs the ``prefect``
extra on the server.
"""

from __future__ import annotations

from datetime import UTC, datetime

from awaithumans.core import NotOurEventError, RetryLaterError
from awaithumans.server.engines.resumes import delivery_outcome
from awaithumans.server.engines.webhook import webhook_body
from awaithumans.server.services.delivery import Job, Outcome

NAME = "prefect"


class PrefectResumer:
    """Resumes the flow run of each terminal event of a Prefect task, if it waits for it."""

    name = NAME

    def __init__(self, api_url: str, api_key: str | None = None) -> None:
        self._api_url = api_url
        self._api_key = api_key

    async def deliver(self, job: Job) -> Outcome:
        from prefect.client.orchestration import PrefectClient

        from awaithumans.adapters.prefect import resume_from_event

        data = webhook_body(job, datetime.now(UTC))["data"]
        try:
            async with PrefectClient(self._api_url, api_key=self._api_key) as client:
                result = await resume_from_event(client, data)
        except NotOurEventError as exc:
            return Outcome.skip(exc.message)
        except (RetryLaterError, OSError) as exc:
            return Outcome.fail(f"prefect: {exc}")
        return delivery_outcome(NAME, result)

    async def aclose(self) -> None:
        return None


def prefect_available() -> bool:
    try:
        import prefect  # noqa: F401
    except ImportError:
        return False
    return True
