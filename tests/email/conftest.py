"""Fixtures for the email channel: a real SMTP server (aiosmtpd) and servers mailing to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from awaithumans.testing import ServerProcess
from tests.support.smtp_sink import SmtpSink

FAST = {
    "AWAITHUMANS_OUTBOX_POLL_SECONDS": "0.3",
    "AWAITHUMANS_SCHEDULER_MAX_SLEEP_SECONDS": "0.2",
}
SENDER = "approvals@acme.test"

ServerFactory = Callable[..., AbstractContextManager[ServerProcess]]


def smtp_env(sink: SmtpSink, **extra: str) -> dict[str, str]:
    """A server that mails through ``sink`` (plain SMTP, as to a local relay)."""
    return {
        "AWAITHUMANS_EMAIL_TRANSPORT": "smtp",
        "AWAITHUMANS_SMTP_HOST": sink.host,
        "AWAITHUMANS_SMTP_PORT": str(sink.port),
        "AWAITHUMANS_SMTP_START_TLS": "false",
        "AWAITHUMANS_EMAIL_FROM": SENDER,
        "AWAITHUMANS_EMAIL_FROM_NAME": "Acme Approvals",
        **FAST,
        **extra,
    }


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


@pytest.fixture
def make_server(tmp_path: Path) -> ServerFactory:
    """Start servers with ``**env`` (see :func:`smtp_env`), each in its own folder."""
    count = [0]

    @contextmanager
    def factory(**env: str) -> Iterator[ServerProcess]:
        count[0] += 1
        workdir = tmp_path / f"server{count[0]}"
        workdir.mkdir()
        with ServerProcess(workdir=workdir, env=env) as server:
            yield server

    return factory


@pytest.fixture
def server(make_server: ServerFactory, sink: SmtpSink) -> Iterator[ServerProcess]:
    with make_server(**smtp_env(sink)) as running:
        yield running
