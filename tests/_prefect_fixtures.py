"""Pytest plugin: one real Prefect server for the session, started on first use.

Prefect reads its settings when first imported, so the server's address is chosen and put
in the environment here, as pytest starts and before any test module imports ``prefect``:
this process, the relays and the served deployments all talk to the same server.
"""

from __future__ import annotations

import os
import random
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from awaithumans.testing import PrefectServer, free_port


def _port_outside_the_ephemeral_range() -> int:
    # Chosen now, bound much later: a port the kernel hands out to other sockets meanwhile
    # (every free_port() of the tests draws from its ephemeral range) could be taken by
    # then. Below that range, only an explicit bind can take it.
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    # A private generator: the global one belongs to Hypothesis while tests run.
    for port in random.Random().sample(range(low // 2, low), 200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    return free_port()


_PREFECT = PrefectServer(port=_port_outside_the_ephemeral_range())
os.environ.update(_PREFECT.env())
# Run logs stay in this process: shipping them would race the server's shutdown at the end.
os.environ["PREFECT_LOGGING_TO_API_ENABLED"] = "false"


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[PrefectServer]:
    with _PREFECT:
        yield _PREFECT
