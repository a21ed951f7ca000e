"""Helpers the policies tests share: people added to the directory through the admin API,
and a browser signed in to the dashboard through ``/login`` (CSRF field included).

Each test module keeps its own world (what it creates, what it reads back); these are the
steps every one of them took the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import httpx

PASSWORD = "correct horse battery staple"


def csrf_of(page: str) -> str:
    """The CSRF field of a dashboard page."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "page has no CSRF field"
    return found.group(1)


async def add_people(
    admin: httpx.AsyncClient, people: Iterable[tuple[str, str, bool]]
) -> dict[str, str]:
    """Add each (email, display name, operator) with :data:`PASSWORD`; email -> user id."""
    ids: dict[str, str] = {}
    for email, name, operator in people:
        made = await admin.post(
            "/api/admin/users",
            json={
                "email": email,
                "display_name": name,
                "is_operator": operator,
                "password": PASSWORD,
            },
        )
        assert made.status_code == 201, made.text
        ids[email] = str(made.json()["id"])
    return ids


async def dashboard_sign_in(client: httpx.AsyncClient, email: str) -> None:
    """Sign ``client`` in to the dashboard as ``email`` (a session cookie, as a browser)."""
    page = await client.get("/login")
    done = await client.post(
        "/login",
        data={"csrf_token": csrf_of(page.text), "email": email, "password": PASSWORD, "next": "/"},
    )
    assert done.status_code == 303, done.text
