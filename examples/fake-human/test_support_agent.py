"""Tests of the support agent with awaithumans' `fake_human` fixture.

No server to start and nobody to click: the fixture runs one in this process, and the fake
person answers each task by the first rule that matches. Run with `pytest` in this folder.
"""

from __future__ import annotations

import pytest
from support_agent import RefundDecision, handle_refund

from awaithumans import TaskCancelledError
from awaithumans.testing.fake_human import FakeHumanError


def test_small_refunds_ask_nobody(fake_human):
    assert handle_refund("ord_1", 40, "late delivery") == "Refunded $40 for ord_1."
    assert fake_human.asked == []


def test_a_person_approves_a_large_refund(fake_human):
    fake_human.answer(title_contains="refund", with_=RefundDecision(approved=True))
    assert handle_refund("ord_2", 400, "damaged") == "Refunded $400 for ord_2."
    (asked,) = fake_human.asked
    assert asked.payload == {"order_id": "ord_2", "amount_usd": 400, "reason": "damaged"}


def test_a_refusal_is_passed_on_to_the_customer(fake_human):
    fake_human.reject(title_contains="refund", notes="Outside the return window.")
    reply = handle_refund("ord_3", 900, "changed my mind")
    assert reply == "Sorry, we cannot refund ord_3: Outside the return window."


def test_nobody_answering_in_time_declines(fake_human):
    fake_human.time_out(title_contains="refund")
    reply = handle_refund("ord_4", 300, "never arrived")
    assert reply == "Sorry, we cannot refund ord_4: No one could review it in time."


def test_very_large_refunds_take_two_people_of_finance(fake_human):
    # Only the approvers may answer these: the fake human acts as the people listed
    # (the CFO's directory user, then a fake member of the finance role).
    fake_human.answer(title_contains="refund", with_=RefundDecision(approved=True))
    assert handle_refund("ord_5", 5000, "fraud") == "Refunded $5000 for ord_5."
    (asked,) = fake_human.asked
    cfo, other = asked.answered_by
    assert cfo == "cfo@acme.com"
    assert other != cfo


def test_someone_outside_finance_cannot_approve(fake_human):
    # as_= says whom to act as; the server refuses a non-approver, as it would the real one.
    fake_human.answer(
        title_contains="refund", with_=RefundDecision(approved=True), as_="lead@acme.com"
    )
    with pytest.raises(TaskCancelledError):
        handle_refund("ord_6", 5000, "fraud")
    with pytest.raises(FakeHumanError, match=r"lead@acme\.com: NOT_AN_APPROVER"):
        fake_human.close()  # what would fail the test at its end, checked here
