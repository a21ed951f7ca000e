"""The decision-receipt check of the workflow adapters: the core's check, fed from where
each engine hands over the answer.

``await_human`` checks a completed answer's receipt when ``AWAITHUMANS_RECEIPT_PUBLIC_KEY``
is set (``core/_receipts.py``). In an engine the answer reaches the run through the engine
(a LangGraph resume value, a Prefect run input, a Temporal signal), which does not always
carry the receipt: the LangGraph resume value stays small and free of personal data, and a
Prefect run input holds only the outcome. Then the receipt is read from the server. Either
way the check binds it to the answer the run is about to return (its hash), so an answer
changed on its way through the engine, or made up there, fails as in the core SDK.
"""

from __future__ import annotations

import os
import time
from typing import Any

from pydantic import BaseModel, ValidationError

from awaithumans.core._client import TaskClient
from awaithumans.core._errors import ReceiptInvalidError
from awaithumans.core._receipts import (
    PUBLIC_KEY_ENV,
    DecisionCheck,
    VerifiedReceipt,
    check_decision,
    parse_public_keys,
    require_crypto,
    shown_sha256,
)
from awaithumans.core._wire import CreateTaskRequest, PollResponse, TaskStatus

# Reading the receipt back gives up after this long; the check then fails as unreachable.
_READ_WINDOW_SECONDS = 20.0


def shown_of(body: CreateTaskRequest) -> str | None:
    """The hash of what ``body`` shows the person, as the core check computes it: only with
    a form given (without one the server derives the form, which the caller cannot know)."""
    if body.form_definition is None:
        return None
    return shown_sha256(body.payload, body.form_definition, body.response_schema)


def configured_keys() -> list[bytes] | None:
    """The public keys in ``AWAITHUMANS_RECEIPT_PUBLIC_KEY`` (None: not set, no check).

    Raises:
        ReceiptInvalidError: ``reason="public_key"``: the variable holds something else.
        MissingExtraError: ``cryptography`` is not installed (``awaithumans[receipts]``).
    """
    configured = os.environ.get(PUBLIC_KEY_ENV, "").strip()
    if not configured:
        return None
    require_crypto()
    return list(parse_public_keys(configured).values())


def check_outcome(
    keys: list[bytes],
    task_id: str,
    status: str,
    response: dict[str, Any] | None,
    receipt: dict[str, Any] | None,
    shown: str | None,
) -> VerifiedReceipt | None:
    """The core's check of a completed answer (None for other outcomes, which carry none).

    Raises:
        ReceiptInvalidError: As ``core._receipts.check_decision``.
    """
    if status != TaskStatus.COMPLETED.value:
        return None
    return check_decision(receipt, keys, task_id=task_id, response=response, shown=shown)


async def check_answer(
    check: DecisionCheck | None,
    client: TaskClient,
    task_id: str,
    poll: PollResponse,
    known_receipt: dict[str, Any] | None = None,
    typed: type[BaseModel] | None = None,
) -> None:
    """Run ``check`` (``receipt_check(body)``, None when no key is set) on the outcome a run
    is about to return; a completed one without its receipt gets the task's from the server.

    Args:
        known_receipt: A receipt already at hand (a task read whole), used when ``poll``
            carries none.
        typed: The response schema, when the answer came through the engine's typed input
            (a Prefect run input fills in defaults, so its JSON is not the signed JSON): then
            the signed answer is the server's, and the run's must be the same value.

    Raises:
        ReceiptInvalidError: The check failed; ``reason="missing"`` also when the server has
            no signed decision for the task (it is not completed there: the answer the run
            got was made up on the way, or given where the credential could not record it);
            ``reason="mismatch"`` when another final outcome (a timeout, a cancel) is not
            the server's.
    """
    if check is None or not poll.status.is_terminal:
        return
    if poll.status is not TaskStatus.COMPLETED:
        await confirm_outcome(client, task_id, poll)
        return
    receipt = poll.receipt or known_receipt
    if receipt is None:
        view = await client.get_task(task_id, deadline=time.monotonic() + _READ_WINDOW_SECONDS)
        if view.status is not TaskStatus.COMPLETED:
            raise ReceiptInvalidError(
                f"The run was handed an answer for task {task_id}, which is not completed on"
                f" the server (status {view.status.value!r}): no signed decision backs it.",
                reason="missing",
                task_id=task_id,
            )
        receipt = view.receipt
        if typed is not None:
            if not _same_value(typed, view.response, poll.response):
                raise ReceiptInvalidError(
                    f"The run was handed an answer for task {task_id} that is not the answer"
                    " the server completed it with.",
                    reason="mismatch",
                    task_id=task_id,
                )
            poll = poll.model_copy(update={"response": view.response})
    check(task_id, poll.model_copy(update={"receipt": receipt}))


async def confirm_outcome(client: TaskClient, task_id: str, poll: PollResponse) -> None:
    """A final outcome that is not an answer must be the server's: receipts sign completed
    answers only, so a made-up ``timed_out`` would otherwise hand the run any "default the
    server applied" (its ``response``) unchecked.

    Raises:
        ReceiptInvalidError: ``reason="mismatch"``: the server has the task in another
            status, or timed out with another default.
    """
    view = await client.get_task(task_id, deadline=time.monotonic() + _READ_WINDOW_SECONDS)
    there = f"status {view.status.value!r}"
    same = view.status is poll.status
    if same and poll.status is TaskStatus.TIMED_OUT and poll.response is not None:
        same = poll.response == view.response
        there = "another default applied"
    if not same:
        raise ReceiptInvalidError(
            f"The run was handed a {poll.status.value!r} outcome for task {task_id} that is"
            f" not the server's ({there} there): it is not to be trusted.",
            reason="mismatch",
            task_id=task_id,
        )


def _same_value(
    typed: type[BaseModel], signed: dict[str, Any] | None, given: dict[str, Any] | None
) -> bool:
    if signed is None or given is None:
        return signed == given
    try:
        return typed.model_validate(signed) == typed.model_validate(given)
    except ValidationError:
        return False
