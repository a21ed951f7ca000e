"""examples/langgraph-agent-inbox as its README says to run it: ``awaithumans dev``, the relay
and the scripts as the reader's terminals, every fenced command in order, what they print
checked against the README's promised output; then the inbox's other answers.

Both ways to answer: (a) in awaithumans (the README's curl; the relay resumes the thread)
and (b) as the Agent Inbox does (``inbox.py`` resumes the thread with
``Command(resume=[...])``, and the decision is recorded on the awaithumans task).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from awaithumans.testing import free_port
from tests.e2e.test_readme_commands import (
    ANSWER_TIME,
    SERVER_START,
    Commands,
    admin,
    curl_answer,
    dev_server,
)
from tests.examples._example_module import example_module
from tests.support.readme_runner import Session, assert_printed, read_doc, start_session

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "langgraph-agent-inbox"
SCRIPTS = "python examples/langgraph-agent-inbox"


def started(session: Session, command: str) -> str:
    """``run.py TICKET`` run to its end: the task id it printed."""
    run = session.run(command)
    assert run.finish(SERVER_START) == 0, run.output()
    return run.wait_for(r"^  task: +(tsk_\w+)$", 1, session.why)[1]


def task(client: httpx.Client, task_id: str) -> dict[str, Any]:
    got = client.get(f"/api/tasks/{task_id}")
    assert got.status_code == 200, got.text
    return dict(got.json())


def email(ticket: str, **changed: str) -> dict[str, str]:
    """The draft graph.py writes for a ticket, with the reviewer's edits."""
    return {
        "to": f"customer-{ticket.lower()}@example.com",
        "subject": f"About your ticket {ticket}",
        "body": "We refunded the double charge; it shows on your card within 5 days.",
        **changed,
    }


async def final_state(session: Session, ticket: str) -> dict[str, Any]:
    """The thread's values, read back from the example's checkpoint file by this process."""
    graph = example_module(EXAMPLE, "graph")
    db = session.root / ".awaithumans" / "langgraph-inbox.db"
    async with AsyncSqliteSaver.from_conn_string(str(db)) as saver:
        state = await graph.build(saver).aget_state(graph.thread_config(ticket))
    assert state.next == (), state
    return dict(state.values)


async def test_agent_inbox_example_readme(tmp_path: Path) -> None:
    doc = read_doc(EXAMPLE / "README.md")
    steps = Commands(doc)
    relay_port = free_port()
    env = {  # the settings the README names, carrying a free port instead of 8766
        "AWAITHUMANS_PORT": str(free_port()),
        "RELAY_PORT": str(relay_port),
        "RELAY_URL": f"http://127.0.0.1:{relay_port}/",
    }
    with start_session(tmp_path, **env) as session:
        _dev, port = dev_server(session, steps.take("awaithumans dev"))
        relay = session.run(
            steps.take(
                r"WEBHOOK_SECRET=\$\(awaithumans webhook-secret\)"
                rf" {SCRIPTS}/relay\.py"
            )
        )
        relay.wait_for(r"^relay listening on ", SERVER_START, session.why)
        client = admin(session, port)

        # (a) The README's first ticket, answered with its curl; the relay resumes it.
        run = session.run(steps.take(rf"{SCRIPTS}/run\.py T-1001"))
        assert run.finish(SERVER_START) == 0, run.output()
        assert_printed(doc.outputs[0], run.lines, port, {})
        first = run.wait_for(r"^  task: +(tsk_\w+)$", 1, session.why)[1]
        assert task(client, first)["payload"] == email("T-1001")
        curl_answer(session, steps.take(r"curl .*/complete\""), first)
        relay.wait_for(r"^finished reply-T-1001: ", ANSWER_TIME, session.why)
        assert_printed(doc.outputs[1], relay.lines, port, {})
        values = await final_state(session, "T-1001")
        assert values["decision"] == {"type": "accept", "args": None, "response": None}

        # (b) The second ticket, edited as the Agent Inbox does.
        second = started(session, steps.take(rf"{SCRIPTS}/run\.py T-1002"))
        edit = session.run(steps.take(rf"{SCRIPTS}/inbox\.py T-1002 edit '.*'"))
        assert edit.finish(SERVER_START) == 0, edit.output()
        assert_printed(doc.outputs[2], edit.lines, port, {})
        edited = email("T-1002", subject="Your refund is on its way")
        recorded = task(client, second)
        assert (recorded["status"], recorded["response"]) == (
            "completed",
            {"type": "edit", "args": edited, "response": None},
        )
        assert (await final_state(session, "T-1002"))["decision"]["args"] == edited
        steps.done()

        # The answers the README names in words, each on its own ticket.
        words = "Ask for the order number first."
        for ticket, answer, outcome in [
            ("T-1003", "accept", "sent to customer-t-1003@example.com: "),
            ("T-1004", f"response '{words}'", f"not sent; the reviewer said: {words}"),
            ("T-1005", "ignore", "not sent; the reviewer ignored it"),
        ]:
            task_id = started(session, f"{SCRIPTS}/run.py {ticket}")
            given = session.run(f"{SCRIPTS}/inbox.py {ticket} {answer}")
            assert given.finish(SERVER_START) == 0, given.output()
            given.wait_for(rf"^finished reply-{ticket}: {outcome}", 1, session.why)
            kind = answer.split()[0]
            expected = {
                "type": kind,
                "args": email(ticket) if kind == "accept" else None,
                "response": words if kind == "response" else None,
            }
            recorded = task(client, task_id)
            assert (recorded["status"], recorded["response"]) == ("completed", expected)
        # A thread that finished waits for nobody: inbox.py says so and changes nothing.
        late = session.run(f"{SCRIPTS}/inbox.py T-1005 accept")
        assert late.finish(SERVER_START) == 1, late.output()
        assert "Ticket T-1005 waits for nobody: not sent" in late.output()
