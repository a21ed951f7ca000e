"""The quickstart, run as the docs tell a user to: ``awaithumans dev``, then ``python refund.py``.

The script gets no ``AWAITHUMANS_*`` variable: it must find the dev server and its token
through ``~/.awaithumans-dev.json`` (``HOME`` is a temporary directory here).
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_cli import DevServer, Lines, clean_env, default_sigint, stop_process

pytestmark = pytest.mark.e2e

REFUND_SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "quickstart" / "refund.py"
ANSWER = {"approved": True, "notes": "Duplicate charge confirmed by support team."}
VERDICT = "Refund approved: Duplicate charge confirmed by support team."


class Script:
    """``python refund.py`` as a subprocess, its stdout and stderr read line by line."""

    def __init__(self, home: Path, cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(REFUND_SCRIPT)],
            cwd=cwd,
            env=clean_env(home),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            preexec_fn=default_sigint,
        )
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self.out = Lines(self.proc.stdout)
        self.err = Lines(self.proc.stderr)

    def announced(self, port: int, timeout: float = 30.0) -> tuple[str, list[str]]:
        """Wait for the "Task created/resumed" lines; return the task id and those lines."""
        deadline = time.monotonic() + timeout
        first = self.err.next(deadline)
        found = re.fullmatch(
            r"✓ Task (created|resumed|already answered): (tsk_[0-9a-f]{24})", first
        )
        assert found, self.err.seen
        task_id = found[2]
        second = self.err.next(deadline)
        assert second == f"  Review at: http://localhost:{port}/task?id={task_id}", self.err.seen
        return task_id, [first, second]


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[DevServer]:
    server = DevServer(tmp_path / "project", tmp_path / "home")
    try:
        yield server.start()
    finally:
        if server.proc is not None:
            stop_process(server.proc, signal.SIGKILL)


@pytest.fixture
def run_script(tmp_path: Path, dev_server: DevServer) -> Iterator[Callable[[], Script]]:
    """Start the quickstart script (in its own directory, the dev server's HOME); kill after."""
    started: list[Script] = []
    agent_dir = tmp_path / "agent"
    agent_dir.mkdir()

    def start() -> Script:
        script = Script(dev_server.home, agent_dir)
        started.append(script)
        return script

    yield start
    for script in started:
        stop_process(script.proc, signal.SIGKILL)


def test_quickstart_refund_round_trip(
    dev_server: DevServer, run_script: Callable[[], Script]
) -> None:
    script = run_script()
    task_id, _ = script.announced(dev_server.port)
    waiting = script.err.next(time.monotonic() + 10)
    assert waiting == "  Waiting for human (timeout: 900s). Ctrl-C to abort."

    with dev_server.client() as admin:
        # The task the script made is the one the dashboard would show.
        view = admin.get(f"/api/tasks/{task_id}")
        assert view.status_code == 200, view.text
        assert view.json()["task"] == "Approve $250 refund?"
        assert view.json()["payload"] == {
            "amount_usd": 250,
            "customer_id": "cus_demo",
            "reason": "Duplicate charge",
        }
        answered = admin.post(f"/api/tasks/{task_id}/complete", json={"response": ANSWER})
        answered_at = time.monotonic()
        assert answered.status_code == 200, answered.text

    assert script.out.next(answered_at + 1.0) == VERDICT
    assert script.proc.wait(timeout=10) == 0
    assert script.out.rest(timeout=5) == []
    stderr = script.err.rest(timeout=5)
    assert "Traceback" not in "\n".join(stderr), stderr


def test_quickstart_rerun_after_answer_returns_the_stored_answer(
    dev_server: DevServer, run_script: Callable[[], Script]
) -> None:
    first = run_script()
    task_id, _ = first.announced(dev_server.port)
    with dev_server.client() as admin:
        answered = admin.post(f"/api/tasks/{task_id}/complete", json={"response": ANSWER})
        assert answered.status_code == 200, answered.text
    assert first.out.next(time.monotonic() + 10) == VERDICT
    assert first.proc.wait(timeout=10) == 0

    started = time.monotonic()
    again = run_script()
    same_id, lines = again.announced(dev_server.port)
    assert same_id == task_id
    # Said as it is: the rerun found the answer, nobody is asked again.
    assert lines[0] == f"✓ Task already answered: {task_id}"
    assert again.out.next(time.monotonic() + 10) == VERDICT
    assert again.proc.wait(timeout=10) == 0
    # Nobody was asked again: no "Waiting for human" line, and no long-poll wait.
    assert again.err.rest(timeout=5) == []
    assert time.monotonic() - started < 15
    with dev_server.client() as admin:
        items = admin.get("/api/tasks").json()["items"]
    assert [item["id"] for item in items] == [task_id]


def test_quickstart_ctrl_c_aborts_cleanly(
    dev_server: DevServer, run_script: Callable[[], Script]
) -> None:
    script = run_script()
    task_id, _ = script.announced(dev_server.port)
    assert script.err.next(time.monotonic() + 10).startswith("  Waiting for human")

    script.proc.send_signal(signal.SIGINT)
    assert script.proc.wait(timeout=15) == 130
    stderr = script.err.rest(timeout=5)
    text = "\n".join(stderr)
    assert "Traceback" not in text, text
    assert len([line for line in stderr if "Aborted" in line]) == 1, stderr
    assert script.out.rest(timeout=5) == []
    # The task stays open for a later run (or a human) to pick up.
    with httpx.Client(
        base_url=dev_server.url,
        headers={"Authorization": f"Bearer {dev_server.admin_token()}"},
        timeout=10,
    ) as admin:
        status = admin.get(f"/api/tasks/{task_id}").json()["status"]
    assert status not in ("completed", "cancelled", "timed_out"), status
