"""A support agent that drafts a reply and lets a person decide, in the Agent Inbox's shape.

``draft`` writes a reply to a ticket, ``review`` asks a person what to do with it, ``act``
does what they decided. ``review`` calls ``await_human`` with ``agent_inbox=AgentInbox(...)``:
its interrupt is a request LangChain's Agent Inbox can list (``action_request``, ``config``,
``description``), and it carries the awaithumans task too. So the same question can be
answered in two places, and either answer ends as one ``InboxDecision``:

- in awaithumans (dashboard, Slack, email, API): the server's webhook reaches ``relay.py``,
  which resumes the thread;
- in the Agent Inbox: the inbox resumes the thread itself with
  ``Command(resume=[{"type": ..., "args": ...}])`` (``inbox.py`` does exactly that), and the
  decision is written onto the awaithumans task, so its history holds every answer.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypedDict

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from pydantic import BaseModel, Field

from awaithumans.adapters.langgraph import AgentInbox, InboxDecision, await_human

# Every process opens the same checkpoint file; under .awaithumans/ (ignored by git).
CHECKPOINT_DB = os.environ.get("CHECKPOINT_DB", ".awaithumans/langgraph-inbox.db")
Path(CHECKPOINT_DB).parent.mkdir(parents=True, exist_ok=True)
# Where the server posts the outcome: relay.py. Kept in the thread's state so that the node,
# run again on resume, asks with exactly the same request.
RELAY_URL = os.environ.get("RELAY_URL", "http://127.0.0.1:8766/")


class Email(BaseModel):
    """The action the agent proposes: its arguments, as the inbox shows and edits them."""

    to: str = Field(description="The customer's address")
    subject: str
    body: str


class ReplyState(TypedDict, total=False):
    ticket: str
    callback_url: str
    email: dict[str, Any]
    decision: dict[str, Any]
    outcome: str


def draft(state: ReplyState) -> dict[str, Any]:
    # A real agent would read the ticket and ask a model; this one writes the same reply.
    email = Email(
        to=f"customer-{state['ticket'].lower()}@example.com",
        subject=f"About your ticket {state['ticket']}",
        body="We refunded the double charge; it shows on your card within 5 days.",
    )
    return {"email": email.model_dump()}


async def review(state: ReplyState) -> dict[str, Any]:
    decision = await await_human(
        task=f"Send this reply on ticket {state['ticket']}?",
        payload_schema=Email,
        payload=state["email"],
        response_schema=InboxDecision,
        timeout_seconds=24 * 3600,
        callback_url=state["callback_url"],
        agent_inbox=AgentInbox(action="send_email"),
    )
    return {"decision": decision.model_dump()}


def act(state: ReplyState) -> dict[str, Any]:
    decision = InboxDecision.model_validate(state["decision"])
    if decision.type in ("accept", "edit"):
        # An accept from the inbox carries the proposed arguments; one given in awaithumans
        # ({"type": "accept"}) none, and means the draft. An edit's are validated as the
        # draft's were.
        sent = Email.model_validate(decision.args or state["email"])
        outcome = f"sent to {sent.to}: {sent.subject!r} ({decision.type})"
    elif decision.type == "response":
        outcome = f"not sent; the reviewer said: {decision.response}"
    else:
        outcome = "not sent; the reviewer ignored it"
    return {"outcome": outcome}


def build(checkpointer: BaseCheckpointSaver[Any]) -> CompiledStateGraph[Any]:
    builder = StateGraph(ReplyState)
    builder.add_node("draft", draft)
    builder.add_node("review", review)
    builder.add_node("act", act)
    builder.add_edge(START, "draft")
    builder.add_edge("draft", "review")
    builder.add_edge("review", "act")
    builder.add_edge("act", END)
    return builder.compile(checkpointer=checkpointer)


def thread_config(ticket: str) -> Any:
    # One thread per ticket: run.py twice for a ticket shows the same request.
    return {"configurable": {"thread_id": f"reply-{ticket}"}}
