"""The refusal every layer of the server raises: :class:`ApiError`, with a stable code.

Services, the authenticator and the routes all refuse the same way; the API layer
(:mod:`awaithumans.server.api.errors`) turns an ``ApiError`` into the one error body,
``{"error": CODE, "message": ..., "details"?: [...]}``. Nothing here knows about HTTP
frameworks, so the answer path can be reached from Slack's socket or a background loop.

It is the SDK's :class:`awaithumans.core.ApiError` (the branch of the error tree the SDK
raises for refusals), with the status first, a code the one :class:`ErrorCode` enum must
name, and the response headers a refusal may carry (``Retry-After``).
"""

from __future__ import annotations

from typing import Any

from awaithumans.core._codes import ErrorCode
from awaithumans.core._errors import ApiError as _SdkApiError

__all__ = ["ApiError", "ErrorCode"]


class ApiError(_SdkApiError):
    """A refusal with an HTTP status, a stable code and a message meant for the caller."""

    def __init__(
        self,
        status_code: int,
        code: ErrorCode,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, code=code, status_code=status_code, details=details)
        self.headers = headers
