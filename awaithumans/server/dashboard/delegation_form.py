"""The "away" form shared by /account (oneself) and /users/{id} (operators, for anyone):
away until a date, new tasks to a delegate meanwhile.

The date comes from a ``datetime-local`` input, which carries no time zone; the page says
it is UTC and it is read as UTC, the zone every date on the dashboard is shown in.
The checks that need the directory (self, unknown or inactive delegate, cycle) are
``SaveUser``'s, in the write that stores the delegation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import FormData

from awaithumans.core._codes import ErrorCode
from awaithumans.server.dashboard.admin_common import checked, text_field
from awaithumans.server.db.models import UserRow
from awaithumans.server.db.types import utcnow
from awaithumans.server.services.directory import SaveUser
from awaithumans.server.services.writer import Writer

FIELDS = ("away_until", "delegate")
_INPUT_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M")


@dataclass
class DelegationForm:
    """A submitted away form: the columns to store, what to show again, problems by field."""

    values: dict[str, Any]
    shown: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)


def read_delegation_form(form: FormData) -> DelegationForm:
    if checked(form, "end_delegation"):
        return DelegationForm({"away_until": None, "delegate_to_user_id": None}, {})
    raw_until, delegate = text_field(form, "away_until"), text_field(form, "delegate")
    got = DelegationForm({}, {"away_until": raw_until, "delegate": delegate})
    until = None
    for fmt in _INPUT_FORMATS:
        try:
            until = datetime.strptime(raw_until, fmt).replace(tzinfo=UTC)
            break
        except ValueError:
            continue
    if until is None:
        got.errors["away_until"] = "Enter the date and time you are back, like 2026-12-24 09:00."
    elif until <= utcnow():
        got.errors["away_until"] = "That time has passed: choose when you will be back."
    if not delegate:
        got.errors["delegate"] = "Choose who takes your new tasks meanwhile."
    if not got.errors:
        got.values = {"away_until": until, "delegate_to_user_id": delegate}
    return got


async def save_delegation(writer: Writer, user_id: str, got: DelegationForm) -> ErrorCode | None:
    """Store it (or the ending); a directory refusal lands on the delegate field."""
    save = SaveUser(user_id, got.values, create=False)
    refusal = await writer.submit(save)
    if refusal is ErrorCode.INVALID_DELEGATE:
        got.errors["delegate"] = save.problem or "That delegation is not possible."
    return refusal


async def delegation_view(engine: AsyncEngine, user_id: str) -> dict[str, Any]:
    """The person's delegation as the form shows it, and the people they may choose."""
    now = utcnow()
    async with engine.connect() as conn:
        me = (
            await conn.execute(
                select(UserRow.away_until, UserRow.delegate_to_user_id).where(UserRow.id == user_id)
            )
        ).first()
        people = (
            await conn.execute(
                select(UserRow.id, UserRow.display_name, UserRow.email)
                .where(UserRow.is_active.is_(True), UserRow.id != user_id)
                .order_by(UserRow.display_name, UserRow.id)
            )
        ).all()
    away = me is not None and me.away_until is not None and me.away_until > now
    names = {p.id: p.display_name for p in people}
    return {
        "away": away,
        "away_until": me.away_until if away and me is not None else None,
        "delegate_id": me.delegate_to_user_id if away and me is not None else None,
        "delegate_name": names.get(me.delegate_to_user_id or "") if away and me else None,
        "people": [{"id": p.id, "name": p.display_name, "email": p.email} for p in people],
    }
