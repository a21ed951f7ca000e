"""``on_timeout`` in the SDK, without a human: the request it becomes, the default a timed-out
poll turns into, how ``is_default`` tells it apart, and the SDK's own deadline."""

from __future__ import annotations

import gc
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel, Field

from awaithumans import SchemaValidationError, TaskTimeoutError, is_default
from awaithumans.core import Ask
from awaithumans.core._await import outcome_of, wait_for_answer
from awaithumans.core._client import TaskClient
from awaithumans.core._wire import (
    CreateTaskRequest,
    PollResponse,
    TaskStatus,
    TaskView,
    fingerprint,
)
from awaithumans.testing import free_port


class Q(BaseModel):
    text: str


class Decision(BaseModel):
    approved: bool
    note: str = Field(default="", max_length=40)


class Slotted(BaseModel):
    # No __weakref__: marked by a strong reference instead.
    __slots__ = ()
    approved: bool


def unchecked(**values: Any) -> Decision:
    """A Decision built without validation, as ``model_construct`` allows."""
    return Decision.model_construct(**values)


REFUSE = Decision(approved=False, note="no answer in time")


def ask(**extra: Any) -> Ask[Any]:
    values: dict[str, Any] = {
        "task": "Approve?",
        "payload_schema": Q,
        "payload": Q(text="x"),
        "response_schema": Decision,
        "timeout_seconds": 600,
    }
    values.update(extra)
    return Ask(**values)


def timed_out(response: dict[str, Any] | None = None) -> PollResponse:
    return PollResponse(
        status=TaskStatus.TIMED_OUT, response=response, default_applied=response is not None
    )


def outcome(poll: PollResponse, on_timeout: Any = "raise", schema: Any = Decision) -> Any:
    return outcome_of(
        poll,
        task="Approve?",
        task_id="tsk_1",
        timeout_seconds=600,
        response_schema=schema,
        on_timeout=on_timeout,
    )


def test_the_request_carries_the_default_as_json() -> None:
    body = ask(on_timeout=REFUSE).request()
    assert body.on_timeout == {"approved": False, "note": "no answer in time"}
    assert "on_timeout" not in ask().request().model_dump(exclude_none=True)
    assert ask(on_timeout="raise").request().on_timeout is None


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (unchecked(approved="maybe"), "approved"),  # built without checks
        (unchecked(approved=True, note="x" * 41), "note"),
        (Q(text="not an answer"), "approved"),
        (unchecked(approved=object()), "Unable to serialize"),
        ("return", 'expected "raise" or a Decision instance'),
        ({"approved": True}, 'expected "raise" or a Decision instance'),
        (None, 'expected "raise" or a Decision instance'),
    ],
)
def test_a_default_that_does_not_fit_is_refused_before_sending(value: Any, says: str) -> None:
    with pytest.raises(SchemaValidationError) as info:
        ask(on_timeout=value).request()
    assert info.value.code == "SCHEMA_VALIDATION_FAILED"
    assert info.value.which == "on_timeout default"
    assert says in info.value.message


def test_fingerprints_of_creates_without_a_default_did_not_change() -> None:
    # Tasks created before on_timeout existed are replayed, not refused as conflicts.
    plain = ask().request()
    before = plain.model_dump(mode="json")
    for later in (
        "on_timeout",
        "approvers",
        "operators_may_answer",
        "approvals_required",
        "rejection_policy",
        "reminder_seconds",
        "escalate_after_seconds",
        "escalate_to",
        "escalate_reassign",
    ):
        before.pop(later)
    assert plain.content_fingerprint() == fingerprint(before)
    with_default = ask(on_timeout=REFUSE).request()
    assert with_default.content_fingerprint() != plain.content_fingerprint()
    other = ask(on_timeout=Decision(approved=True)).request()
    assert other.content_fingerprint() != with_default.content_fingerprint()
    # The body survives the trip through the wire model unchanged (Temporal's activity).
    sent = with_default.model_dump(mode="json", exclude_none=True)
    again = CreateTaskRequest.model_validate(sent)
    assert again.content_fingerprint() == with_default.content_fingerprint()


def test_a_timeout_raises_without_a_default() -> None:
    with pytest.raises(TaskTimeoutError) as info:
        outcome(timed_out())
    assert (info.value.code, info.value.task_id) == ("TIMEOUT_EXCEEDED", "tsk_1")
    # Even if a server said it applied one: the caller asked for the error.
    with pytest.raises(TaskTimeoutError):
        outcome(timed_out({"approved": True}))


def test_a_timeout_returns_the_default_marked() -> None:
    stored = outcome(timed_out({"approved": False, "note": "server's copy"}), on_timeout=REFUSE)
    assert type(stored) is Decision
    assert stored == Decision(approved=False, note="server's copy")  # the server's record wins
    assert is_default(stored)
    # No word from the server on what it applied: the caller's own default.
    local = outcome(timed_out(), on_timeout=REFUSE)
    assert local == REFUSE
    assert is_default(local)
    assert local is not REFUSE
    assert not is_default(REFUSE)


def test_only_what_the_call_returned_as_a_default_is_one() -> None:
    answered = outcome(
        PollResponse(status=TaskStatus.COMPLETED, response=REFUSE.model_dump()), on_timeout=REFUSE
    )
    assert answered == REFUSE
    assert not is_default(answered)
    default = outcome(timed_out(), on_timeout=REFUSE)
    assert default == answered  # same values, same type: only is_default tells them apart
    assert not is_default(default.model_copy())
    assert not is_default(Decision.model_validate_json(default.model_dump_json()))
    for other in (None, 1, "raise", {"approved": False}):
        assert not is_default(other)


def test_the_mark_does_not_outlive_the_answer() -> None:
    from awaithumans.core import _defaults

    default = outcome(timed_out(), on_timeout=REFUSE)
    key = id(default)
    assert key in _defaults._marked
    del default
    gc.collect()
    assert key not in _defaults._marked


def test_a_model_without_weak_references_is_marked_too() -> None:
    default = outcome(timed_out(), on_timeout=Slotted(approved=False), schema=Slotted)
    assert default == Slotted(approved=False)
    assert is_default(default)


def test_other_endings_are_not_turned_into_the_default() -> None:
    from awaithumans import TaskCancelledError, VerificationExhaustedError

    with pytest.raises(TaskCancelledError):
        outcome(PollResponse(status=TaskStatus.CANCELLED), on_timeout=REFUSE)
    with pytest.raises(VerificationExhaustedError):
        outcome(
            PollResponse(status=TaskStatus.VERIFICATION_EXHAUSTED, verification_attempt=2),
            on_timeout=REFUSE,
        )


def _view(seconds_left: float) -> TaskView:
    now = datetime.now(UTC)
    return TaskView(
        id="tsk_" + "0" * 24,
        idempotency_key="k",
        task="t",
        status=TaskStatus.CREATED,
        payload_schema={},
        response_schema={},
        timeout_seconds=60,
        timeout_at=now + timedelta(seconds=seconds_left),
        created_at=now,
        updated_at=now,
    )


async def test_the_sdks_own_deadline_returns_the_default_when_the_server_is_gone() -> None:
    # Nothing listens: at the deadline (and the grace the SDK gives the server's own
    # scheduler) the call ends with the default instead of an error.
    started = time.monotonic()
    async with TaskClient(f"http://127.0.0.1:{free_port()}") as client:
        answer = await wait_for_answer(
            client, _view(1), Decision, deadline=time.monotonic() + 1, on_timeout=REFUSE
        )
    assert answer == REFUSE
    assert is_default(answer)
    assert time.monotonic() - started < 10
