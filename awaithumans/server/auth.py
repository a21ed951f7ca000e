"""Turning a request's credential into a :class:`Principal`.

Three credentials: the admin bearer token (operator rights; for dev and automation), agent
API keys (``Authorization: Bearer ah_...``; create tasks and read their own), and the
dashboard's signed session cookie (a directory user; revocable, expiring).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from awaithumans.core._codes import ErrorCode
from awaithumans.server.db.models import AgentKeyRow, SessionRow, UserRow
from awaithumans.server.db.types import utcnow
from awaithumans.server.errors import ApiError
from awaithumans.server.principals import ADMIN, Principal
from awaithumans.server.security import (
    KeyRing,
    TokenError,
    hash_token,
    sign,
    tokens_equal,
    verify,
)
from awaithumans.server.settings import Settings

SESSION_COOKIE = "ah_session"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _same_origin(origin: str | None, host: str) -> bool:
    """False when a browser says the request comes from another site.

    Browsers send ``Origin`` on every cross-site POST; its absence means a non-browser
    client (which has no ambient cookies to abuse) or a same-site navigation.
    """
    if origin is None:
        return True
    return origin.split("://", 1)[-1].rstrip("/") == host


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a request presents, read from it by the web layer.

    Attributes:
        authorization: The ``Authorization`` header, if any.
        session_cookie: The dashboard's session cookie, if any.
        method: The HTTP method (cookies on unsafe methods need a same-origin request).
        origin: The ``Origin`` header, if any.
        host: The ``Host`` header.
    """

    authorization: str | None
    session_cookie: str | None
    method: str = "GET"
    origin: str | None = None
    host: str = ""


@dataclass(frozen=True, slots=True)
class Authenticated:
    """A resolved credential: who, and the session it came through (cookie sign-ins)."""

    principal: Principal
    session_id: str | None = None


_KEY_CACHE_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class _CachedKey:
    principal: Principal | None
    until: float


def user_principal(user: Mapping[str, Any], scope_task_id: str | None = None) -> Principal:
    """The principal of a directory user row; scoped to one task for a handoff session,
    where even an operator is only a reviewer of that task."""
    return Principal(
        kind="user",
        id=user["id"],
        label=user["email"] or user["display_name"],
        is_operator=bool(user["is_operator"]) and scope_task_id is None,
        email=user["email"],
        display_name=user["display_name"],
        scope_task_id=scope_task_id,
    )


class Authenticator:
    """Resolves credentials; agent keys are cached briefly because every poll presents one."""

    def __init__(self, engine: AsyncEngine, settings: Settings, keyring: KeyRing) -> None:
        self._engine = engine
        self._session_ttl = timedelta(seconds=settings.session_ttl_seconds)
        token = settings.admin_api_token
        self._admin_token = token.get_secret_value() if token else None
        self._session_key = keyring.derive("session")
        # Cookies signed before a key rotation stay valid until they expire.
        self._session_keys = keyring.verifying_keys("session")
        self._keys: dict[str, _CachedKey] = {}

    # -- bearer tokens -----------------------------------------------------------------

    async def from_bearer(self, token: str) -> Principal | None:
        if self._admin_token and tokens_equal(token, self._admin_token):
            return ADMIN
        digest = hash_token(token)
        cached = self._keys.get(digest)
        now = time.monotonic()
        if cached is not None and cached.until > now:
            return cached.principal
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(AgentKeyRow.id, AgentKeyRow.name, AgentKeyRow.revoked_at).where(
                        AgentKeyRow.token_hash == digest
                    )
                )
            ).one_or_none()
        principal = None
        if row is not None and row.revoked_at is None:
            principal = Principal(kind="agent", id=row.id, label=row.name)
        if len(self._keys) > 10_000:
            self._keys.clear()
        self._keys[digest] = _CachedKey(principal, now + _KEY_CACHE_SECONDS)
        return principal

    def forget_keys(self) -> None:
        """Drop cached key lookups (after a key is revoked in this process)."""
        self._keys.clear()

    # -- sessions ----------------------------------------------------------------------

    def session_cookie_value(self, session_id: str, user_id: str, expires_at: int) -> str:
        return sign(self._session_key, {"sid": session_id, "uid": user_id}, expires_at=expires_at)

    async def from_session(self, cookie: str) -> tuple[Principal, str] | None:
        try:
            claims = verify(self._session_keys, cookie)
        except TokenError:
            return None
        sid = claims.get("sid")
        if not isinstance(sid, str):
            return None
        async with self._engine.connect() as conn:
            found = (
                (
                    await conn.execute(
                        select(
                            UserRow.__table__,
                            SessionRow.expires_at,
                            SessionRow.revoked_at,
                            SessionRow.task_id.label("session_task_id"),
                        )
                        .join(SessionRow, SessionRow.user_id == UserRow.id)
                        .where(SessionRow.id == sid)
                    )
                )
                .mappings()
                .one_or_none()
            )
        if found is None:
            return None
        if found["revoked_at"] is not None or found["expires_at"] <= utcnow():
            return None
        if not found["is_active"]:
            return None
        return user_principal(dict(found), found["session_task_id"]), sid

    def new_session_values(
        self, user_id: str, task_id: str | None = None, until: datetime | None = None
    ) -> dict[str, object]:
        """A new session; ``task_id`` scopes it to that task (ending by ``until`` at the
        latest: a handoff session lives no longer than its task)."""
        now = utcnow()
        expires = now + self._session_ttl
        if until is not None:
            expires = min(expires, until)
        return {
            "id": secrets.token_urlsafe(24),
            "user_id": user_id,
            "created_at": now,
            "expires_at": expires,
            "revoked_at": None,
            "task_id": task_id,
        }

    # -- per request -------------------------------------------------------------------

    async def authenticate(self, creds: Credentials) -> Authenticated | None:
        """Who presents ``creds``: a bearer token first, else the session cookie.

        Raises:
            ApiError: 401 for a malformed or unknown bearer token; 403 for a cookie sent
                on a cross-site request that changes something.
        """
        if creds.authorization:
            scheme, _, token = creds.authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise ApiError(401, ErrorCode.UNAUTHORIZED, "Use 'Authorization: Bearer <token>'.")
            principal = await self.from_bearer(token.strip())
            if principal is None:
                raise ApiError(401, ErrorCode.UNAUTHORIZED, "The bearer token is not valid.")
            return Authenticated(principal)
        if creds.session_cookie:
            if creds.method not in _SAFE_METHODS and not _same_origin(creds.origin, creds.host):
                # A cookie rides along on cross-site requests; a bearer token never does.
                raise ApiError(
                    403,
                    ErrorCode.CSRF_FAILED,
                    "Cross-site request refused; call the API with a token.",
                )
            found = await self.from_session(creds.session_cookie)
            if found is not None:
                return Authenticated(found[0], found[1])
        return None
