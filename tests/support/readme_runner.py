"""A README's shell blocks, run as a reader runs them: in order, one terminal per command.

A README promises commands and what they print. :func:`read_doc` takes its fenced ``bash``
blocks apart into commands (a trailing ``\\`` joins lines, as in a shell) and its plain
fenced blocks into the output it promises. A test pairs every command, in order, with a
:class:`Step` that says how a reader runs it: a server left running in its terminal until a
line says it is ready, a script that waits for a person, or a command that finishes. The
pairing is strict (a command added to a README without a step fails the test), and each
command runs verbatim through ``bash`` after ``source .venv/bin/activate``, in a workspace
that looks like the repository's root (its ``examples/``, ``scripts/`` and ``.venv/``)
with a private ``HOME``. The only edits are the placeholders a reader fills in themselves
(``tsk_...`` becomes the task id the script printed, ``xoxb-…`` a token) and fixed ports
moved to free ones, so parallel runs and a real server on the machine never collide.

Promised output is matched line by line, in order, against what the command printed:
``...`` (or ``…``) stands for anything, ``tsk_4f8a...`` for any task id, and the dev
server's ``localhost:3001`` for the port it really took.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Doc:
    commands: list[str]
    outputs: list[list[str]]
    text: str


def read_doc(path: Path) -> Doc:
    text = path.read_text(encoding="utf-8")
    commands: list[str] = []
    outputs: list[list[str]] = []
    for lang, body in FENCE.findall(text):
        if lang == "bash":
            commands.extend(_commands(body))
        elif lang == "":
            outputs.append([line.rstrip() for line in body.splitlines()])
    return Doc(commands, outputs, text)


def _commands(body: str) -> Iterator[str]:
    pending = ""
    for raw in body.splitlines():
        line = raw.rstrip()
        if not pending and (not line or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        yield (pending + line.strip()).strip()
        pending = ""


def line_pattern(documented: str, port: int | None, examples: dict[str, str]) -> re.Pattern[str]:
    """The regex one documented output line stands for (see the module's docstring)."""
    text = re.escape(documented)
    for example, pattern in examples.items():
        text = text.replace(re.escape(example), pattern)
    # An id written as a prefix and an ellipsis ("tsk_4f8a2c1e9b...", "ord_…") is any id.
    text = re.sub(r"([a-z]+_)[0-9a-z]*(?:\\\.\\\.\\\.|…)", r"\1[0-9A-Za-z_]+", text)
    text = text.replace(r"\.\.\.", ".*").replace("…", ".*")
    if port is not None:
        text = text.replace(r"localhost:3001", f"localhost:{port}")
    return re.compile(text)


def assert_printed(
    documented: list[str], printed: list[str], port: int | None, examples: dict[str, str]
) -> None:
    """Every documented line (but blank ones and a lone ``...``) is printed, in this order."""
    at = 0
    for line in documented:
        if not line.strip() or line.strip() in ("...", "…"):
            continue
        pattern = line_pattern(line, port, examples)
        while at < len(printed) and not pattern.fullmatch(printed[at]):
            at += 1
        assert at < len(printed), (
            f"the README promises the line {line!r} (as /{pattern.pattern}/), in this order;"
            f" the command printed:\n" + "\n".join(printed)
        )
        at += 1


class Terminal:
    """One command running in its own terminal (its own process group), output collected."""

    def __init__(self, command: str, cwd: Path, env: dict[str, str]) -> None:
        self.command = command
        self.lines: list[str] = []
        self.closed = False  # its output ended: it exited and everything it printed is read
        self._changed = threading.Condition()
        self.proc = subprocess.Popen(
            ["bash", "-c", f"source .venv/bin/activate\n{command}"],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        self.proc.wait()
        with self._changed:
            self.closed = True
            self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float, why: Callable[[], str]) -> re.Match[str]:
        """The first printed line matching ``pattern`` (searched), waiting up to ``timeout``."""
        compiled = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    found = compiled.search(line)
                    if found:
                        return found
                if self.closed:
                    raise AssertionError(
                        f"`{self.command}` exited ({self.proc.returncode}) without printing"
                        f" /{pattern}/:\n{self.output()}\n{why()}"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"`{self.command}` printed no /{pattern}/ within {timeout} s:\n"
                        f"{self.output()}\n{why()}"
                    )
                self._changed.wait(min(left, 0.5))

    def finish(self, timeout: float) -> int:
        """Wait for the command to end by itself; its exit code."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"`{self.command}` did not finish within {timeout} s:\n{self.output()}"
            ) from None
        deadline = time.monotonic() + 5
        with self._changed:
            while not self.closed and time.monotonic() < deadline:
                self._changed.wait(0.2)
        return self.proc.returncode

    def output(self) -> str:
        return "\n".join(self.lines)

    def stop(self) -> None:
        """Ctrl-C, as a reader ends a server; then firmer, so nothing outlives the test."""
        for sig, grace in ((signal.SIGINT, 10.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                continue
        # Background jobs of the command (`temporal server start-dev & ...`) share its group.
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)


@dataclass
class Session:
    """The terminals of one README's run, in a workspace shaped like the repository's root."""

    root: Path
    env: dict[str, str]
    terminals: list[Terminal] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)

    def run(self, command: str) -> Terminal:
        terminal = Terminal(command, self.root, self.env)
        self.terminals.append(terminal)
        return terminal

    def why(self) -> str:
        return "\n".join(f"--- `{t.command}` ---\n{t.output()}" for t in self.terminals)


def workspace(base: Path) -> Path:
    """A folder that looks like the repository's root: what the README's commands reach."""
    root = base / "repo"
    root.mkdir()
    for name in ("examples", "scripts", ".venv"):
        (root / name).symlink_to(REPO / name)
    return root


@contextmanager
def start_session(base: Path, **env: str) -> Iterator[Session]:
    home = base / "home"
    home.mkdir()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWAITHUMANS_", "PREFECT_"))}
    # A terminal flushes every line; a pipe would hold Python's output until exit.
    clean.update(HOME=str(home), PYTHONUNBUFFERED="1", **env)
    running = Session(workspace(base), clean)
    try:
        yield running
    finally:
        for terminal in reversed(running.terminals):
            terminal.stop()
