"""Three ``awaithumans serve`` processes started at once on a fresh database.

Before the migration lock and the shared setup token, about one start in three crashed:
two processes both created ``alembic_version`` (PostgreSQL: duplicate key on
``pg_type_typname_nsp_index``; SQLite: ``table ... already exists``), then both inserted
the setup token (``server_state_pkey``), and each start replaced the link the others had
printed. Each round here uses a new, empty database.
"""

from __future__ import annotations

import secrets
import threading
from pathlib import Path

import httpx
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import select

from awaithumans.server.bootstrap import SETUP_TOKEN_KEY
from awaithumans.server.db.engine import MIGRATIONS_DIR, current_revision, make_engine
from awaithumans.server.db.models import ServerStateRow
from awaithumans.server.settings import Settings
from awaithumans.testing import ServerProcess
from tests.support.postgres import PostgresServer

REPLICAS = 3
OPERATOR = {"email": "ops@acme.com", "display_name": "Ops", "password": "correct horse battery"}


def head_revision() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def start_together(database_url: str, workdir: Path) -> list[ServerProcess]:
    """Start the replicas from threads released at the same moment; all or an error."""
    key, admin = secrets.token_hex(32), "test-admin-" + secrets.token_hex(16)
    replicas = []
    for n in range(REPLICAS):
        (workdir / str(n)).mkdir(parents=True)
        replicas.append(
            ServerProcess(
                database_url=database_url,
                payload_key=key,
                admin_token=admin,
                workdir=workdir / str(n),
            )
        )
    gate = threading.Barrier(REPLICAS)
    failures: list[str] = []

    def start(replica: ServerProcess) -> None:
        gate.wait()
        try:
            replica.start()
        except (RuntimeError, TimeoutError) as exc:
            failures.append(str(exc))

    threads = [threading.Thread(target=start, args=(r,)) for r in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        for r in replicas:
            r.close()
        pytest.fail("a replica did not start:\n" + "\n\n".join(failures))
    return replicas


async def check_round(database_url: str, workdir: Path, used_on: int) -> None:
    replicas = start_together(database_url, workdir)
    try:
        settings = Settings(database_url=database_url)
        engine = make_engine(settings)
        try:
            assert await current_revision(engine) == head_revision()
            async with engine.connect() as conn:
                stored = (
                    await conn.scalars(
                        select(ServerStateRow.value).where(ServerStateRow.key == SETUP_TOKEN_KEY)
                    )
                ).all()
            assert len(stored) == 1
            tokens = {r.setup_token for r in replicas}
            assert len(tokens) == 1, tokens
            (token,) = tokens
            assert token

            for r in replicas:
                page = httpx.get(f"{r.url}/setup", params={"token": token}, timeout=10)
                assert page.status_code == 200
                assert "not valid" not in page.text
            made = httpx.post(
                f"{replicas[used_on].url}/api/setup/operator",
                json={"token": token, **OPERATOR},
                timeout=10,
            )
            assert made.status_code == 201, made.text
            for n, r in enumerate(replicas):
                if n != used_on:
                    again = httpx.post(
                        f"{r.url}/api/setup/operator",
                        json={"token": token, **OPERATOR, "email": "other@acme.com"},
                        timeout=10,
                    )
                    assert again.status_code in (403, 409), again.text
        finally:
            await engine.dispose()
    finally:
        for r in replicas:
            r.close()


async def test_three_replicas_start_together_on_postgresql(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    # Three rounds: before the fixes the first round already failed (three links).
    for n in range(3):
        name = f"t_replica_start_{n}_{secrets.token_hex(4)}"
        url = postgres_server.create_database(name)
        try:
            await check_round(url, tmp_path / f"round{n}", used_on=n % REPLICAS)
        finally:
            postgres_server.drop_database(name)


async def test_three_processes_start_together_on_one_sqlite_file(tmp_path: Path) -> None:
    # Not a supported deployment (serve --workers refuses SQLite), but a second process
    # started by mistake must not crash the first start or break its link.
    for n in range(2):
        url = f"sqlite+aiosqlite:///{tmp_path / f'round{n}.db'}"
        await check_round(url, tmp_path / f"round{n}", used_on=n % REPLICAS)
