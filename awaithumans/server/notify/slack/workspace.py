"""The Slack workspaces this server posts to, each with its Web API client and a directory.

Static-token mode (``AWAITHUMANS_SLACK_BOT_TOKEN``) is one workspace, named by what
``auth.test`` says its team is; OAuth installs add more. A route without a team
(``slack:#approvals``) goes to the only workspace, or to the static one when there are
several; ``slack+T0123:`` picks a team.

Members and channels are looked up by name (``@alice``, ``#approvals``) in a per-workspace
directory: ``users.list`` / ``conversations.list`` read whole, kept for a while, and read
again on a miss (a member who joined since), at most once a minute.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

DEFAULT_API_URL = "https://slack.com/api/"
# How long a directory read stays good, and the least time between two reads on misses.
DIRECTORY_TTL_SECONDS = 600.0
DIRECTORY_MIN_REFRESH_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Member:
    """A workspace member as the channel needs them."""

    id: str
    handle: str
    display_name: str
    email: str | None


def member_of(user: dict[str, Any]) -> Member:
    """A member from a ``users.list`` / ``users.info`` user object."""
    profile = user.get("profile") or {}
    # The full name reads best in a directory and an audit trail; the short one is the handle.
    display = profile.get("real_name") or user.get("real_name") or profile.get("display_name")
    email = profile.get("email")
    return Member(
        id=str(user["id"]),
        handle=str(user.get("name") or ""),
        display_name=str(display or user.get("name") or user["id"]),
        email=str(email).lower() if email else None,
    )


@dataclass
class _Listing:
    by_key: dict[str, str] = field(default_factory=dict)
    read_at: float = float("-inf")


class Directory:
    """Names to ids in one workspace: members by handle, channels by name."""

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client
        self._members: dict[str, Member] = {}
        self._handles = _Listing()
        self._channels = _Listing()
        self._lock = asyncio.Lock()

    async def member_id(self, handle: str) -> str | None:
        return await self._find(self._handles, handle, self._read_members)

    async def channel_id(self, name: str) -> str | None:
        return await self._find(self._channels, name, self._read_channels)

    async def members(self) -> list[Member]:
        """Everyone (not bots, not deactivated), for the Users page's member picker."""
        async with self._lock:
            if time.monotonic() - self._handles.read_at > DIRECTORY_TTL_SECONDS:
                await self._read_members()
        return sorted(self._members.values(), key=lambda m: m.display_name.lower())

    async def _find(
        self, listing: _Listing, key: str, read: Callable[[], Awaitable[None]]
    ) -> str | None:
        async with self._lock:
            age = time.monotonic() - listing.read_at
            if age > DIRECTORY_TTL_SECONDS or (
                key not in listing.by_key and age > DIRECTORY_MIN_REFRESH_SECONDS
            ):
                await read()
            return listing.by_key.get(key)

    async def _read_members(self) -> None:
        members: dict[str, Member] = {}
        cursor = None
        while True:
            page = await self._client.users_list(limit=200, cursor=cursor)
            for user in page.get("members") or []:
                if user.get("deleted") or user.get("is_bot"):
                    continue
                member = member_of(user)
                members[member.id] = member
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        self._members = members
        self._handles.by_key = {m.handle: m.id for m in members.values()}
        self._handles.read_at = time.monotonic()

    async def _read_channels(self) -> None:
        found: dict[str, str] = {}
        cursor = None
        while True:
            page = await self._client.conversations_list(
                limit=200, cursor=cursor, types="public_channel,private_channel",
                exclude_archived=True,
            )  # fmt: skip
            for channel in page.get("channels") or []:
                found[str(channel["name"])] = str(channel["id"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        self._channels.by_key = found
        self._channels.read_at = time.monotonic()


@dataclass
class Workspace:
    """One installed workspace: its team, its client, its directory."""

    team_id: str
    client: AsyncWebClient
    #: "env" for the static token, "oauth" for an install.
    source: str
    team_name: str | None = None
    directory: Directory = field(init=False)

    def __post_init__(self) -> None:
        self.directory = Directory(self.client)


# Per Slack call, connecting included; the SDK's own default.
CALL_TIMEOUT_SECONDS = 30

#: What a call raises when Slack never answered (refused, dropped, a kept-alive connection
#: Slack had closed, a timeout): worth another try, like Slack's own 5xx.
UNREACHABLE: tuple[type[Exception], ...] = (OSError, aiohttp.ClientError, TimeoutError)


def web_client(
    token: str, api_url: str | None, session: aiohttp.ClientSession | None = None
) -> AsyncWebClient:
    # No retry handlers: Slack's errors and rate limits go back to the outbox, which retries
    # with its own backoff (honouring Retry-After) without holding a delivery slot.
    return AsyncWebClient(
        token=token,
        base_url=api_url or DEFAULT_API_URL,
        retry_handlers=[],
        session=session,
        timeout=CALL_TIMEOUT_SECONDS,
    )


class NoWorkspace(LookupError):
    """No installed workspace can take this route (a Slack team nobody installed)."""


TokenFor = Callable[[str], Awaitable[str | None]]
Teams = Callable[[], Awaitable[list[str]]]


async def _no_token(team_id: str) -> str | None:
    return None


async def _no_teams() -> list[str]:
    return []


class Workspaces:
    """The workspaces this server reaches: the static token's, and OAuth installs."""

    def __init__(
        self,
        bot_token: str | None,
        api_url: str | None,
        *,
        token_for: TokenFor = _no_token,
        installed_teams: Teams = _no_teams,
    ) -> None:
        self._api_url = api_url
        self._bot_token = bot_token
        self._static: Workspace | None = None
        self._session: aiohttp.ClientSession | None = None
        self._token_for = token_for
        self._installed_teams = installed_teams
        self._installed: dict[str, Workspace] = {}
        self._lock = asyncio.Lock()

    @property
    def api_url(self) -> str:
        return self._api_url or DEFAULT_API_URL

    def _client(self, token: str) -> AsyncWebClient:
        """A client on the one HTTP session all workspaces share.

        Without a session of its own the SDK opens one per call: a new connection, and
        against slack.com a TLS handshake, for every message. A shared session keeps
        connections alive between calls. It is made on first use, on the server's loop.
        """
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT_SECONDS)
            )
        return web_client(token, self._api_url, self._session)

    async def static(self) -> Workspace | None:
        """The static token's workspace; its team is asked of Slack once, on first use."""
        if self._bot_token is None:
            return None
        async with self._lock:
            if self._static is None:
                client = self._client(self._bot_token)
                found = await client.auth_test()
                self._static = Workspace(str(found["team_id"]), client, "env", found.get("team"))
        return self._static

    async def for_team(self, team_id: str | None) -> Workspace:
        """The workspace of ``team_id``; for None, the static one, or the only install.

        Raises:
            NoWorkspace: Nothing installed for that team, or no way to choose one.
        """
        static = await self.static()
        if static is not None and team_id in (None, static.team_id):
            return static
        if team_id is None:
            teams = await self._installed_teams()
            if len(teams) != 1:
                raise NoWorkspace(
                    "Slack is not configured on this server"
                    if not teams
                    else "several Slack workspaces are installed: name one, as in"
                    " 'slack+T0123ABCD:#channel'"
                )
            team_id = teams[0]
        found = self._installed.get(team_id)
        if found is None:
            token = await self._token_for(team_id)
            if token is None:
                raise NoWorkspace(f"no Slack workspace {team_id} is installed on this server")
            found = Workspace(team_id, self._client(token), "oauth")
            self._installed[team_id] = found
        return found

    def forget(self, team_id: str) -> None:
        """Drop a workspace's client (it was removed or reinstalled)."""
        self._installed.pop(team_id, None)

    async def aclose(self) -> None:
        self._static = None
        self._installed.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None
