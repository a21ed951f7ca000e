"""The refusal every layer of the server raises: :class:`ApiError`, with a stable code.

Services, the authenticator and the routes all refuse the same way; the API layer
(:mod:`awaithumans.server.api.errors`) turns an ``ApiError`` into the one error body,
``{"error": CODE, "message": ..., "details"?: [...]}``. Nothing here knows about HTTP
frameworks, so the answer path can be reached from Slack's socket or a background loop.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A refusal with an HTTP status, a stable code and a message meant for the caller."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers
