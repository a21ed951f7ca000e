"""Slack's requests to this server: ``POST /api/channels/slack/interactions`` and
``POST /api/channels/slack/events``, each checked against the signing secret.

Every request must carry Slack's ``v0`` signature of its timestamp and body, with the
timestamp within five minutes (slack-sdk's verifier); anything else is a 401 and changes
nothing. The handlers answer within Slack's 3 seconds and do the rest after the response.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from slack_sdk.signature import SignatureVerifier
from starlette.background import BackgroundTask
from starlette.responses import JSONResponse, Response

from awaithumans.core._codes import ErrorCode
from awaithumans.server.api.errors import error_response

log = logging.getLogger("awaithumans.server.slack")

Handle = Callable[[dict[str, Any]], Awaitable[tuple[dict[str, Any] | None, Any]]]


async def guarded(later: Callable[[], Awaitable[None]]) -> None:
    """Run the work that follows an ack; Slack already has its answer, so a failure here
    (Slack down, a trigger that expired) is logged, not raised into the server."""
    try:
        await later()
    except Exception:
        log.warning("slack follow-up failed", exc_info=True)


def slack_router(
    signing_secret: str | None,
    interactions: Handle,
    events: Handle,
) -> APIRouter:
    """The routes Slack's app settings point at (and the app manifest fills in)."""
    router = APIRouter(include_in_schema=False)
    verifier = SignatureVerifier(signing_secret) if signing_secret else None

    async def checked(request: Request) -> bytes | Response:
        if verifier is None:
            return error_response(
                503,
                ErrorCode.INVALID_REQUEST,
                "Slack is not fully configured here: set AWAITHUMANS_SLACK_SIGNING_SECRET.",
            )
        body = await request.body()
        try:
            valid = verifier.is_valid(
                body,
                request.headers.get("X-Slack-Request-Timestamp", ""),
                request.headers.get("X-Slack-Signature", ""),
            )
        except ValueError:
            # slack-sdk reads the timestamp with int(): a missing or non-numeric one raised
            # out of here as a 500 instead of being an unsigned request.
            valid = False
        if not valid:
            return error_response(
                401, ErrorCode.INVALID_SIGNATURE, "The request is not signed by Slack."
            )
        return body

    def reply(result: tuple[dict[str, Any] | None, Any]) -> Response:
        body, later = result
        task = BackgroundTask(guarded, later) if later is not None else None
        if body is None:
            return Response(status_code=200, background=task)
        return JSONResponse(body, background=task)

    @router.post("/interactions")
    async def interaction(request: Request) -> Response:
        body = await checked(request)
        if isinstance(body, Response):
            return body
        try:
            payload = json.loads(parse_qs(body.decode())["payload"][0])
        except (KeyError, ValueError, UnicodeDecodeError):
            return error_response(400, ErrorCode.BAD_REQUEST, "Expected a 'payload' field.")
        return reply(await interactions(payload))

    @router.post("/events")
    async def event(request: Request) -> Response:
        body = await checked(request)
        if isinstance(body, Response):
            return body
        try:
            payload = json.loads(body)
        except ValueError:
            return error_response(400, ErrorCode.INVALID_JSON, "Expected a JSON body.")
        if not isinstance(payload, dict):
            return error_response(400, ErrorCode.INVALID_JSON, "Expected a JSON object.")
        if payload.get("type") == "url_verification":
            # Slack checks the URL when it is saved in the app's settings.
            return JSONResponse({"challenge": payload.get("challenge")})
        return reply(await events(payload))

    return router
