"""The one error tree of awaithumans.

Every error carries a stable ``code`` (what programs match on) and a human ``message``;
``hint`` says what to do about it. The class names are the ones users of the published
0.1.x SDK already catch, so existing ``except`` clauses keep working.
"""

from __future__ import annotations

from typing import Any, ClassVar


class AwaitHumansError(Exception):
    """Root of every error raised by awaithumans.

    Attributes:
        code: Stable machine-readable identifier, e.g. ``"TIMEOUT_EXCEEDED"``.
        message: What went wrong, in one sentence.
        hint: What to do about it, when there is something to do.
    """

    default_code: ClassVar[str] = "AWAITHUMANS_ERROR"

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


class TaskTimeoutError(AwaitHumansError):
    """No human answered before the task's deadline."""

    default_code = "TIMEOUT_EXCEEDED"

    def __init__(self, task: str, timeout_seconds: int, *, task_id: str | None = None) -> None:
        super().__init__(
            f"No human answered {task!r} within {timeout_seconds}s.",
            hint="Raise timeout_seconds, or handle the timeout as a decision of its own.",
        )
        self.task_id = task_id
        self.timeout_seconds = timeout_seconds


class TaskCancelledError(AwaitHumansError):
    """An operator or an agent cancelled the task."""

    default_code = "TASK_CANCELLED"

    def __init__(self, task: str, *, task_id: str | None = None) -> None:
        super().__init__(f"Task {task!r} was cancelled.")
        self.task_id = task_id


class VerificationExhaustedError(AwaitHumansError):
    """The verifier rejected every answer the humans gave, up to ``max_attempts``."""

    default_code = "VERIFICATION_EXHAUSTED"

    def __init__(self, task: str, attempts: int, *, task_id: str | None = None) -> None:
        super().__init__(
            f"The verifier rejected all {attempts} answer(s) to {task!r}.",
            hint="Read the verifier's reasons in the task's audit trail.",
        )
        self.task_id = task_id
        self.attempts = attempts


class SchemaValidationError(AwaitHumansError):
    """A payload or a response does not match its schema.

    Attributes:
        which: ``"payload"`` or ``"response"``.
        errors: The field errors, as pydantic reports them (``loc``, ``msg``, ``type``).
    """

    default_code = "SCHEMA_VALIDATION_FAILED"

    def __init__(
        self, which: str, detail: str, *, errors: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(f"The {which} does not match its schema: {detail}")
        self.which = which
        self.errors = errors or []


class ServerUnreachableError(AwaitHumansError):
    """The awaithumans server could not be reached before the deadline."""

    default_code = "SERVER_UNREACHABLE"

    def __init__(self, url: str, detail: str) -> None:
        super().__init__(
            f"Cannot reach the awaithumans server at {url}: {detail}",
            hint="Start it with `awaithumans dev`, or set AWAITHUMANS_URL.",
        )
        self.url = url


class AuthenticationError(AwaitHumansError):
    """The server refused the credential (missing, wrong, revoked or under-scoped)."""

    default_code = "UNAUTHORIZED"


class TaskNotFoundError(AwaitHumansError):
    """The server has no task with that id (or the credential may not see it)."""

    default_code = "TASK_NOT_FOUND"

    def __init__(self, task_id: str) -> None:
        super().__init__(
            f"Task {task_id!r} does not exist on the server.",
            hint="Was the server started with a fresh database?",
        )
        self.task_id = task_id


class IdempotencyConflictError(AwaitHumansError):
    """The idempotency key is already used by a task with different content."""

    default_code = "IDEMPOTENCY_CONFLICT"

    def __init__(self, key: str, detail: str | None = None) -> None:
        super().__init__(
            f"Idempotency key {key!r} is already used by a task with different content."
            + (f" {detail}" if detail else ""),
            hint="Use a new key for a new question; reuse a key only to resume the same one.",
        )
        self.key = key


class TimeoutRangeError(AwaitHumansError):
    """``timeout_seconds`` is outside what the server accepts."""

    default_code = "TIMEOUT_OUT_OF_RANGE"

    def __init__(self, timeout_seconds: int, minimum: int, maximum: int) -> None:
        super().__init__(
            f"timeout_seconds={timeout_seconds} is out of range; use {minimum}..{maximum}."
        )


class InvalidRequestError(AwaitHumansError):
    """The server rejected the request as malformed (a 4xx other than the cases above)."""

    default_code = "INVALID_REQUEST"

    def __init__(
        self, message: str, *, code: str | None = None, status_code: int | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.status_code = status_code
