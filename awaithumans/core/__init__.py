"""The SDK core: ``await_human``, the wire protocol, errors, forms and server discovery.

Imports httpx and pydantic only.
"""

from awaithumans.core._approvals import Approval, approvals_of
from awaithumans.core._ask import ASK_PARAMETERS, Ask
from awaithumans.core._await import await_human, await_human_sync
from awaithumans.core._client import TaskClient
from awaithumans.core._codes import ErrorCode
from awaithumans.core._defaults import is_default
from awaithumans.core._errors import (
    ApiError,
    AuthenticationError,
    AwaitHumansError,
    ConfigurationError,
    IdempotencyConflictError,
    InvalidRequestError,
    InvalidResumeError,
    MissingExtraError,
    NotOurEventError,
    PermissionDeniedError,
    ReceiptInvalidError,
    RetryLaterError,
    SchemaValidationError,
    ServerUnreachableError,
    TaskCancelledError,
    TaskError,
    TaskNotFoundError,
    TaskTimeoutError,
    TimeoutRangeError,
    VerificationExhaustedError,
)
from awaithumans.core._forms import FormDefinition, FormField, extract_form, form_from_json_schema
from awaithumans.core._receipts import VerifiedReceipt, verify_receipt
from awaithumans.core._wire import TaskStatus

__all__ = [
    "ASK_PARAMETERS",
    "ApiError",
    "Approval",
    "Ask",
    "AuthenticationError",
    "AwaitHumansError",
    "ConfigurationError",
    "ErrorCode",
    "FormDefinition",
    "FormField",
    "IdempotencyConflictError",
    "InvalidRequestError",
    "InvalidResumeError",
    "MissingExtraError",
    "NotOurEventError",
    "PermissionDeniedError",
    "ReceiptInvalidError",
    "RetryLaterError",
    "SchemaValidationError",
    "ServerUnreachableError",
    "TaskCancelledError",
    "TaskClient",
    "TaskError",
    "TaskNotFoundError",
    "TaskStatus",
    "TaskTimeoutError",
    "TimeoutRangeError",
    "VerificationExhaustedError",
    "VerifiedReceipt",
    "approvals_of",
    "await_human",
    "await_human_sync",
    "extract_form",
    "form_from_json_schema",
    "is_default",
    "verify_receipt",
]
