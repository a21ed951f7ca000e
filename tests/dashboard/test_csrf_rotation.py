"""A dashboard form loaded before a payload-key rotation still submits after it.

The CSRF token is a MAC made with a key derived from the payload key. After `awaithumans
rotate-key` and a restart with ``AWAITHUMANS_PAYLOAD_KEY_PREVIOUS``, a page someone had open
carries a token made with the old key: it is accepted, and refused once the old key is
dropped from the previous keys.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import httpx
from fastapi import FastAPI

from tests._app_fixtures import make_settings, running_app

OLD_KEY = secrets.token_hex(32)
NEW_KEY = secrets.token_hex(32)


def browser(app: FastAPI, cookies: httpx.Cookies | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", cookies=cookies
    )


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


async def test_a_form_from_before_a_key_rotation_still_submits(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'rotation.db'}"
    before = make_settings(url, payload_key=OLD_KEY)
    async with running_app(before) as (app, _admin), browser(app) as page:
        form = await page.get("/login")
        assert form.status_code == 200
        token, cookies = csrf_of(form.text), page.cookies

    login = {"email": "nobody@acme.com", "password": "not a password", "csrf_token": token}
    rotated = make_settings(url, payload_key=NEW_KEY, payload_key_previous=OLD_KEY)
    async with running_app(rotated) as (app, _admin), browser(app, cookies) as page:
        sent = await page.post("/login", data=login)
        # Past the CSRF check: the sign-in itself is what fails (an unknown user).
        assert sent.status_code == 401, sent.text
        assert "Wrong email or password." in sent.text

    dropped = make_settings(url, payload_key=NEW_KEY)
    async with running_app(dropped) as (app, _admin), browser(app, cookies) as page:
        sent = await page.post("/login", data=login)
        assert sent.status_code == 403
        assert "This form expired" in sent.text
