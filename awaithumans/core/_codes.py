"""Every error code awaithumans uses, in one enum shared by the server and the SDK.

A code is what programs match on: the server sends it as ``{"error": CODE, ...}`` and the
SDK's errors carry it as ``.code``. Members are strings (``ErrorCode.TASK_NOT_FOUND ==
"TASK_NOT_FOUND"``), so code written against plain strings keeps working. A code is added
here before anything may use it; a test checks that the server uses no other.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    # -- the task and its outcome --------------------------------------------------------
    TIMEOUT_EXCEEDED = "TIMEOUT_EXCEEDED"
    TASK_CANCELLED = "TASK_CANCELLED"
    VERIFICATION_EXHAUSTED = "VERIFICATION_EXHAUSTED"
    TASK_NOT_FOUND = "TASK_NOT_FOUND"
    TASK_ALREADY_TERMINAL = "TASK_ALREADY_TERMINAL"
    TASK_ALREADY_CLAIMED = "TASK_ALREADY_CLAIMED"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    NOT_ASSIGNED_TO_YOU = "NOT_ASSIGNED_TO_YOU"
    VERIFIER_API_KEY_MISSING = "VERIFIER_API_KEY_MISSING"

    # -- requests --------------------------------------------------------------------------
    SCHEMA_VALIDATION_FAILED = "SCHEMA_VALIDATION_FAILED"
    VALIDATION_ERROR = "VALIDATION_ERROR"
    TIMEOUT_OUT_OF_RANGE = "TIMEOUT_OUT_OF_RANGE"
    IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT"
    INVALID_REQUEST = "INVALID_REQUEST"
    INVALID_JSON = "INVALID_JSON"
    INVALID_SCHEMA = "INVALID_SCHEMA"
    INVALID_NOTIFY_ROUTE = "INVALID_NOTIFY_ROUTE"
    INVALID_CALLBACK_URL = "INVALID_CALLBACK_URL"
    INVALID_ASSIGNEE = "INVALID_ASSIGNEE"
    INVALID_VERIFIER_CONFIG = "INVALID_VERIFIER_CONFIG"
    INVALID_CURSOR = "INVALID_CURSOR"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    BAD_REQUEST = "BAD_REQUEST"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    NOT_ACCEPTABLE = "NOT_ACCEPTABLE"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    HTTP_ERROR = "HTTP_ERROR"

    # -- who is asking -----------------------------------------------------------------------
    UNAUTHORIZED = "UNAUTHORIZED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    CSRF_FAILED = "CSRF_FAILED"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    RATE_LIMITED = "RATE_LIMITED"
    INVALID_SETUP_TOKEN = "INVALID_SETUP_TOKEN"
    SETUP_ALREADY_DONE = "SETUP_ALREADY_DONE"
    WEAK_PASSWORD = "WEAK_PASSWORD"

    # -- the directory and operations --------------------------------------------------------
    USER_NOT_FOUND = "USER_NOT_FOUND"
    USER_UNREACHABLE = "USER_UNREACHABLE"
    EMAIL_TAKEN = "EMAIL_TAKEN"
    LAST_OPERATOR = "LAST_OPERATOR"
    AGENT_KEY_NOT_FOUND = "AGENT_KEY_NOT_FOUND"
    DELIVERY_NOT_FOUND = "DELIVERY_NOT_FOUND"

    # -- the server itself -------------------------------------------------------------------
    SERVER_UNREACHABLE = "SERVER_UNREACHABLE"
    SERVER_RESTARTING = "SERVER_RESTARTING"
    DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"
    INTERNAL_ERROR = "INTERNAL_ERROR"

    # -- the SDK and the adapters ------------------------------------------------------------
    AWAITHUMANS_ERROR = "AWAITHUMANS_ERROR"
    CONFIGURATION_ERROR = "CONFIGURATION_ERROR"
    EXTRA_NOT_INSTALLED = "EXTRA_NOT_INSTALLED"
    NOT_OUR_EVENT = "NOT_OUR_EVENT"
    RETRY_LATER = "RETRY_LATER"
    RESUME_TASK_MISMATCH = "RESUME_TASK_MISMATCH"
    RESUME_NOT_FINAL = "RESUME_NOT_FINAL"
    RESUME_WITHOUT_RESPONSE = "RESUME_WITHOUT_RESPONSE"
