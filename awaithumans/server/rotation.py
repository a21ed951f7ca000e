"""Re-encrypting what the server stores under its current payload key (``awaithumans rotate-key``).

A rotation, as an operator runs it:

1. ``awaithumans gen-key``; the new key becomes ``AWAITHUMANS_PAYLOAD_KEY`` and the old one
   ``AWAITHUMANS_PAYLOAD_KEY_PREVIOUS``; restart the server(s). From then on everything is
   sealed and signed with the new key, and what the old one made still opens and verifies.
2. ``awaithumans rotate-key`` with the same environment re-seals every stored blob (task
   payloads, responses and submissions, Slack bot tokens, email senders' secrets) that is
   not under the current key. The server keeps running meanwhile.
3. Once the links already mailed have expired, remove ``AWAITHUMANS_PAYLOAD_KEY_PREVIOUS``.

Each blob names its key (``Sealer.is_current`` reads the header, no decryption), so the
walk needs no bookkeeping of its own and an interrupted run simply runs again: what is done
stays done. Rows are read in primary-key batches and each is written back with a
compare-and-set on the old blob, so a row a running server changed meanwhile (an answer
just sealed, say) is left to the server's own, current-key write instead of being
overwritten with stale content; a second pass picks up whatever is still left.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from awaithumans.server.db.models import (
    EmailIdentityRow,
    SlackInstallationRow,
    TaskRow,
    TaskVoteRow,
)
from awaithumans.server.notify.email.identities import identity_aad
from awaithumans.server.notify.slack.installs import install_aad
from awaithumans.server.security import DecryptionError, Sealer
from awaithumans.server.security.encryption import HEADER_BYTES
from awaithumans.server.services.views import task_aad
from awaithumans.server.services.votes import vote_aad

#: Passes over the tables before giving up on rows that keep changing under the walk.
_PASSES = 3


@dataclass(frozen=True, slots=True)
class SealedColumn:
    """One column of sealed blobs, the key of its rows, and what each blob is bound to."""

    table: Any
    key: str
    column: str
    aad: Callable[[str], bytes]

    @property
    def label(self) -> str:
        return f"{self.table.__tablename__}.{self.column}"


#: Every column the server seals with the payload key. A new sealed column goes here too;
#: ``tests/e2e/test_rotate_key.py`` checks the models hold no other binary column.
SEALED: tuple[SealedColumn, ...] = (
    SealedColumn(TaskRow, "id", "payload_enc", task_aad),
    SealedColumn(TaskRow, "id", "response_enc", task_aad),
    SealedColumn(TaskRow, "id", "submission_enc", task_aad),
    SealedColumn(TaskRow, "id", "on_timeout_enc", task_aad),
    SealedColumn(TaskVoteRow, "id", "response_enc", vote_aad),
    SealedColumn(SlackInstallationRow, "team_id", "token_enc", install_aad),
    SealedColumn(EmailIdentityRow, "name", "secret_enc", identity_aad),
)


@dataclass
class ColumnResult:
    label: str
    resealed: int = 0
    #: Blobs no configured key opens (sealed under a key no longer configured).
    unreadable: int = 0
    #: Blobs still not under the current key after every pass (rows changing meanwhile).
    left: int = 0


async def rotate(
    engine: AsyncEngine,
    sealer: Sealer,
    *,
    batch: int = 500,
    progress: Callable[[ColumnResult], None] | None = None,
) -> list[ColumnResult]:
    """Re-seal every stored blob that is not under ``sealer``'s current key."""
    results = []
    for sealed in SEALED:
        result = ColumnResult(sealed.label)
        for _ in range(_PASSES):
            result.unreadable = 0
            if await _walk(engine, sealer, sealed, result, batch) == 0:
                break
        result.left = await _count_stale(engine, sealer, sealed) - result.unreadable
        results.append(result)
        if progress is not None:
            progress(result)
    return results


async def _walk(
    engine: AsyncEngine, sealer: Sealer, sealed: SealedColumn, result: ColumnResult, batch: int
) -> int:
    """One pass over the column; how many stale blobs it met (re-sealed or not)."""
    key = getattr(sealed.table, sealed.key)
    column = getattr(sealed.table, sealed.column)
    after: str | None = None
    met = 0
    while True:
        query = select(key, column).where(column.is_not(None)).order_by(key).limit(batch)
        if after is not None:
            query = query.where(key > after)
        async with engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        if not rows:
            return met
        after = rows[-1][0]
        fresh: list[tuple[str, bytes, bytes]] = []
        for row_key, blob in rows:
            if sealer.is_current(blob):
                continue
            met += 1
            aad = sealed.aad(row_key)
            try:
                plain = sealer.open(blob, aad=aad)
            except DecryptionError:
                result.unreadable += 1
                continue
            fresh.append((row_key, blob, sealer.seal(plain, aad=aad)))
        if not fresh:
            continue
        async with engine.begin() as conn:
            for row_key, old, new in fresh:
                changed = await conn.execute(
                    update(sealed.table)
                    .where(key == row_key, column == old)
                    .values({sealed.column: new})
                )
                result.resealed += changed.rowcount


async def _count_stale(engine: AsyncEngine, sealer: Sealer, sealed: SealedColumn) -> int:
    column = getattr(sealed.table, sealed.column)
    # Only each blob's header (version and key id) crosses the wire, not the payloads.
    header = func.substr(column, 1, HEADER_BYTES)
    async with engine.connect() as conn:
        heads = await conn.stream_scalars(select(header).where(column.is_not(None)))
        return sum([1 async for head in heads if not sealer.is_current(bytes(head))])
