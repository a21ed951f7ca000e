"""examples/fake-human: a user's test suite run as its own pytest project (its pytest.ini,
no conftest), finding the fake_human fixture through the installed plugin."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fake-human"


def test_the_sample_suite_passes_with_the_plugin() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWAITHUMANS_")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "6 passed" in done.stdout
