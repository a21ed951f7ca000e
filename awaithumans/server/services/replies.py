"""Answers written in people's own words, where they are: what every channel needs alike.

A Slack thread reply and a mail's reply go the same way: the text is handed to the answer
path as free text (``answers.answer(..., text=...)``) when the task's verifier reads natural
language; the channel waits for the verdict (bounded), then tells the person, in its own
medium, what was understood or why it was not taken. This module holds the parts that do
not depend on the medium: whether a task takes free text, the bounded wait, and the answer
as understood, field by field.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from awaithumans.core._wire import TaskStatus
from awaithumans.server.context import ServerContext
from awaithumans.server.db.records import TaskRecord
from awaithumans.server.services import answers
from awaithumans.server.services.display import answer_items, as_text
from awaithumans.server.services.form_input import load_form
from awaithumans.server.services.verifier_gate import config_of
from awaithumans.server.services.views import open_for

#: Work a channel does after it acknowledged what came in (Slack's 3 s, a mail's 250).
Later = Callable[[], Awaitable[None]]

# How long past the verifier's own timeout a channel waits for a verdict before it says
# "stored, not checked yet" (the verification itself goes on, in the outbox).
VERDICT_GRACE_SECONDS = 30


def takes_free_text(task: TaskRecord) -> bool:
    """Whether the task's verifier turns free text into the typed answer."""
    config = config_of(task.verifier_config) if task.verifier_config else None
    return config is not None and config.parse_natural_language


async def verdict(ctx: ServerContext, submitted: TaskRecord) -> TaskRecord:
    """The task once its verifier has spoken, or as it is when that takes too long."""
    loop = asyncio.get_running_loop()
    until = loop.time() + ctx.settings.verifier.timeout_seconds + VERDICT_GRACE_SECONDS
    task = submitted
    while task.status is TaskStatus.SUBMITTED and loop.time() < until:
        await ctx.hub.wait(task.id, task.version, until - loop.time())
        task = await answers.load_task(ctx, task.id) or task
    return task


@dataclass(frozen=True, slots=True)
class Understood:
    """One field of the recorded answer, as the person should read it back."""

    label: str
    value: str


def understood(ctx: ServerContext, task: TaskRecord) -> list[Understood]:
    """The recorded answer of a completed task, field by field, labels as on the form."""
    form = load_form(task.form_definition, task.response_schema)
    answer = open_for(ctx.sealer, task.id, task.response_enc) or {}
    return [Understood(i.label, as_text(i.value)) for i in answer_items(form, answer)]
