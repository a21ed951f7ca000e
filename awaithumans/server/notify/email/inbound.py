"""The two doors replies come in by; both hand the raw mail to :class:`.Replies`.

* ``POST /api/channels/email/inbound``: the raw RFC 822 message as the body, for a
  provider's inbound webhook or an MTA's pipe, with ``Authorization: Bearer
  <AWAITHUMANS_EMAIL_INBOUND_SECRET>``. Off (404) until that secret is set.
* A small SMTP receiver on ``AWAITHUMANS_EMAIL_INBOUND_SMTP_PORT`` (``awaithumans serve
  --smtp-inbound-port``), aiosmtpd on the server's own event loop. It accepts mail for the
  reply addresses it signed and refuses every other recipient at ``RCPT``: it is nobody's
  relay.

Either door acknowledges once the answer is stored (the reply's ``later`` work, waiting
for the verdict and mailing back, runs after): a provider or MTA is never kept waiting on
a model, and a mail acknowledged is a mail handled.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import APIRouter, BackgroundTasks, Request

from awaithumans.core._codes import ErrorCode
from awaithumans.server.context import ServerContext
from awaithumans.server.errors import ApiError
from awaithumans.server.notify.email.replies import Received, Replies
from awaithumans.server.services.replies import Later

log = logging.getLogger("awaithumans.server.email")

NULL_SENDER = "<>"


async def logged(later: Later) -> None:
    """Run a reply's follow-up; a failure is logged (the answer itself is already stored,
    only the note back is lost)."""
    try:
        await later()
    except Exception:
        log.exception("email reply: the note back failed")


def inbound_router(ctx: ServerContext, replies: Replies) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.post("/inbound")
    async def inbound(request: Request, background: BackgroundTasks) -> dict[str, Any]:
        secret = ctx.settings.email.inbound_secret
        if secret is None:
            raise ApiError(
                404,
                ErrorCode.NOT_FOUND,
                "Inbound mail is off: set AWAITHUMANS_EMAIL_INBOUND_SECRET.",
            )
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), secret.get_secret_value().encode()):
            raise ApiError(401, ErrorCode.UNAUTHORIZED, "A wrong or missing inbound secret.")
        raw = await request.body()
        if not raw.strip():
            raise ApiError(400, ErrorCode.BAD_REQUEST, "The body must be the raw mail (RFC 822).")
        result = await replies.receive(raw)
        if result.later is not None:
            background.add_task(logged, result.later)
        return {"status": result.status, "detail": result.detail, "task_id": result.task_id}

    return router


class SmtpInbound:
    """The built-in SMTP receiver of replies (see the module docstring)."""

    def __init__(self, replies: Replies, host: str, port: int) -> None:
        self._replies = replies
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._later: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self, hostname="awaithumans", ident="awaithumans"),
            self._host,
            self._port,
        )
        log.info("email replies: SMTP on %s:%s", self._host, self._port)

    # aiosmtpd handler hooks ---------------------------------------------------------------

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self._replies.addressed(address) is None:
            return "550 5.1.1 Not a reply address of this server"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        assert isinstance(raw, bytes)
        try:
            result: Received = await self._replies.receive(
                raw, list(envelope.rcpt_tos), "" if envelope.mail_from == NULL_SENDER else None
            )
        except Exception:  # a fault of ours: the sender's server keeps it and tries again
            log.exception("email reply not handled")
            return "451 4.3.0 Not handled, try again later"
        if result.later is not None:
            self._run(result.later)
        return "250 OK"

    def _run(self, later: Later) -> None:
        task = asyncio.create_task(logged(later))
        self._later.add(task)
        task.add_done_callback(self._later.discard)

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await asyncio.gather(*self._later, return_exceptions=True)
