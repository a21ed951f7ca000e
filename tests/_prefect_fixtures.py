"""Pytest plugin: one real Prefect server for the session, started on first use.

Prefect reads its settings when first imported, so the server's address is chosen and put
in the environment here, as pytest starts and before any test module imports ``prefect``:
this process, the relays and the served deployments all talk to the same server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from awaithumans.testing import PrefectServer, free_port

_PREFECT = PrefectServer(port=free_port())
os.environ.update(_PREFECT.env())
# Run logs stay in this process: shipping them would race the server's shutdown at the end.
os.environ["PREFECT_LOGGING_TO_API_ENABLED"] = "false"


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[PrefectServer]:
    with _PREFECT:
        yield _PREFECT
