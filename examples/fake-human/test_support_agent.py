"""Tests of the support agent with awaithumans' `fake_human` fixture.

No server to start and nobody to click: the fixture runs one in this process, and the fake
person answers each task by the first rule that matches. Run with `pytest` in this folder.
"""

from __future__ import annotations

from support_agent import RefundDecision, handle_refund


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
