"""Every shell command of the README's quickstart and of each example's README, run as written.

Each test walks one README's commands in order (see ``tests/support/readme_runner.py``): a
command the test does not expect there fails it, so the READMEs cannot drift from what is
tested. Between commands the test does what the README asks of the reader (open the setup
link, answer the task), and it checks the output the README promises, line by line.

What the test changes, and why: each README's fixed ports (Prefect's 4200, Temporal's 7233,
the relays') move to free ones, so that parallel runs and servers already on the machine
never collide; the settings the README names for that (``RELAY_URL``, ``TEMPORAL_ADDRESS``,
...) carry the new ports, and the dev server starts its search at a free port
(``AWAITHUMANS_PORT``), as the README says it does when 3001 is taken. Setup commands
(``scripts/setup.sh``, ``pip install``) are what built the environment these tests run in;
``tests/e2e/test_setup_script.py`` runs setup.sh itself in a fresh clone.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from awaithumans.testing import free_port
from tests.slack._helpers import action_payload, buttons, submission_payload
from tests.support.readme_runner import (
    REPO,
    Doc,
    Session,
    Terminal,
    assert_printed,
    read_doc,
    start_session,
)
from tests.support.slack_standin import APP_TOKEN, BOT_TOKEN, BOT_USER, Member, SlackStandIn

pytestmark = pytest.mark.e2e

EXAMPLES = REPO / "examples"
SERVER_START = 60.0
ANSWER_TIME = 60.0


class Commands:
    """A README's commands, taken one by one, each checked against what the test expects."""

    def __init__(self, doc: Doc) -> None:
        self.doc = doc
        self._left = list(doc.commands)

    def take(self, pattern: str) -> str:
        assert self._left, f"the README has no more commands; the test expects /{pattern}/"
        command = self._left.pop(0)
        assert re.fullmatch(pattern, command), (
            f"the README's next command is {command!r}; the test expects /{pattern}/"
        )
        return command

    def done(self) -> None:
        assert not self._left, f"commands in the README that no test runs: {self._left}"


def moved(command: str, ports: dict[int, int]) -> str:
    """The command with each fixed port (``:4200``, ``--port 4200``) moved to a free one."""
    for old, new in ports.items():
        command = re.sub(rf"(:|--port ){old}\b", rf"\g<1>{new}", command)
    return command


def dev_server(session: Session, command: str) -> tuple[Terminal, int]:
    """Start ``awaithumans dev`` as written; its terminal and the port it took."""
    dev = session.run(command)
    dev.wait_for(r"^  \(one-shot setup link|^✓ Open the dashboard at: ", SERVER_START, session.why)
    port = int(dev.wait_for(r"^✓ Server running at http://localhost:(\d+)$", 1, session.why)[1])
    return dev, port


def setup_token(dev: Terminal, session: Session) -> str:
    return dev.wait_for(r"/setup\?token=(\S+)$", 1, session.why)[1]


def create_operator(port: int, token: str, email: str) -> None:
    """What the reader does with the setup link: create the first operator account."""
    made = httpx.post(
        f"http://127.0.0.1:{port}/api/setup/operator",
        json={
            "token": token,
            "email": email,
            "display_name": "Reader",
            "password": "correct horse battery staple",
        },
        timeout=10,
    )
    assert made.status_code == 201, made.text


def admin(session: Session, port: int) -> httpx.Client:
    token = (session.root / ".awaithumans" / "admin.token").read_text().strip()
    return httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def wait_until(check: Callable[[], Any], timeout: float, why: Callable[[], str]) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s:\n{why()}")
        time.sleep(0.2)


def open_task(client: httpx.Client, title: str, why: Callable[[], str]) -> dict[str, Any]:
    """The task a reader sees in the dashboard's queue, once it is there."""

    def check() -> dict[str, Any] | None:
        items = client.get("/api/tasks", params={"limit": 200}).json()["items"]
        mine = [t for t in items if t["task"] == title]
        return mine[0] if mine else None

    found: dict[str, Any] = wait_until(check, ANSWER_TIME, why)
    return found


def answer(client: httpx.Client, task_id: str, response: dict[str, Any]) -> None:
    """The reader's answer, as the dashboard's Submit sends it (the API does the same)."""
    done = client.post(f"/api/tasks/{task_id}/complete", json={"response": response})
    assert done.status_code == 200, done.text


def curl_answer(session: Session, command: str, task_id: str) -> None:
    """The README's curl, with the task id it says to fill in."""
    assert "tsk_..." in command
    curl = session.run(command.replace("tsk_...", task_id))
    assert curl.finish(30) == 0, curl.output()
    assert '"status":"completed"' in curl.output().replace(" ", ""), curl.output()


def test_readme_quickstart(tmp_path: Path) -> None:
    doc = read_doc(REPO / "README.md")
    steps = Commands(doc)
    # The two commands: setup.sh is tested in a fresh clone by test_setup_script.py, its
    # `awaithumans dev` is the quickstart's below, and command 2 is this very test suite.
    steps.take(r"bash scripts/setup\.sh server && \.venv/bin/awaithumans dev")
    steps.take(r"sudo bash scripts/test\.sh +# .*")
    steps.take(r'pip install "awaithumans\[server\]" +# in this repository: .*')
    steps.take(r"source \.venv/bin/activate +# .*")  # every terminal here begins with it
    with start_session(tmp_path, AWAITHUMANS_PORT=str(free_port())) as session:
        dev, port = dev_server(session, steps.take("awaithumans dev"))
        assert_printed(doc.outputs[0], dev.lines, port, {})
        script = session.run(steps.take(r"python examples/quickstart/refund\.py"))
        task_id = script.wait_for(r"^✓ Task created: (tsk_\w+)$", SERVER_START, session.why)[1]
        script.wait_for(r"Waiting for human", 5, session.why)
        assert_printed(doc.outputs[1], script.lines, port, {})
        curl_answer(session, steps.take(r"curl .*/complete\""), task_id)
        assert script.finish(ANSWER_TIME) == 0, script.output()
        # The Analytics section's curl: the refund just answered, through the API.
        stats = session.run(steps.take(r"curl .*/api/stats\?.*"))
        assert stats.finish(30) == 0, stats.output()
        figures = json.loads(stats.output())
        assert figures["totals"]["completed"] == 1, figures
        assert [g["key"] for g in figures["groups"]] == ["api"], figures
        verdict = "Refund approved: Duplicate charge confirmed by support team."
        assert f"`{verdict}`" in doc.text
        assert script.lines[-1] == verdict
    steps.done()


def test_email_example_readme(tmp_path: Path) -> None:
    doc = read_doc(EXAMPLES / "email" / "README.md")
    steps = Commands(doc)
    with start_session(tmp_path, AWAITHUMANS_PORT=str(free_port())) as session:
        dev, port = dev_server(
            session, steps.take(r"AWAITHUMANS_EMAIL_TRANSPORT=logging awaithumans dev")
        )
        script = session.run(steps.take(r"python examples/email/invoice\.py you@acme\.com"))
        link = dev.wait_for(r"^  pay: (\S+)$", ANSWER_TIME, session.why)[1]
        dev.wait_for(r"^Open task: ", 5, session.why)
        assert_printed(doc.outputs[0], dev.lines, port, {})
        # The reader opens the pay link, writes a note and presses "Confirm: pay".
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as browser:
            page = browser.get(link.replace(f"http://localhost:{port}", ""))
            assert page.status_code == 200, page.text
            assert "Confirm: pay" in page.text
            form = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page.text))
            done = browser.post(
                "/api/channels/email/answer", data={**form, "note": "Matches the PO"}
            )
            assert done.status_code == 200, done.text
        assert script.finish(ANSWER_TIME) == 0, script.output()
        assert_printed(doc.outputs[1], script.lines, port, {})
    steps.done()


def test_langgraph_example_readme(tmp_path: Path) -> None:
    doc = read_doc(EXAMPLES / "langgraph" / "README.md")
    steps = Commands(doc)
    relay_port = free_port()
    env = {  # the settings the README names, carrying a free port instead of 8765
        "AWAITHUMANS_PORT": str(free_port()),
        "RELAY_PORT": str(relay_port),
        "RELAY_URL": f"http://127.0.0.1:{relay_port}/",
    }
    with start_session(tmp_path, **env) as session:
        _dev, port = dev_server(session, steps.take("awaithumans dev"))
        relay = session.run(
            steps.take(
                r"WEBHOOK_SECRET=\$\(awaithumans webhook-secret\)"
                r" python examples/langgraph/relay\.py"
            )
        )
        relay.wait_for(r"^relay listening on ", SERVER_START, session.why)
        run = session.run(steps.take(r"python examples/langgraph/run\.py ord_1042 4200"))
        assert run.finish(SERVER_START) == 0, run.output()
        assert_printed(doc.outputs[0], run.lines, port, {})
        task_id = run.wait_for(r"^  task: +(tsk_\w+)$", 1, session.why)[1]
        curl_answer(session, steps.take(r"curl .*/complete\""), task_id)
        relay.wait_for(
            r'^finished refund-ord_1042: \{.*"outcome": "refunded 4200 cents ',
            ANSWER_TIME,
            session.why,
        )
        assert "`relay.py` prints `finished refund-ord_1042:" in " ".join(doc.text.split())
    steps.done()


def test_prefect_example_readme(tmp_path: Path) -> None:
    doc = read_doc(EXAMPLES / "prefect" / "README.md")
    steps = Commands(doc)
    ports = {4200: free_port(), 3003: free_port()}
    env = {
        "AWAITHUMANS_PORT": str(free_port()),
        # No telemetry leaves the machine; runs are picked up each second (the README's tip).
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
    }
    api = f"http://127.0.0.1:{ports[4200]}/api"
    with start_session(tmp_path, **env) as session:
        _dev, port = dev_server(session, steps.take("awaithumans dev"))
        session.run(
            moved(steps.take(r"prefect server start --host 127\.0\.0\.1 --port 4200"), ports)
        )
        wait_until(lambda: _healthy(f"{api}/health"), 120, session.why)

        # Paused: the flow's process waits, the curl answers, the flow goes on.
        flow = session.run(
            moved(
                steps.take(
                    r"PREFECT_API_URL=http://127\.0\.0\.1:4200/api"
                    r" python examples/prefect/flow\.py ord_1042 4200"
                ),
                ports,
            )
        )
        waiting = flow.wait_for(
            rf"Waiting for a human: http://localhost:{port}/task\?id=(tsk_\w+) \(task (tsk_\w+)\)",
            SERVER_START,
            session.why,
        )
        assert waiting[1] == waiting[2]
        curl_answer(session, steps.take(r"curl .*/complete\""), waiting[1])
        assert flow.finish(ANSWER_TIME) == 0, flow.output()
        assert flow.lines[-1].startswith("refunded 4200 cents to cus_1042: "), flow.output()

        # Suspended: the relay, serve.py, a deployment run; the answer resumes the run.
        relay = session.run(
            moved(
                steps.take(
                    r"AWAITHUMANS_WEBHOOK_SECRET=\$\(awaithumans webhook-secret\)"
                    r" PREFECT_API_URL=http://127\.0\.0\.1:4200/api"
                    r" awaithumans relay prefect --port 3003"
                ),
                ports,
            )
        )
        relay.wait_for(r"Relaying webhooks", SERVER_START, session.why)
        session.run(
            moved(
                steps.take(
                    r"RELAY_URL=http://127\.0\.0\.1:3003/ PREFECT_API_URL=http://127\.0\.0\.1:4200/api"
                    r" python examples/prefect/serve\.py"
                ),
                ports,
            )
        )
        deployment = f"{api}/deployments/name/refund/refund-suspended"
        wait_until(lambda: _healthy(deployment), SERVER_START, session.why)
        started = session.run(
            moved(
                steps.take(
                    r"PREFECT_API_URL=http://127\.0\.0\.1:4200/api prefect deployment run"
                    r" refund/refund-suspended -p order_id=ord_7 -p amount_cents=990"
                ),
                ports,
            )
        )
        assert started.finish(SERVER_START) == 0, started.output()
        with admin(session, port) as client:
            task = open_task(client, "Refund 9.90 USD for order ord_7?", session.why)
            run_id = task["task_metadata"]["prefect"]["flow_run_id"]
            wait_until(lambda: _run_state(api, run_id) == "Suspended", ANSWER_TIME, session.why)
            answer(client, task["id"], {"approved": True, "notes": "charged twice"})
        wait_until(lambda: _run_state(api, run_id) == "Completed", 90, session.why)
    steps.done()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _run_state(api: str, run_id: str) -> str | None:
    run = httpx.get(f"{api}/flow_runs/{run_id}", timeout=5).json()
    state = run.get("state") or {}
    name: str | None = state.get("name")
    return name


def test_temporal_example_readme(tmp_path: Path) -> None:
    doc = read_doc(EXAMPLES / "temporal" / "README.md")
    steps = Commands(doc)
    ports = {7233: free_port(), 8088: free_port()}
    env = {  # the README's Settings table, carrying the moved ports
        "AWAITHUMANS_PORT": str(free_port()),
        "TEMPORAL_ADDRESS": f"localhost:{ports[7233]}",
        "RELAY_URL": f"http://localhost:{ports[8088]}/",
    }
    with start_session(tmp_path, **env) as session:
        first = steps.take(r"temporal server start-dev & awaithumans dev")
        # start-dev has no setting for its ports but these flags (its web UI moves too).
        dev, port = dev_server(
            session,
            first.replace(
                "start-dev", f"start-dev --port {ports[7233]} --ui-port {free_port()} --headless"
            ),
        )
        relay = session.run(
            moved(
                steps.take(
                    r"AWAITHUMANS_WEBHOOK_SECRET=\$\(awaithumans webhook-secret\) awaithumans"
                    r" relay temporal --temporal-address localhost:7233 --port 8088"
                ),
                ports,
            )
        )
        relay.wait_for(r"Relaying webhooks", SERVER_START, session.why)
        both = session.run(
            steps.take(
                r"python examples/temporal/worker\.py & python examples/temporal/starter\.py"
            )
        )
        started = both.wait_for(r"^Started workflow refund-(ord_\w+)", SERVER_START, session.why)
        order = started[1]
        with admin(session, port) as client:
            task = wait_until(
                lambda: [
                    t
                    for t in client.get("/api/tasks", params={"limit": 200}).json()["items"]
                    if order in t["task"]
                ],
                ANSWER_TIME,
                session.why,
            )[0]
            answer(client, task["id"], {"approved": True, "notes": "duplicate charge confirmed"})
        both.wait_for(r"^Refund for ord_\w+ approved and paid", ANSWER_TIME, session.why)
        assert_printed(doc.outputs[0], both.lines, port, {"ord_3f9a1c": order})
        assert dev.proc.poll() is None
    steps.done()


def test_slack_example_readme(tmp_path: Path) -> None:
    doc = read_doc(EXAMPLES / "slack-native" / "README.md")
    steps = Commands(doc)
    # A workspace where the reader is you@acme.com, the README's example address.
    you = Member("U0YOU0001", "you", "You Reader", "you@acme.com")
    bot = Member(BOT_USER, "awaithumans", "Await Humans", None, is_bot=True)
    with (
        SlackStandIn(members={you.id: you, bot.id: bot}) as slack,
        start_session(
            tmp_path,
            AWAITHUMANS_PORT=str(free_port()),
            # The one setting the README has no reason to name: where Slack's API is.
            AWAITHUMANS_SLACK_API_URL=slack.api_url,
            AWAITHUMANS_OUTBOX_POLL_SECONDS="0.3",
        ) as session,
    ):
        manifest = session.run(
            steps.take(r"awaithumans slack manifest --url http://localhost:3001 --socket-mode")
        )
        assert manifest.finish(30) == 0, manifest.output()
        assert '"socket_mode_enabled": true' in manifest.output()
        export = steps.take(
            r"export AWAITHUMANS_SLACK_BOT_TOKEN=xoxb-… AWAITHUMANS_SLACK_APP_TOKEN=xapp-…"
        )
        # The tokens the reader copies from Slack's pages; `export` holds for that terminal.
        export = export.replace("xoxb-…", BOT_TOKEN).replace("xapp-…", APP_TOKEN)
        dev, port = dev_server(session, f"{export}\n{steps.take('awaithumans dev')}")
        assert slack.socket_mode.wait_connected(SERVER_START), session.why()
        # "You": finish the setup link with your Slack account's email.
        create_operator(port, setup_token(dev, session), "you@acme.com")
        script = session.run(steps.take(r"python examples/slack-native/refund\.py you@acme\.com"))
        script.wait_for(r"Review at: ", SERVER_START, session.why)
        dm = wait_until(slack.posted, ANSWER_TIME, session.why)[0]
        press = {b["text"]["text"]: b for b in buttons(dm)}["Approve in Slack"]
        slack.socket_mode.send(
            "interactive", action_payload(you.id, "awaithumans_open_modal", press["value"], dm)
        )
        view = wait_until(lambda: list(slack.views), ANSWER_TIME, session.why)[0]["view"]
        given: dict[str, dict[str, Any]] = {
            "approved": {"type": "radio_buttons", "selected_option": {"value": "true"}},
            "notes": {"type": "plain_text_input", "value": "Photo shows the crack"},
        }
        slack.socket_mode.send("interactive", submission_payload(you.id, view, given))
        assert script.finish(ANSWER_TIME) == 0, script.output()
        assert_printed(doc.outputs[0], script.lines, port, {})
    steps.done()
