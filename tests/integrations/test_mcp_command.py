"""``awaithumans mcp`` is an agent-side command: the console script runs it without loading
the server stack, so a machine with only ``awaithumans[mcp]`` can serve it."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import contextlib, io, sys
from awaithumans._cli_entry import main
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
    main(["mcp", "--help"])
assert "--transport" in out.getvalue(), out.getvalue()
loaded = sorted(m for m in sys.modules if m.startswith("awaithumans.server"))
assert not loaded, loaded
print("ok")
"""


def test_the_console_script_runs_mcp_without_the_server_stack() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("ok")
