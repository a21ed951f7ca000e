"""The one error tree of awaithumans.

Every error carries a stable ``code`` (an :class:`ErrorCode`, what programs match on), a
human ``message`` and, where there is something to do about it, a ``hint``. The class names
are the ones users of the published 0.1.x SDK already catch, so existing ``except`` clauses
keep working::

    AwaitHumansError                      code, message, hint
    ├── ApiError                          status_code, details: the server refused a request
    │   ├── AuthenticationError           401: no valid credential
    │   │   └── PermissionDeniedError     403: valid, but not allowed (says what is missing)
    │   ├── IdempotencyConflictError      409: the key names a task with other content
    │   ├── InvalidRequestError           any other 4xx
    │   └── TaskNotFoundError             404 (also a TaskError)
    ├── TaskError                         task_id: what became of one task
    │   ├── TaskTimeoutError              nobody answered in time
    │   ├── TaskCancelledError            an operator or the agent cancelled it
    │   ├── VerificationExhaustedError    the verifier rejected every answer (attempts)
    │   └── InvalidResumeError            a workflow was resumed with the wrong outcome
    ├── SchemaValidationError             a payload or an answer does not fit its schema
    ├── TimeoutRangeError                 timeout_seconds out of range
    ├── ServerUnreachableError            no server before the deadline
    ├── ReceiptInvalidError               a decision receipt fails its check (reason)
    ├── ConfigurationError                the call is made where it cannot work
    │   └── MissingExtraError             an optional dependency is not installed
    ├── NotOurEventError                  a webhook receiver got an event for someone else
    └── RetryLaterError                   a receiver cannot act yet; deliver again later

The server raises :class:`ApiError` (its own subclass adds response headers) and the SDK
turns each error response back into the class above, so both sides speak the same codes.
"""

from __future__ import annotations

from typing import Any, ClassVar

from awaithumans.core._codes import ErrorCode


class AwaitHumansError(Exception):
    """Root of every error raised by awaithumans.

    Attributes:
        code: Stable machine-readable identifier, e.g. ``"TIMEOUT_EXCEEDED"``.
        message: What went wrong, in one sentence.
        hint: What to do about it, when there is something to do.
    """

    default_code: ClassVar[str] = ErrorCode.AWAITHUMANS_ERROR

    def __init__(self, message: str, *, code: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.code = code or self.default_code
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        text = f"[{self.code}] {self.message}"
        return f"{text} Hint: {self.hint}" if self.hint else text

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors cross process boundaries (Temporal activities, Prefect workers); keyword-only
        # constructors do not survive the default pickling, so spell the state out.
        return (_rebuild, (type(self), self.__dict__.copy(), self.args))


def _rebuild(
    cls: type[AwaitHumansError], state: dict[str, Any], args: tuple[Any, ...]
) -> AwaitHumansError:
    err = cls.__new__(cls)
    Exception.__init__(err, *args)
    err.__dict__.update(state)
    return err


# -- the server refused ------------------------------------------------------------------


class ApiError(AwaitHumansError):
    """The server refused a request.

    Attributes:
        status_code: The HTTP status it answered with.
        details: Field errors and the like (``[{"loc": [...], "msg": ...}]``), if any.
    """

    default_status: ClassVar[int] = 400

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status_code: int | None = None,
        details: list[dict[str, Any]] | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, code=code, hint=hint)
        self.status_code = status_code if status_code is not None else self.default_status
        self.details = details or []


class AuthenticationError(ApiError):
    """The server refused the credential (missing, wrong or revoked)."""

    default_code = ErrorCode.UNAUTHORIZED
    default_status = 401


class PermissionDeniedError(AuthenticationError):
    """The credential is valid but may not do this (another's task, an agent answering).

    A subclass of :class:`AuthenticationError`, which 403s raised before 0.2.
    """

    default_code = ErrorCode.FORBIDDEN
    default_status = 403


class IdempotencyConflictError(ApiError):
    """The idempotency key is already used by a task with different content."""

    default_code = ErrorCode.IDEMPOTENCY_CONFLICT
    default_status = 409

    def __init__(self, key: str, detail: str | None = None) -> None:
        super().__init__(
            f"Idempotency key {key!r} is already used by a task with different content."
            + (f" {detail}" if detail else ""),
            hint="Use a new key for a new question; reuse a key only to resume the same one.",
        )
        self.key = key


class InvalidRequestError(ApiError):
    """The server rejected the request as malformed (a 4xx other than the cases above)."""

    default_code = ErrorCode.INVALID_REQUEST


# -- what became of a task ---------------------------------------------------------------


class TaskError(AwaitHumansError):
    """An error about one task; ``task_id`` names it (None if it was never created)."""

    def __init__(
        self,
        message: str,
        *,
        task_id: str | None = None,
        code: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, code=code, hint=hint)
        self.task_id = task_id


class TaskNotFoundError(TaskError, ApiError):
    """The server has no task with that id (or the credential may not see it)."""

    default_code = ErrorCode.TASK_NOT_FOUND
    default_status = 404

    def __init__(self, task_id: str) -> None:
        # Cooperative: TaskError passes on to ApiError, which sets the status.
        super().__init__(
            f"Task {task_id!r} does not exist on the server.",
            task_id=task_id,
            hint="Was the server started with a fresh database?",
        )


class TaskTimeoutError(TaskError):
    """No human answered before the task's deadline."""

    default_code = ErrorCode.TIMEOUT_EXCEEDED

    def __init__(self, task: str, timeout_seconds: int, *, task_id: str | None = None) -> None:
        super().__init__(
            f"No human answered {task!r} within {timeout_seconds}s.",
            task_id=task_id,
            hint="Raise timeout_seconds, or handle the timeout as a decision of its own.",
        )
        self.timeout_seconds = timeout_seconds


class TaskCancelledError(TaskError):
    """An operator or an agent cancelled the task."""

    default_code = ErrorCode.TASK_CANCELLED

    def __init__(self, task: str, *, task_id: str | None = None) -> None:
        super().__init__(f"Task {task!r} was cancelled.", task_id=task_id)


class VerificationExhaustedError(TaskError):
    """The verifier rejected every answer the humans gave, up to ``max_attempts``."""

    default_code = ErrorCode.VERIFICATION_EXHAUSTED

    def __init__(self, task: str, attempts: int, *, task_id: str | None = None) -> None:
        super().__init__(
            f"The verifier rejected all {attempts} answer(s) to {task!r}.",
            task_id=task_id,
            hint="Read the verifier's reasons in the task's audit trail.",
        )
        self.attempts = attempts


class InvalidResumeError(TaskError):
    """A waiting workflow was resumed with an outcome that is not its task's final one.

    ``code`` says which: ``RESUME_TASK_MISMATCH`` (another task's outcome),
    ``RESUME_NOT_FINAL`` (a status that does not end the wait) or
    ``RESUME_WITHOUT_RESPONSE`` (completed, without an answer).
    """

    default_code = ErrorCode.RESUME_NOT_FINAL

    @classmethod
    def task_mismatch(cls, sent_for: object, task_id: str) -> InvalidResumeError:
        """The run was resumed with the outcome of another task."""
        return cls(
            f"The run was resumed for task {sent_for!r}, but waits for {task_id!r}.",
            task_id=task_id,
            code=ErrorCode.RESUME_TASK_MISMATCH,
        )

    @classmethod
    def not_final(cls, task_id: str, status: str) -> InvalidResumeError:
        """The run was resumed with a status that does not end the wait."""
        return cls(
            f"The run was resumed for task {task_id!r} with non-final status {status!r}.",
            task_id=task_id,
            code=ErrorCode.RESUME_NOT_FINAL,
        )

    @classmethod
    def without_response(cls, task_id: str) -> InvalidResumeError:
        """The run was resumed as completed, without an answer."""
        return cls(
            f"The run was resumed for task {task_id!r} as completed, without a response.",
            task_id=task_id,
            code=ErrorCode.RESUME_WITHOUT_RESPONSE,
        )


# -- the caller's side -------------------------------------------------------------------


class SchemaValidationError(AwaitHumansError):
    """A payload or a response does not match its schema.

    Attributes:
        which: ``"payload"``, ``"response"`` or ``"request"`` (refused by the server).
        errors: The field errors (``loc``, ``msg``, ``type``).
    """

    default_code = ErrorCode.SCHEMA_VALIDATION_FAILED

    def __init__(
        self, which: str, detail: str, *, errors: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(f"The {which} does not match its schema: {detail}")
        self.which = which
        self.errors = errors or []


class TimeoutRangeError(AwaitHumansError):
    """``timeout_seconds`` is outside what the server accepts."""

    default_code = ErrorCode.TIMEOUT_OUT_OF_RANGE

    def __init__(self, timeout_seconds: int, minimum: int, maximum: int) -> None:
        super().__init__(
            f"timeout_seconds={timeout_seconds} is out of range; use {minimum}..{maximum}."
        )


class ServerUnreachableError(AwaitHumansError):
    """The awaithumans server could not be reached before the deadline."""

    default_code = ErrorCode.SERVER_UNREACHABLE

    def __init__(self, url: str, detail: str) -> None:
        super().__init__(
            f"Cannot reach the awaithumans server at {url}: {detail}",
            hint="Start it with `awaithumans dev`, or set AWAITHUMANS_URL.",
        )
        self.url = url


class ReceiptInvalidError(AwaitHumansError):
    """A decision receipt does not prove what it should: the answer is not to be trusted.

    Attributes:
        reason: What failed, for programs: ``"missing"`` (no receipt came with the answer),
            ``"malformed"``, ``"public_key"`` (the key given is not an Ed25519 public key),
            ``"unknown_key"`` (signed with a key not among those given), ``"signature"``
            (altered, or signed by another key) or ``"mismatch"`` (valid, but for another
            task, answer or question than the one at hand).
        task_id: The task the receipt names, when it names one.
    """

    default_code = ErrorCode.RECEIPT_INVALID

    def __init__(self, message: str, *, reason: str, task_id: str | None = None) -> None:
        super().__init__(
            message,
            hint="Check the server's public key (GET /api/receipts/public-keys, or"
            " `awaithumans receipt-key`); a receipt that fails is not proof of a decision.",
        )
        self.reason = reason
        self.task_id = task_id


class ConfigurationError(AwaitHumansError):
    """The call is made where it cannot work: outside a LangGraph node or a Prefect flow,
    on a graph without a checkpointer, and the like."""

    default_code = ErrorCode.CONFIGURATION_ERROR


class MissingExtraError(ConfigurationError, ImportError):
    """An optional dependency is missing; the message names the extra that installs it."""

    default_code = ErrorCode.EXTRA_NOT_INSTALLED

    def __init__(self, module: str, needs: str, extra: str) -> None:
        super().__init__(
            f'{module} needs {needs}: pip install "awaithumans[{extra}]"',
            hint=f"Install the {extra!r} extra in the environment that imports {module}.",
        )
        self.extra = extra


# -- webhook receivers (relays, resumers) -----------------------------------------------


class NotOurEventError(AwaitHumansError, ValueError):
    """The event is not for this receiver: it names no run of this engine (or namespace).

    Receivers answer 400; the event is not one they will ever act on.
    """

    default_code = ErrorCode.NOT_OUR_EVENT


class RetryLaterError(AwaitHumansError):
    """The receiver cannot act on the event yet: the run has not reached its wait, or the
    engine is unreachable. Receivers answer 503, and the server delivers the event again."""

    default_code = ErrorCode.RETRY_LATER
