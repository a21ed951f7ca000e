"""Stopping the child processes the test helpers start."""

from __future__ import annotations

import signal
import subprocess


def stop_process(
    proc: subprocess.Popen[bytes], *, sig: int = signal.SIGTERM, timeout: float = 20.0
) -> None:
    """Send ``sig`` and wait up to ``timeout`` seconds; then kill it. No-op if it has ended."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
