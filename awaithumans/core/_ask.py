"""The one declaration of what every ``await_human`` takes, and the request it becomes.

The core's ``await_human`` and each adapter's (Temporal, LangGraph, Prefect) take these
parameters, with these names, types and defaults, and pack them into an :class:`Ask`; an
adapter adds only what its engine needs (Prefect's ``suspend``, ...). A test checks every
public signature against this class, so a parameter cannot exist in one place only.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from awaithumans.core._errors import SchemaValidationError, TimeoutRangeError
from awaithumans.core._runs import WaitingRun
from awaithumans.core._wire import (
    MAX_TIMEOUT_SECONDS,
    MIN_TIMEOUT_SECONDS,
    CreateTaskRequest,
    derive_idempotency_key,
)

R = TypeVar("R", bound=BaseModel)

#: ``on_timeout``'s one word: a timeout raises ``TaskTimeoutError``.
RAISE: Literal["raise"] = "raise"

#: ``rejection_policy``: with ``approvals_required`` > 1, one rejection ends the task
#: (``"any_rejects"``), or rejections must reach the same count as approvals (``"majority"``).
RejectionPolicy = Literal["any_rejects", "majority"]

#: ``assign_to``: one email, several emails, or the published protocol's structured object.
Assignee = str | list[str] | dict[str, Any]


class VerifierConfig(Protocol):
    """What ``verifier=`` takes besides a plain dict: ``claude_verifier(...)`` and kin."""

    def model_dump(self, *, mode: str = ...) -> dict[str, Any]: ...


@dataclass(frozen=True, kw_only=True)
class Ask(Generic[R]):
    """One question for a person: the parameters every ``await_human`` shares.

    Attributes:
        task: The question, as the human sees it.
        payload_schema: Pydantic model describing ``payload``.
        payload: What the human needs to decide (an instance of ``payload_schema``).
        response_schema: Pydantic model of the answer; the call returns an instance of it.
        timeout_seconds: How long the human has (60 s to 30 days).
        idempotency_key: Same key, same task: a re-run resumes the wait or gets the stored
            answer. Derived when omitted (from ``task`` and ``payload`` in plain code, from
            the run's identity inside a workflow engine).
        notify: Routes such as ``"slack:#approvals"`` or ``"email:ops@acme.com"``.
        assign_to: An email, several emails, or a structured assignment.
        verifier: A verifier config, e.g. ``claude_verifier(...)``; runs on the server.
        redact_payload: Hide the payload from channels that would show it in the clear.
        task_metadata: Free-form JSON stored with the task (adapters add the entry that
            names the waiting run).
        callback_url: A URL the server calls (signed webhook) when the task ends.
        on_timeout: ``"raise"`` (a timeout raises ``TaskTimeoutError``), or a
            ``response_schema`` instance that the call returns instead when nobody answers
            in time; the server records the task as timed out with that default applied,
            and ``awaithumans.is_default(answer)`` tells it from a person's answer.
        approvers: Who may answer: emails and ``"role:NAME"`` / ``"pool:NAME"`` of the
            server's directory. Anyone else is refused on every channel (fail closed).
        operators_may_answer: With ``approvers``, whether the server's operators may
            answer too.
        approvals_required: How many distinct people must approve (M of N); the one who
            created the task never counts. The response schema needs a boolean
            ``approved`` field to count by.
        rejection_policy: With ``approvals_required`` > 1: ``"any_rejects"`` (one rejection
            decides) or ``"majority"`` (rejections must reach ``approvals_required``).
        reminders: Times after creation (business hours when the server sets
            ``AWAITHUMANS_BUSINESS_HOURS``) at which the same routes are notified again.
        escalate_after: Time after creation at which ``escalate_to`` is notified.
        escalate_to: Routes to notify on escalation (``"slack:@lead"``, ``"email:..."``).
        escalate_reassign: On escalation, also reassign the task to the first person
            ``escalate_to`` names who is in the server's directory.
        server_url: The server; else ``AWAITHUMANS_URL``, the dev file, or localhost:3001.
        api_key: The credential; else ``AWAITHUMANS_API_KEY`` / the dev admin token.
    """

    task: str
    payload_schema: type[BaseModel]
    payload: BaseModel | dict[str, Any]
    response_schema: type[R]
    timeout_seconds: int
    idempotency_key: str | None = None
    notify: list[str] | None = None
    assign_to: Assignee | None = None
    verifier: VerifierConfig | dict[str, Any] | None = None
    redact_payload: bool = False
    task_metadata: dict[str, Any] | None = None
    callback_url: str | None = None
    on_timeout: Literal["raise"] | R = "raise"
    approvers: list[str] | None = None
    operators_may_answer: bool = True
    approvals_required: int = 1
    rejection_policy: RejectionPolicy = "any_rejects"
    reminders: list[timedelta] | None = None
    escalate_after: timedelta | None = None
    escalate_to: list[str] | None = None
    escalate_reassign: bool = False
    server_url: str | None = None
    api_key: str | None = None

    def request(
        self,
        *,
        default_key: str | None = None,
        run: WaitingRun | None = None,
        form_definition: dict[str, Any] | None = None,
    ) -> CreateTaskRequest:
        """Validate the arguments and build the ``POST /api/tasks`` body (no I/O).

        Args:
            default_key: The idempotency key when the caller gave none (an adapter's key
                from its run); else derived from ``task`` and ``payload``.
            run: The waiting run, recorded in ``task_metadata`` for the relays.
            form_definition: The form to show; derived from ``response_schema`` if None.

        Raises:
            TimeoutRangeError: ``timeout_seconds`` is out of range.
            SchemaValidationError: ``payload`` does not fit ``payload_schema``, or
                ``on_timeout`` is not ``"raise"`` or an answer that fits ``response_schema``.
        """
        if not MIN_TIMEOUT_SECONDS <= self.timeout_seconds <= MAX_TIMEOUT_SECONDS:
            raise TimeoutRangeError(self.timeout_seconds, MIN_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS)
        raw = self.payload
        if isinstance(raw, BaseModel):
            raw = raw.model_dump(mode="json")
        try:
            checked = self.payload_schema.model_validate(raw)
        except ValidationError as exc:
            raise SchemaValidationError("payload", summary(exc), errors=error_list(exc)) from None
        payload_json = checked.model_dump(mode="json")
        on_timeout = default_json(self.on_timeout, self.response_schema)
        if form_definition is None:
            from awaithumans.core._forms import extract_form

            form = extract_form(self.response_schema)
            form_definition = form.model_dump(mode="json", exclude_none=True)
        metadata = self.task_metadata
        if run is not None:
            metadata = {**(metadata or {}), **run.metadata()}
        key = self.idempotency_key or default_key or derive_idempotency_key(self.task, payload_json)
        try:
            return self._wire(payload_json, key, form_definition, metadata, on_timeout)
        except ValidationError as exc:
            # A policy value out of range (approvals_required=0, a reminder under a minute):
            # said where the call was written, as the server would say it.
            raise SchemaValidationError("request", summary(exc), errors=error_list(exc)) from None

    def _wire(
        self,
        payload_json: dict[str, Any],
        key: str,
        form_definition: dict[str, Any],
        metadata: dict[str, Any] | None,
        on_timeout: dict[str, Any] | None,
    ) -> CreateTaskRequest:
        return CreateTaskRequest(
            task=self.task,
            payload=payload_json,
            payload_schema=self.payload_schema.model_json_schema(),
            response_schema=self.response_schema.model_json_schema(),
            timeout_seconds=self.timeout_seconds,
            idempotency_key=key,
            form_definition=form_definition,
            assign_to=_assign_to_wire(self.assign_to),
            notify=self.notify,
            verifier_config=_verifier_wire(self.verifier),
            redact_payload=self.redact_payload,
            callback_url=self.callback_url,
            task_metadata=metadata,
            on_timeout=on_timeout,
            approvers=self.approvers,
            operators_may_answer=self.operators_may_answer,
            approvals_required=self.approvals_required,
            rejection_policy=self.rejection_policy,
            reminder_seconds=_seconds_list(self.reminders, "reminders"),
            escalate_after_seconds=_seconds(self.escalate_after, "escalate_after"),
            escalate_to=self.escalate_to,
            escalate_reassign=self.escalate_reassign,
        )


#: The names of the shared parameters, in their order in every signature.
ASK_PARAMETERS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Ask))


def default_json(on_timeout: object, response_schema: type[BaseModel]) -> dict[str, Any] | None:
    """``on_timeout`` as the server stores it (the default's JSON), or None for ``"raise"``.

    Raises:
        SchemaValidationError: Neither ``"raise"`` nor an answer that fits
            ``response_schema``.
    """
    if isinstance(on_timeout, str) and on_timeout == RAISE:
        return None
    if not isinstance(on_timeout, BaseModel):
        raise SchemaValidationError(
            "on_timeout default",
            f'expected "raise" or a {response_schema.__name__} instance, got {on_timeout!r}',
        )
    try:
        # No serializer warnings: an instance built without checks is refused just below.
        dumped = on_timeout.model_dump(mode="json", warnings=False)
        checked = response_schema.model_validate(dumped)
    except ValidationError as exc:
        raise SchemaValidationError(
            "on_timeout default", summary(exc), errors=error_list(exc)
        ) from None
    except ValueError as exc:  # a value JSON cannot hold (PydanticSerializationError)
        raise SchemaValidationError("on_timeout default", str(exc)) from None
    return checked.model_dump(mode="json")


def _seconds(value: timedelta | None, name: str) -> int | None:
    """A duration as the wire's whole seconds; a non-timedelta is the caller's mistake."""
    if value is None:
        return None
    if not isinstance(value, timedelta):
        raise SchemaValidationError(name, f"expected a timedelta, got {value!r}")
    return math.ceil(value.total_seconds())


def _seconds_list(values: list[timedelta] | None, name: str) -> list[int] | None:
    if values is None:
        return None
    return [_seconds(v, name) or 0 for v in values]


def _assign_to_wire(value: Assignee | None) -> dict[str, Any] | None:
    if value is None or isinstance(value, dict):
        return value
    if isinstance(value, str):
        return {"email": value}
    return {"emails": list(value)}


def _verifier_wire(value: VerifierConfig | dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None or isinstance(value, dict):
        return value
    return value.model_dump(mode="json")


def error_list(exc: ValidationError) -> list[dict[str, Any]]:
    """A pydantic error as the wire's field errors (``loc``, ``msg``, ``type``)."""
    return [
        {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False)
    ]


def summary(exc: ValidationError) -> str:
    """A pydantic error in one line: ``field: message; ...``."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}"
        for e in exc.errors(include_url=False)
    )
