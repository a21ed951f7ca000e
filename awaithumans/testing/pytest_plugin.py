"""The pytest plugin of awaithumans: the ``fake_human`` fixture.

Registered through the ``pytest11`` entry point, so a project that installed awaithumans
has the fixture without a ``conftest.py`` line. Importing this module costs nothing more
than pytest itself: the server is imported when a test asks for the fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from awaithumans.testing.fake_human import FakeHuman


@pytest.fixture
def fake_human(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHuman]:
    """An in-process awaithumans server and a fake person answering it by rule.

    ``await_human`` in the test (and in workers or graphs it runs in-process) finds the
    server through ``AWAITHUMANS_URL``/``AWAITHUMANS_API_KEY``, set for the test. Add rules
    before the agent asks: ``fake_human.answer(title_contains="refund", with_=...)``,
    ``.reject(...)``, ``.never(...)``, ``.time_out(...)``. For Temporal or Prefect, build
    your own fixture with ``FakeHuman(temporal_address=...)`` / ``(prefect_api_url=...)``.
    """
    from awaithumans.testing.fake_human import FakeHuman

    with FakeHuman() as human:
        for name, value in human.env().items():
            monkeypatch.setenv(name, value)
        yield human
