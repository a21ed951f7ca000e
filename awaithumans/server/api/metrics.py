"""``GET /metrics``: the Prometheus exposition of this process, behind a bearer token.

Open metrics would tell anyone how many tasks the server holds and how busy its people
are, so the endpoint takes ``Authorization: Bearer <token>`` with the dedicated
``AWAITHUMANS_METRICS_TOKEN`` (give Prometheus that one: it reads metrics and nothing
else) or the admin token. With neither configured, it answers no one. The tokens are
compared here, in constant time, without the authenticator: a scrape costs no database
lookup of sessions or agent keys.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import Response

from awaithumans.core._codes import ErrorCode
from awaithumans.server.api.deps import Ctx
from awaithumans.server.api.errors import error_responses
from awaithumans.server.errors import ApiError
from awaithumans.server.settings import Settings

router = APIRouter(tags=["metrics"])


def may_scrape(settings: Settings, authorization: str | None) -> bool:
    """Whether ``authorization`` carries the metrics token or the admin token."""
    scheme, _, presented = (authorization or "").partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        return False
    given = presented.encode()
    allowed = False
    for secret in (settings.metrics_token, settings.admin_api_token):
        # Both compared every time: which one matched must not show in the timing.
        if secret is not None and hmac.compare_digest(given, secret.get_secret_value().encode()):
            allowed = True
    return allowed


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text format (OpenMetrics if the Accept header asks)",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **error_responses(401),
    },
    summary="Prometheus metrics (bearer: AWAITHUMANS_METRICS_TOKEN or the admin token)",
)
async def metrics(request: Request, ctx: Ctx) -> Response:
    if not may_scrape(ctx.settings, request.headers.get("authorization")):
        raise ApiError(
            401,
            ErrorCode.UNAUTHORIZED,
            "Send 'Authorization: Bearer <token>' with AWAITHUMANS_METRICS_TOKEN or the"
            " admin token.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    await ctx.metrics.refresh(ctx.engine)
    body, content_type = ctx.metrics.render(request.headers.get("accept"))
    return Response(body, media_type=content_type)
