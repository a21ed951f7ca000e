"""The world the bulk-answer policy tests share: the bulk-answer world of
``test_bulk_answer`` (an operator and Rita, webhooks caught) with a second reviewer, Sam,
and a response schema M-of-N can count (a boolean ``approved``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from awaithumans.testing import WebhookReceiver
from tests._app_fixtures import make_settings, running_app
from tests.policies._world import add_people
from tests.policies.test_bulk_answer import OPS, RITA, World

SAM = "sam@acme.com"
APPROVAL: dict[str, Any] = {
    "type": "object",
    "properties": {"approved": {"type": "boolean"}},
    "required": ["approved"],
}


@asynccontextmanager
async def with_sam(database_url: str) -> AsyncIterator[World]:
    """An in-process app on ``database_url`` with Olga (operator), Rita and Sam."""
    with WebhookReceiver() as hooks:
        async with running_app(make_settings(database_url)) as (app, admin):
            users = await add_people(
                admin,
                [
                    (OPS, "Olga Ops", True),
                    (RITA, "Rita Reviewer", False),
                    (SAM, "Sam Second", False),
                ],
            )
            yield World(app, admin, users, hooks)
