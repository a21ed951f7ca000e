"""Signed webhooks (Standard Webhooks) for task events, posted to ``callback_url``.

The way back into any workflow engine: a relay (``awaithumans relay temporal``), a
LangGraph resumer or a Prefect relay receives the event and resumes the waiting run.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
from standardwebhooks.webhooks import Webhook

from awaithumans.server.services.delivery import Job, Outcome

# Redirects could bounce a signed body to a host the task's author never named.
_FOLLOW_REDIRECTS = False


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
            "completed_at": _iso(task.completed_at),
            "timed_out_at": _iso(task.timed_out_at),
            "verification_attempt": task.verification_attempt,
            "completed_by_email": task.completed_by_email,
            "completed_via_channel": task.completed_via_channel,
            "task_metadata": task.task_metadata,
        },
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class WebhookSender:
    """Posts one signed event per job; 2xx is delivered, 410 is final, the rest retried."""

    name = "webhook"

    def __init__(self, secret: str, *, timeout: float = 10.0) -> None:
        self._signer = Webhook(secret)
        self._http = httpx.AsyncClient(timeout=timeout, follow_redirects=_FOLLOW_REDIRECTS)

    async def deliver(self, job: Job) -> Outcome:
        now = datetime.now(UTC)
        body = json.dumps(webhook_body(job, now), separators=(",", ":"))
        headers = {
            "content-type": "application/json",
            "webhook-id": job.event_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self._signer.sign(job.event_id, now, body),
            "user-agent": "awaithumans-webhooks",
        }
        try:
            resp = await self._http.post(job.target, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return Outcome.fail(f"{type(exc).__name__}: {exc}")
        if 200 <= resp.status_code < 300:
            return Outcome.ok(resp.status_code)
        # 410 Gone: the receiver says this will never succeed.
        return Outcome.fail(
            f"HTTP {resp.status_code}: {resp.text[:200]}",
            status_code=resp.status_code,
            retry=resp.status_code != 410,
        )

    async def aclose(self) -> None:
        await self._http.aclose()
