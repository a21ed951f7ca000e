"""Cursors for lists of tasks, newest first: opaque to clients, checked when they come back."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from awaithumans.core._codes import ErrorCode
from awaithumans.server.errors import ApiError
from awaithumans.server.services.answers import TASK_ID


def encode_cursor(created_at: datetime, task_id: str) -> str:
    """The cursor for the page that follows the task (``created_at``, ``task_id``)."""
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{task_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The position a cursor names.

    Raises:
        ApiError: 400 ``INVALID_CURSOR`` for anything this server did not issue.
    """
    invalid = ApiError(400, ErrorCode.INVALID_CURSOR, "The cursor is not one this server issued.")
    try:
        stamp, task_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        at = datetime.fromisoformat(stamp)
        # Issued cursors hold an aware UTC time and a task id; anything else would reach the
        # database as a naive or out-of-range time (or NUL text) and fail there as a 500.
        if at.tzinfo is None or not TASK_ID.match(task_id):
            raise invalid
        return at.astimezone(UTC), task_id
    except (ValueError, UnicodeDecodeError, OverflowError):
        raise invalid from None
