"""Opposite delegations saved at the same instant through two server processes on one
PostgreSQL (Ann -> Ben through one, Ben -> Ann through the other): the cycle check and the
save take turns, so exactly one is stored and the other is refused as a cycle
(400 ``INVALID_DELEGATE``), round after round. SQLite has one writer: nothing to race."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from awaithumans.server.db.models import UserRow
from awaithumans.testing import ServerProcess
from tests.policies._directory import add_user

ROUNDS = 40


async def test_opposite_delegations_at_once_never_both_stored(
    postgres_url: str, tmp_path: Path
) -> None:
    first = ServerProcess(database_url=postgres_url, workdir=tmp_path / "a")
    second = ServerProcess(
        database_url=postgres_url,
        workdir=tmp_path / "b",
        payload_key=first.payload_key,
        admin_token=first.admin_token,
    )
    for proc in (first, second):
        proc.workdir.mkdir()
    headers = {"Authorization": f"Bearer {first.admin_token}"}
    engine = create_async_engine(postgres_url)
    with first, second:
        here, there = (
            httpx.AsyncClient(base_url=p.url, headers=headers, timeout=30.0)
            for p in (first, second)
        )
        try:
            ann = await add_user(here, "ann")
            ben = await add_user(here, "ben")
            for n in range(ROUNDS):
                until = (datetime.now(UTC) + timedelta(days=1)).isoformat()
                one, two = await asyncio.gather(
                    here.patch(
                        f"/api/admin/users/{ann}",
                        json={"away_until": until, "delegate_to_user_id": ben},
                    ),
                    there.patch(
                        f"/api/admin/users/{ben}",
                        json={"away_until": until, "delegate_to_user_id": ann},
                    ),
                )
                codes = sorted([one.status_code, two.status_code])
                assert codes == [200, 400], (n, one.text, two.text)
                loser = one if one.status_code == 400 else two
                assert loser.json()["error"] == "INVALID_DELEGATE"
                assert "cycle" in loser.json()["message"]
                async with engine.connect() as conn:
                    stored = dict(
                        (
                            await conn.execute(
                                select(UserRow.id, UserRow.delegate_to_user_id).where(
                                    UserRow.id.in_([ann, ben])
                                )
                            )
                        ).all()
                    )
                winner, other = (ann, ben) if one.status_code == 200 else (ben, ann)
                assert stored == {winner: other, other: None}, n
                # Both back at work for the next round.
                cleared = await here.patch(
                    f"/api/admin/users/{winner}",
                    json={"away_until": None, "delegate_to_user_id": None},
                )
                assert cleared.status_code == 200, cleared.text
        finally:
            await here.aclose()
            await there.aclose()
            await engine.dispose()
