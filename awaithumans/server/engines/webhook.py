"""Signed webhooks (Standard Webhooks) for task events, posted to ``callback_url``.

The way back into any workflow engine: a relay (``awaithumans relay temporal``), a
LangGraph resumer or a Prefect relay receives the event and resumes the waiting run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import httpx
from standardwebhooks.webhooks import Webhook

from awaithumans.server.security.outbound import OutboundRefused, guarded_client
from awaithumans.server.services.delivery import Job, Outcome, retry_after_seconds
from awaithumans.server.services.views import default_applied
from awaithumans.server.settings import AllowPrivateCallbacks

# The receiver has looked at the request and refused it: the same signed body sent again
# gets the same answer (a wrong URL, a secret it does not accept, an event it cannot
# parse, an endpoint that is gone). Recorded as failed at once, not retried for a day; an
# operator who fixes the receiver sends it again with "redeliver".
FINAL_STATUSES = frozenset({400, 401, 403, 404, 410, 422})
# Everything else that is not 2xx is retried with the outbox's backoff until the attempt
# limit: timeouts, conflicts and "too early" (408, 409, 425), rate limits (429) and server
# errors (5xx) pass, and an answer nobody classified is not worth losing an event over.


def webhook_body(job: Job, now: datetime) -> dict[str, object]:
    """The event as a receiver (a relay into Temporal, LangGraph or Prefect) gets it."""
    task = job.task
    return {
        "type": job.event,
        "timestamp": now.isoformat(),
        "data": {
            "task_id": job.task_id,
            "idempotency_key": task.idempotency_key,
            "status": task.status.value,
            "response": job.response,
            # Timed out with the task's on_timeout default as its response.
            "default_applied": default_applied(task.status, job.response),
            "completed_at": _iso(task.completed_at),
            "timed_out_at": _iso(task.timed_out_at),
            "verification_attempt": task.verification_attempt,
            "completed_by_email": task.completed_by_email,
            "completed_via_channel": task.completed_via_channel,
            "task_metadata": task.task_metadata,
            # The final decision's signed receipt: a receiver can keep it as proof of who
            # decided what, and check it offline (``awaithumans.verify_receipt``).
            "receipt": task.receipt,
            # A task decided by several approvers: every vote (the SDK's approvals_of).
            "approvals": [a.model_dump(mode="json") for a in job.approvals],
        },
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class WebhookSender:
    """Posts one signed event per job.

    2xx is delivered; :data:`FINAL_STATUSES` fail for good; any other answer and any
    network error is retried, not before the receiver's ``Retry-After`` (capped).
    """

    name = "webhook"

    def __init__(
        self,
        secret: str | Sequence[str],
        *,
        timeout: float = 10.0,
        allow_private: AllowPrivateCallbacks = "none",
    ) -> None:
        # Several secrets while the payload key rotates (webhook_secret.webhook_secrets):
        # one signature each, space-separated, as Standard Webhooks allows.
        self._signers = [Webhook(s) for s in ([secret] if isinstance(secret, str) else secret)]
        # The URL is the task author's: every connect is checked (no SSRF into the
        # operator's network, security/outbound.py), and redirects are not followed, as
        # they could bounce a signed body to a host the author never named.
        self._http = guarded_client(allow_private, timeout=timeout)

    async def deliver(self, job: Job) -> Outcome:
        now = datetime.now(UTC)
        body = json.dumps(webhook_body(job, now), separators=(",", ":"))
        headers = {
            "content-type": "application/json",
            "webhook-id": job.event_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": " ".join(s.sign(job.event_id, now, body) for s in self._signers),
            "user-agent": "awaithumans-webhooks",
        }
        try:
            resp = await self._http.post(job.target, content=body, headers=headers)
        except OutboundRefused as exc:
            # Final: the address will not become public by waiting (and a name that
            # resolves to it again later is refused again).
            return Outcome.fail(f"callback_url refused: {exc}", retry=False)
        except httpx.InvalidURL as exc:
            # Checked at create, but no URL parser agrees with every other on every input.
            return Outcome.fail(f"callback_url is not a URL httpx can send to: {exc}", retry=False)
        except httpx.HTTPError as exc:
            return Outcome.fail(f"{type(exc).__name__}: {exc}")
        status = resp.status_code
        if 200 <= status < 300:
            return Outcome.ok(status)
        final = status in FINAL_STATUSES
        return Outcome.fail(
            f"HTTP {status}: {resp.text[:200]}",
            status_code=status,
            retry=not final,
            retry_after=None if final else retry_after_seconds(resp.headers.get("retry-after")),
        )

    async def aclose(self) -> None:
        await self._http.aclose()
