"""First-run state: the one-shot setup token that lets the first operator in.

A database has at most one setup token, from the first start with no operator until the
first operator is created with it (``services/sessions.py`` deletes it in that same
transaction). Every process serving the database prints a link with that one token: the
replicas behind a load balancer, the workers of ``serve --workers N``, a replica added or
restarted later, and ``awaithumans dev`` after a restart.

Why one shared token rather than one per start: replicas are interchangeable, so the log a
user reads is whichever one is at hand (``docker compose logs``, ``journalctl``), and the
link may reach any replica through the load balancer. When each start replaced the token, a
replica added or restarted later silently broke the link another replica had printed, and
replicas starting together collided on the row. The other option, printing "the link was
issued by another replica, see its log", leaves the user to find that replica.

To print the token again, a process must know it, not only its hash. So the row holds both:
the SHA-256 hash, which setup checks against (without needing the key ring), and the token
sealed with the payload key (``Sealer``, AES-256-GCM), which replicas share anyway. Anyone
who can read the database *and* holds the payload key can open it, but such a person can
already read every payload and Slack token. The trade-off: a restart no longer replaces the
link. A link that leaked stays usable until someone creates the first operator, as it did
before for as long as the server ran.

A row this process cannot open (a bare hash written by an older version, or a token sealed
under a payload key no longer configured) is replaced by a fresh token through a
compare-and-set, so replicas starting together still end up printing the same one.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from awaithumans.server.db.models import ServerStateRow, UserRow
from awaithumans.server.db.types import utcnow
from awaithumans.server.security import (
    DecryptionError,
    Sealer,
    generate_setup_token,
    hash_token,
    tokens_equal,
)

log = logging.getLogger("awaithumans.server")

SETUP_TOKEN_KEY = "setup_token_hash"  # noqa: S105 - a row key, not a secret

# Binds the sealed token to its row: a sealed value copied from another row does not open.
_AAD = b"server_state:" + SETUP_TOKEN_KEY.encode()
# Each round loses only to another process that wrote the row meanwhile; the next round
# reads what that one wrote. A few rounds cover any number of processes starting together.
_ROUNDS = 5


async def operator_exists(conn: AsyncConnection) -> bool:
    count = await conn.scalar(
        select(func.count()).select_from(UserRow).where(UserRow.is_operator.is_(True))
    )
    return bool(count)


async def issue_setup_token(engine: AsyncEngine, sealer: Sealer) -> str | None:
    """The database's setup token while it has no operator (created if none); else None.

    Safe when several processes start together: the row is inserted only if absent (``ON
    CONFLICT DO NOTHING``), and whoever finds it there prints the token it holds.

    Args:
        engine: The server's database.
        sealer: Seals the token for the other processes, opens theirs (the payload key).

    Raises:
        RuntimeError: The row changed under this process in every round (not expected).
    """
    for _ in range(_ROUNDS):
        async with engine.begin() as conn:
            if await operator_exists(conn):
                await conn.execute(
                    delete(ServerStateRow).where(ServerStateRow.key == SETUP_TOKEN_KEY)
                )
                return None
            token = generate_setup_token()
            fresh = _encode(token, sealer)
            if await _insert_if_absent(conn, fresh):
                return token
            stored = await conn.scalar(
                select(ServerStateRow.value).where(ServerStateRow.key == SETUP_TOKEN_KEY)
            )
            if stored is None:
                continue  # setup finished meanwhile: the next round sees the operator
            known = _open(stored, sealer)
            if known is not None:
                return known
            replaced = await conn.execute(
                update(ServerStateRow)
                .where(ServerStateRow.key == SETUP_TOKEN_KEY, ServerStateRow.value == stored)
                .values(value=fresh, updated_at=utcnow())
            )
            if replaced.rowcount == 1:
                log.info("replaced a setup token this server cannot read with a new one")
                return token
    raise RuntimeError("the setup token kept changing while this server started")


async def stored_setup_hash(conn: AsyncConnection) -> str | None:
    """The hash of the database's setup token, or None when there is none."""
    value = await conn.scalar(
        select(ServerStateRow.value).where(ServerStateRow.key == SETUP_TOKEN_KEY)
    )
    return _hash_of(value) if isinstance(value, str) else None


async def _insert_if_absent(conn: AsyncConnection, value: str) -> bool:
    insert_fn = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    result = await conn.execute(
        insert_fn(ServerStateRow)
        .values(key=SETUP_TOKEN_KEY, value=value, updated_at=utcnow())
        .on_conflict_do_nothing(index_elements=["key"])
    )
    return result.rowcount == 1


def _encode(token: str, sealer: Sealer) -> str:
    sealed = sealer.seal(token.encode(), aad=_AAD)
    return json.dumps(
        {"hash": hash_token(token), "sealed": base64.b64encode(sealed).decode("ascii")}
    )


def _hash_of(value: str) -> str | None:
    if not value.startswith("{"):
        return value  # a bare hash, as versions before the sealed token stored it
    try:
        found = json.loads(value).get("hash")
    except (ValueError, AttributeError):
        return None
    return found if isinstance(found, str) else None


def _open(value: str, sealer: Sealer) -> str | None:
    """The token in a stored row, or None if this process cannot read it."""
    expected = _hash_of(value)
    try:
        blob = base64.b64decode(json.loads(value)["sealed"], validate=True)
        token = sealer.open(blob, aad=_AAD).decode()
    except (ValueError, TypeError, KeyError, binascii.Error, DecryptionError):
        return None
    # Printed only if it is the token setup will accept.
    if expected is None or not tokens_equal(expected, hash_token(token)):
        return None
    return token
