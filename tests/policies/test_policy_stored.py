"""A stored policy read back strictly: ``escalate_after_seconds`` written by another writer
as a float or a string comes back an int, as ``reminder_seconds`` and
``approvals_required`` do, so the nudge plan can sort and add it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from awaithumans.server.services.nudge_notice import ESCALATION, REMINDER
from awaithumans.server.services.nudge_plan import first_nudge_at, plan_of
from awaithumans.server.services.policy import from_stored

ROUTES = ["email:lead@acme.com"]


@pytest.mark.parametrize("written", [7200, 7200.0, "7200"])
def test_escalate_after_is_an_int_whatever_the_writer_stored(written: Any) -> None:
    stored = {
        "reminder_seconds": ["3600"],
        "escalate_after_seconds": written,
        "escalate_to": ROUTES,
    }
    policy = from_stored(stored)
    assert policy.escalate_after_seconds == 7200
    assert type(policy.escalate_after_seconds) is int
    steps = plan_of(policy)
    assert [(s.kind, s.offset_seconds) for s in steps] == [(REMINDER, 3600), (ESCALATION, 7200)]
    assert all(type(s.offset_seconds) is int for s in steps)


def test_a_stored_string_escalation_alone_sets_the_first_nudge() -> None:
    created = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    stored = {"escalate_after_seconds": "90", "escalate_to": ROUTES}
    assert first_nudge_at(stored, created, None) == created + timedelta(seconds=90)


def test_no_escalation_stays_none() -> None:
    assert from_stored({"reminder_seconds": [60]}).escalate_after_seconds is None


def test_a_value_that_is_no_number_is_refused_on_read() -> None:
    with pytest.raises(ValueError, match="soon"):
        from_stored({"escalate_after_seconds": "soon", "escalate_to": ROUTES})
