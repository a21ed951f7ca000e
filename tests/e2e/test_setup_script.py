"""scripts/setup.sh as a newcomer meets it: a .venv left broken by an earlier failed run
is rebuilt, `setup.sh server` installs the server and not the test tools, and a Python too
old is named with how to get a newer one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def _checkout(into: Path) -> Path:
    """The repository's tracked files, as they are now in the working tree."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in listed)):
        source = ROOT / name
        if source.is_file() and not name.startswith(("tests/", "bench/", "examples/")):
            target = into / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return into


def _run(checkout: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    return subprocess.run(
        ["bash", "scripts/setup.sh", *args],
        cwd=checkout,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_a_broken_venv_is_rebuilt_and_server_mode_installs_the_server(tmp_path: Path) -> None:
    checkout = _checkout(tmp_path / "awaithumans")
    # What `python3 -m venv .venv` leaves behind on a Debian without python3-venv: a
    # python, no pip. Every later run used to stop at "No module named pip".
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(checkout / ".venv")],
                   check=True)  # fmt: skip
    done = _run(checkout, "server", PYTHON=sys.executable)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "making it again" in done.stdout
    venv_python = str(checkout / ".venv" / "bin" / "python")
    works = subprocess.run(
        [venv_python, "-c", "import awaithumans.server.app, aiosmtplib, slack_sdk"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert works.returncode == 0, works.stderr
    # The server, not the test tools.
    absent = subprocess.run([venv_python, "-c", "import pytest"], capture_output=True, check=False)
    assert absent.returncode != 0
    version = subprocess.run(
        [str(checkout / ".venv" / "bin" / "awaithumans"), "version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert version.stdout.startswith("awaithumans ")
    # Run again: nothing to rebuild.
    again = _run(checkout, "server", PYTHON=sys.executable)
    assert again.returncode == 0, again.stderr
    assert "making it again" not in again.stdout


def test_a_python_too_old_is_named(tmp_path: Path) -> None:
    checkout = _checkout(tmp_path / "awaithumans")
    old = tmp_path / "python3.9"
    old.write_text("#!/bin/sh\nexit 1\n")
    old.chmod(0o755)
    done = _run(checkout, "server", PYTHON=str(old))
    assert done.returncode == 1
    assert "needs Python 3.11 or newer" in done.stderr
    assert "apt-get install python3 python3-venv" in done.stderr
    assert not (checkout / ".venv").exists()
