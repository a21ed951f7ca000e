"""Rotating the payload key, as an operator does it, against a real server and database.

New key in ``AWAITHUMANS_PAYLOAD_KEY``, the old one in ``AWAITHUMANS_PAYLOAD_KEY_PREVIOUS``,
restart: what the old key sealed still opens, the session and the mailed link it signed still
work, and new rows are sealed with the new key. ``awaithumans rotate-key`` then re-seals
every stored blob while the server runs, refuses (changing nothing) when a key is missing,
and a run cut short finishes when run again. Without the previous key afterwards, every
stored value still opens.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import create_async_engine
from standardwebhooks.webhooks import Webhook

from awaithumans.server.db.models import Base
from awaithumans.server.rotation import SEALED, ColumnResult, rotate
from awaithumans.server.security import KeyRing, Sealer, generate_payload_key
from awaithumans.server.settings import Settings
from awaithumans.server.webhook_secret import webhook_secret
from awaithumans.testing import ServerProcess, WebhookReceiver
from tests._waiting import until

pytestmark = pytest.mark.e2e

CLI = str(Path(sys.executable).parent / "awaithumans")
OPERATOR = {"email": "ops@acme.test", "display_name": "Ops", "password": "rotate me, rotate me"}


def blobs(db: Path) -> dict[str, list[bytes]]:
    """Every sealed blob in the database, by column (read with plain sqlite3)."""
    found: dict[str, list[bytes]] = {}
    with sqlite3.connect(db) as conn:
        for sealed in SEALED:
            table = sealed.table.__tablename__
            rows = conn.execute(
                f"SELECT {sealed.column} FROM {table} WHERE {sealed.column} IS NOT NULL"
            )
            found[sealed.label] = [bytes(row[0]) for row in rows]
    return found


def key_ids(db: Path) -> set[bytes]:
    return {blob[1:9] for column in blobs(db).values() for blob in column}


def rotate_key(db: Path, key: str, previous: str | None) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": str(Path(sys.executable).parent),
        "AWAITHUMANS_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "AWAITHUMANS_PAYLOAD_KEY": key,
    }
    if previous is not None:
        env["AWAITHUMANS_PAYLOAD_KEY_PREVIOUS"] = previous
    return subprocess.run(
        [CLI, "rotate-key"], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def create(api: httpx.Client, n: int, **extra: Any) -> str:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    made = api.post(
        "/api/tasks",
        json={
            "task": f"Rotate {n}?",
            "payload": {"n": n, "secret": f"card ending {1000 + n}"},
            "payload_schema": {"type": "object"},
            "response_schema": schema,
            "timeout_seconds": 3600,
            "idempotency_key": f"rotate-{n}",
            **extra,
        },
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def test_a_rotation_keeps_everything_readable_and_valid(tmp_path: Path) -> None:
    old, new = generate_payload_key(), generate_payload_key()
    db = tmp_path / "server.db"
    url = f"sqlite:///{db}"
    mail = {"AWAITHUMANS_EMAIL_TRANSPORT": "logging", "AWAITHUMANS_OUTBOX_POLL_SECONDS": "0.3"}

    # Before: a server under the old key, with tasks, an answer, a sender's secret, a
    # session and a mailed one-click link.
    with ServerProcess(workdir=tmp_path, database_url=url, payload_key=old, env=mail) as server:
        token = server.admin_token
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        ) as api:
            tasks = [create(api, n) for n in range(3)]
            mailed = create(api, 3, notify=["email:reviewer@acme.test"])
            done = api.post(f"/api/tasks/{tasks[0]}/complete", json={"response": {"ok": True}})
            assert done.status_code == 200, done.text
            identity = api.put(
                "/api/admin/email-identities/billing",
                json={
                    "from_address": "billing@acme.test",
                    "transport": "smtp",
                    "smtp_host": "smtp.acme.test",
                    "smtp_port": 587,
                    "smtp_username": "billing",
                    "secret": "relay-password-1",
                },
            )
            assert identity.status_code == 200, identity.text
        with httpx.Client(base_url=server.url, timeout=10) as browser:
            made = browser.post(
                "/api/setup/operator", json={"token": server.setup_token, **OPERATOR}
            )
            assert made.status_code == 201, made.text
            login = {k: OPERATOR[k] for k in ("email", "password")}
            signed_in = browser.post("/api/auth/login", json=login)
            assert signed_in.status_code == 200, signed_in.text
            session = dict(browser.cookies)
            assert session

        async def mailed_links() -> list[str] | None:
            logs = server.logs()
            if "Open task: " not in logs:
                return None
            return re.findall(
                r"http://127\.0\.0\.1:\d+(/(?:handoff|api/channels/email/answer)\?t=\S+)", logs
            )

        links = asyncio.run(until(mailed_links, 30, server.logs))
        one_click = [link for link in links if "/answer?" in link]
        handoff = [link for link in links if link.startswith("/handoff?")]
        assert one_click, server.logs()
        assert handoff, server.logs()
    assert key_ids(db) == {KeyRing.from_text(old).key_id}

    # Restarted with the new key and the old one as previous.
    rotating = {**mail, "AWAITHUMANS_PAYLOAD_KEY_PREVIOUS": old}
    with ServerProcess(
        workdir=tmp_path, database_url=url, payload_key=new, admin_token=token, env=rotating
    ) as server:
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        ) as api:
            for n, task_id in enumerate(tasks):
                got = api.get(f"/api/tasks/{task_id}").json()
                assert got["payload"]["secret"] == f"card ending {1000 + n}"
            assert api.get(f"/api/tasks/{tasks[0]}").json()["response"] == {"ok": True}
            later = create(api, 9)
            # A relay still configured with the old secret keeps verifying webhooks, and one
            # given the new secret already does: each event carries both signatures.
            with WebhookReceiver() as relay:
                hooked = create(api, 10, callback_url=relay.url)
                answered = api.post(
                    f"/api/tasks/{hooked}/complete", json={"response": {"ok": False}}
                )
                assert answered.status_code == 200, answered.text
                (delivery,) = relay.wait_for(1, timeout=30)
            for key in (old, new):
                secret = webhook_secret(Settings(payload_key=key), KeyRing.from_text(key))
                Webhook(secret).verify(delivery.body.decode(), delivery.headers)
        with httpx.Client(base_url=server.url, cookies=session, timeout=10) as browser:
            me = browser.get("/api/auth/me")
            assert me.status_code == 200, me.text  # the session the old key signed
            page = browser.get(one_click[0])
            assert page.status_code == 200, page.text  # the links the old key signed
            assert "Confirm" in page.text
            opened = httpx.get(f"{server.url}{handoff[0]}", timeout=10)
            assert opened.status_code == 303, opened.text
            assert opened.headers["location"].startswith("/task?id=")
        assert key_ids(db) == {KeyRing.from_text(old).key_id, KeyRing.from_text(new).key_id}

        # Without the old key, rotate-key refuses and changes nothing.
        before = blobs(db)
        refused = rotate_key(db, new, None)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "open with none of the configured keys" in refused.stderr
        assert blobs(db) == before

        # With it, everything is re-sealed while the server runs.
        rotated = rotate_key(db, new, old)
        assert rotated.returncode == 0, rotated.stdout + rotated.stderr
        assert "✓ Everything stored is now under the current key." in rotated.stdout
        assert "  tasks.payload_enc: 4 re-encrypted" in rotated.stdout
        assert "  tasks.response_enc: 1 re-encrypted" in rotated.stdout
        assert "  email_identities.secret_enc: 1 re-encrypted" in rotated.stdout
        assert key_ids(db) == {KeyRing.from_text(new).key_id}
        again = rotate_key(db, new, old)
        assert "  tasks.payload_enc: 0 re-encrypted" in again.stdout, again.stdout

    # After: the new key alone opens everything.
    with ServerProcess(
        workdir=tmp_path, database_url=url, payload_key=new, admin_token=token
    ) as server:
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        ) as api:
            for n, task_id in [*enumerate([*tasks, mailed]), (9, later), (10, hooked)]:
                got = api.get(f"/api/tasks/{task_id}")
                assert got.status_code == 200, got.text
                assert got.json()["payload"]["n"] == n
            listed = api.get("/api/admin/email-identities").json()
            assert [i["name"] for i in listed] == ["billing"]
        with httpx.Client(base_url=server.url, cookies=session, timeout=10) as browser:
            # The old key's signatures end with it: the session is no longer accepted.
            assert browser.get("/api/auth/me").status_code == 401


async def test_an_interrupted_rotation_finishes_when_run_again(tmp_path: Path) -> None:
    old, new = KeyRing(bytes(range(32))), KeyRing(bytes(range(1, 33)))
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'r.db'}")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        sealer_old = Sealer(old)
        from awaithumans.server.db.models import TaskRow

        rows = []
        for n in range(25):
            task_id = f"tsk_{n:024x}"
            rows.append(_task_row(task_id, sealer_old.seal_json({"n": n}, aad=task_id.encode())))
        async with engine.begin() as conn:
            await conn.execute(insert(TaskRow), rows)

        rotating = Sealer(KeyRing(bytes(range(1, 33)), previous=[bytes(range(32))]))

        class Interrupted(Exception):
            pass

        def stop_after_first(result: ColumnResult) -> None:
            raise Interrupted(result.label)

        with pytest.raises(Interrupted):
            await rotate(engine, rotating, batch=7, progress=stop_after_first)
        results = await rotate(engine, rotating, batch=7)
        assert sum(r.left + r.unreadable for r in results) == 0
        async with engine.connect() as conn:
            stored = (await conn.execute(select(TaskRow.id, TaskRow.payload_enc))).mappings().all()
        assert {bytes(r["payload_enc"])[1:9] for r in stored} == {new.key_id}
        for row in stored:
            opened = Sealer(new).open_json(bytes(row["payload_enc"]), aad=row["id"].encode())
            assert opened == {"n": int(row["id"][4:], 16)}
    finally:
        await engine.dispose()


def _task_row(task_id: str, payload: bytes) -> dict[str, Any]:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    return {
        "id": task_id,
        "idempotency_key": task_id,
        "fingerprint": "f",
        "owner_id": "admin",
        "task": "t",
        "status": "created",
        "version": 0,
        "payload_enc": payload,
        "payload_schema": {},
        "response_schema": {},
        "timeout_seconds": 60,
        "timeout_at": now,
        "created_at": now,
        "updated_at": now,
    }


def test_every_binary_column_is_known_to_rotation() -> None:
    from sqlalchemy import LargeBinary

    binary = {
        f"{table.name}.{column.name}"
        for table in Base.metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, LargeBinary)
    }
    assert binary == {sealed.label for sealed in SEALED}
