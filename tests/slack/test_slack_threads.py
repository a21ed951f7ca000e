"""Answers written as thread replies: read by the task's verifier, answered in the thread."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from awaithumans.testing import ServerProcess
from awaithumans.verifiers import VerifierConfig
from tests._waiting import until
from tests.slack._helpers import add_user, create, posted, reply_event, send_event, task
from tests.slack.conftest import FAST
from tests.support.llm_standin import ProviderStandIn
from tests.support.slack_standin import Message, SlackStandIn

NL = VerifierConfig(provider="claude", instructions="Check the decision is clear.")


@pytest.fixture
def server(tmp_path: Path, slack: SlackStandIn) -> Iterator[ServerProcess]:
    with ProviderStandIn() as model:
        env = {**slack.env(), **model.env(), **FAST}
        with ServerProcess(workdir=tmp_path, env=env) as running:
            yield running


async def _thread(slack: SlackStandIn, server: ServerProcess, message: Message, count: int = 1
                  ) -> list[Message]:  # fmt: skip
    async def replies() -> list[Message] | None:
        found = slack.thread(message.channel, message.ts)
        return found if len(found) >= count else None

    found: list[Message] = await until(replies, timeout=20, why=server.logs)
    return found


async def test_a_thread_reply_is_read_into_the_answer(
    server: ServerProcess, slack: SlackStandIn
) -> None:
    await add_user(server, "Alice Archer", email="alice@acme.com", slack_user_id="U0ALICE01")
    made = await create(server, ["slack:U0ALICE01"], verifier=NL)
    (message,) = await posted(slack, server)
    reply = reply_event("U0ALICE01", message, "Approve it: the charge was doubled.")
    sent = await send_event(server, reply)
    assert sent.status_code == 200
    (said,) = await _thread(slack, server, message)
    assert said.text.startswith("✅ Recorded. I understood:")
    assert "*Approved*: Yes" in said.text
    assert slack.reactions[0]["name"] == "eyes"
    assert slack.reactions[0]["timestamp"] == reply["event"]["ts"]
    done = await task(server, made["id"])
    assert done["status"] == "completed"
    assert done["response"] == {"approved": True, "notes": "Approve it: the charge was doubled."}
    assert done["completed_via_channel"] == "slack"


async def test_an_unclear_reply_gets_told_what_is_missing(
    server: ServerProcess, slack: SlackStandIn
) -> None:
    await add_user(server, "Alice Archer", email="alice@acme.com", slack_user_id="U0ALICE01")
    made = await create(server, ["slack:U0ALICE01"], verifier=NL)
    (message,) = await posted(slack, server)
    await send_event(server, reply_event("U0ALICE01", message, "ok"))
    (said,) = await _thread(slack, server, message)
    assert "I couldn't take that as your answer" in said.text
    assert "(field: approved)" in said.text
    assert (await task(server, made["id"]))["status"] == "rejected"


async def test_without_a_verifier_the_bot_says_how_to_answer(
    server: ServerProcess, slack: SlackStandIn
) -> None:
    await add_user(server, "Alice Archer", email="alice@acme.com", slack_user_id="U0ALICE01")
    made = await create(server, ["slack:U0ALICE01"])
    (message,) = await posted(slack, server)
    await send_event(server, reply_event("U0ALICE01", message, "approve"))
    (said,) = await _thread(slack, server, message)
    assert "Replies here can't be read as answers" in said.text
    assert (await task(server, made["id"]))["status"] == "assigned"


async def test_bots_edits_and_other_threads_are_ignored(
    server: ServerProcess, slack: SlackStandIn
) -> None:
    await add_user(server, "Alice Archer", email="alice@acme.com", slack_user_id="U0ALICE01")
    made = await create(server, ["slack:U0ALICE01"], verifier=NL)
    (message,) = await posted(slack, server)
    elsewhere = Message(message.channel, "999.000001", "other", [])
    for payload in (
        reply_event("U0ALICE01", message, "approve", bot_id="B0OTHER"),
        reply_event("U0ALICE01", message, "approve", subtype="message_changed"),
        reply_event("U0ALICE01", elsewhere, "approve"),
    ):
        assert (await send_event(server, payload)).status_code == 200
    # A reply that is read, after the ignored ones, shows they were ignored, not pending.
    await send_event(server, reply_event("U0ALICE01", message, "approve"))
    (said,) = await _thread(slack, server, message)
    assert said.text.startswith("✅ Recorded.")
    assert len(slack.reactions) == 1
    assert (await task(server, made["id"]))["verification_attempt"] == 1


async def test_slack_checks_the_events_url(server: ServerProcess) -> None:
    sent = await send_event(server, {"type": "url_verification", "challenge": "c-123"})
    assert sent.json() == {"challenge": "c-123"}
