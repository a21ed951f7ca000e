"""awaithumans: await a typed answer from a human, from any agent or workflow.

from awaithumans import await_human_sync

decision = await_human_sync(task="Approve $250 refund?", payload_schema=RefundPayload,
                            payload=payload, response_schema=RefundDecision,
                            timeout_seconds=900)
"""

from awaithumans.core import (
    AuthenticationError,
    AwaitHumansError,
    FormDefinition,
    FormField,
    IdempotencyConflictError,
    InvalidRequestError,
    SchemaValidationError,
    ServerUnreachableError,
    TaskCancelledError,
    TaskClient,
    TaskNotFoundError,
    TaskStatus,
    TaskTimeoutError,
    TimeoutRangeError,
    VerificationExhaustedError,
    await_human,
    await_human_sync,
    extract_form,
)

__all__ = [
    "AuthenticationError",
    "AwaitHumansError",
    "FormDefinition",
    "FormField",
    "IdempotencyConflictError",
    "InvalidRequestError",
    "SchemaValidationError",
    "ServerUnreachableError",
    "TaskCancelledError",
    "TaskClient",
    "TaskNotFoundError",
    "TaskStatus",
    "TaskTimeoutError",
    "TimeoutRangeError",
    "VerificationExhaustedError",
    "await_human",
    "await_human_sync",
    "extract_form",
]
