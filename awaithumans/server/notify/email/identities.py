"""Sender identities: what a route's ``email+NAME:`` sends as, and through what.

An identity is a From (address, name, Reply-To) and a way out: the server's own transport
(only the From changes), its own SMTP relay, or its own Resend account. Operators manage
them in Settings → Email (or ``/api/admin/email-identities``); the relay's password or the
Resend key is sealed with the payload key (AES-GCM), bound to the identity's name, and
never shown again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import Address
from typing import Any, Literal, cast

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from awaithumans.server.db.models import EmailIdentityRow
from awaithumans.server.db.types import utcnow
from awaithumans.server.security import Sealer
from awaithumans.server.services.writer import Write

IdentityTransport = Literal["server", "smtp", "resend"]
TRANSPORTS: tuple[IdentityTransport, ...] = ("server", "smtp", "resend")
# The same names a route accepts after "email+" (core/_routes.py).
NAME = re.compile(r"[a-z0-9_-]{1,32}")
ADDRESS = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True, slots=True)
class Identity:
    """An identity as Settings lists it: everything but the secret."""

    name: str
    from_address: str
    from_name: str | None
    reply_to: str | None
    transport: IdentityTransport
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_username: str | None = None
    smtp_start_tls: bool = True
    smtp_use_tls: bool = False
    has_secret: bool = False
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Unsealed:
    """An identity with its secret (the SMTP password or the Resend key), to send with."""

    identity: Identity
    secret: str | None = field(repr=False)


def _header_safe(value: str | None) -> bool:
    return value is None or not any(ord(c) < 32 or ord(c) == 127 for c in value)


def _address_ok(address: str) -> bool:
    """An address a mail header can carry, as the mail will be built."""
    if not ADDRESS.fullmatch(address) or not _header_safe(address) or len(address) > 254:
        return False
    try:
        Address(addr_spec=address)
    except (ValueError, IndexError):
        return False
    return "," not in address and ";" not in address and address.isascii()


def problems(identity: Identity, secret: str | None) -> dict[str, str]:
    """What is wrong with an identity as entered (field -> message); empty when fine."""
    found: dict[str, str] = {}
    if not NAME.fullmatch(identity.name):
        found["name"] = "Use 1 to 32 lowercase letters, digits, '-' or '_' (it goes in routes)."
    if not _address_ok(identity.from_address):
        found["from_address"] = "Give the address mail is sent from, like billing@acme.com."
    if identity.reply_to and not _address_ok(identity.reply_to):
        found["reply_to"] = "Give an address, or leave it empty."
    if identity.from_name and (
        len(identity.from_name) > 200 or not _header_safe(identity.from_name)
    ):
        found["from_name"] = "One line of at most 200 characters."
    if not _header_safe(identity.smtp_host) or not _header_safe(identity.smtp_username):
        found["smtp_host"] = "No control characters, please."
    if identity.transport == "smtp":
        if not identity.smtp_host:
            found["smtp_host"] = "The relay's host name, like smtp.acme.com."
        if identity.smtp_port is None or not 1 <= identity.smtp_port <= 65535:
            found["smtp_port"] = "A port from 1 to 65535 (587 for STARTTLS, 465 for TLS)."
    if identity.transport == "resend" and not secret:
        found["secret"] = "The Resend API key this sender uses."  # noqa: S105 - a message
    return found


_TABLE = EmailIdentityRow.__table__


def identity_aad(name: str) -> bytes:
    return f"email-identity:{name}".encode()


class SaveIdentity(Write[None]):
    """Add or replace an identity; an empty ``secret`` keeps the stored one."""

    def __init__(self, sealer: Sealer, identity: Identity, secret: str | None) -> None:
        self.identity = identity
        self.sealed = (
            sealer.seal(secret.encode(), aad=identity_aad(identity.name)) if secret else None
        )

    async def apply(self, conn: AsyncConnection) -> None:
        i = self.identity
        values: dict[str, object] = {
            "from_address": i.from_address,
            "from_name": i.from_name or None,
            "reply_to": i.reply_to or None,
            "transport": i.transport,
            "smtp_host": i.smtp_host if i.transport == "smtp" else None,
            "smtp_port": i.smtp_port if i.transport == "smtp" else None,
            "smtp_username": i.smtp_username if i.transport == "smtp" else None,
            "smtp_start_tls": i.smtp_start_tls,
            "smtp_use_tls": i.smtp_use_tls,
            "updated_at": utcnow(),
        }
        before = await conn.scalar(
            select(EmailIdentityRow.transport).where(EmailIdentityRow.name == i.name)
        )
        if self.sealed is not None:
            values["secret_enc"] = self.sealed
        elif i.transport == "server" or before != i.transport:
            # A secret belongs to its transport: a Resend key must never become an SMTP
            # password because the form was saved without retyping it.
            values["secret_enc"] = None
        t = EmailIdentityRow
        changed = await conn.execute(update(t).where(t.name == i.name).values(**values))
        if changed.rowcount == 0:
            await conn.execute(insert(t).values(name=i.name, created_at=utcnow(), **values))


class RemoveIdentity(Write[bool]):
    def __init__(self, name: str) -> None:
        self.name = name

    async def apply(self, conn: AsyncConnection) -> bool:
        gone = await conn.execute(
            delete(EmailIdentityRow).where(EmailIdentityRow.name == self.name)
        )
        return gone.rowcount > 0


def _identity(row: Mapping[Any, Any]) -> Identity:
    transport = row["transport"]
    return Identity(
        name=row["name"],
        from_address=row["from_address"],
        from_name=row["from_name"],
        reply_to=row["reply_to"],
        transport=cast(IdentityTransport, transport if transport in TRANSPORTS else "server"),
        smtp_host=row["smtp_host"],
        smtp_port=row["smtp_port"],
        smtp_username=row["smtp_username"],
        smtp_start_tls=bool(row["smtp_start_tls"]),
        smtp_use_tls=bool(row["smtp_use_tls"]),
        has_secret=row["secret_enc"] is not None,
        updated_at=row["updated_at"],
    )


async def list_identities(engine: AsyncEngine) -> list[Identity]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(_TABLE).order_by(_TABLE.c.name))
        return [_identity(row) for row in rows.mappings()]


async def load_identity(engine: AsyncEngine, sealer: Sealer, name: str) -> Unsealed | None:
    """The identity ``name`` with its secret unsealed; None if there is no such identity."""
    async with engine.connect() as conn:
        found = await conn.execute(select(_TABLE).where(_TABLE.c.name == name))
        row = found.mappings().one_or_none()
    if row is None:
        return None
    sealed = row["secret_enc"]
    secret = sealer.open(sealed, aad=identity_aad(name)).decode() if sealed is not None else None
    return Unsealed(_identity(row), secret)
