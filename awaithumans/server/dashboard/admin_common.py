"""Helpers shared by the operator pages (/users, /settings): form reading, notices, CSRF."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote

from fastapi import Request
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from awaithumans.server.dashboard.access import PageError, ctx_of, page_user
from awaithumans.server.dashboard.csrf import CSRF_FIELD, csrf_ok
from awaithumans.server.dashboard.render import render
from awaithumans.server.principals import Principal

# The same rules the JSON admin API enforces (awaithumans.server.api.admin).
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SLACK_ID_PATTERN = re.compile(r"^[UW][A-Z0-9]{2,}$")
MAX_NAME = 200
MAX_EMAIL = 254
MAX_SLACK_ID = 32

LAST_OPERATOR_MESSAGE = "This is the last active operator; promote someone else first."
EMAIL_TAKEN_MESSAGE = "Another user already has this email."

# Success notices after a redirect: the query string carries a code, never text.
NOTICES = {
    "added": "User added.",
    "saved": "Changes saved.",
    "saved-signed-out": "Changes saved. The new password signed them out everywhere else.",
    "signed-out": "Signed out everywhere: they sign in again on every device.",
    "deactivated": "User deactivated. Their sessions were signed out.",
    "reactivated": "User reactivated.",
    "revoked": "Agent key revoked. Requests using it are refused from now on.",
    "already-revoked": "That agent key was already revoked (or no longer exists).",
    "slack-removed": "Slack workspace removed. Routes naming it fail until it is reinstalled.",
    "sender-saved": "Email sender saved.",
    "sender-removed": "Email sender removed. Routes naming it fail until it is added again.",
}


# -- shared helpers -----------------------------------------------------------------------


def notice(request: Request) -> str | None:
    return NOTICES.get(request.query_params.get("done", ""))


def text_field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def raw_field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def checked(form: FormData, name: str) -> bool:
    return raw_field(form, name) not in ("", "0", "false", "off")


def expired_form(request: Request) -> Response:
    return render(
        request,
        "message.html",
        {
            "title": "Please try again",
            "message": "This form expired or did not come from this site. Reload the page and "
            "submit it again.",
        },
        status_code=403,
    )


async def operator_posting(request: Request, back: str) -> Principal | Response:
    """The operator behind a form post, or where to send an anonymous visitor.

    Unlike ``require_operator``, an anonymous post goes to /login with ``next`` set to the
    page the form lives on: after signing in, a GET of the form's action would be a 405.
    """
    who = await page_user(request)
    if who is None:
        return RedirectResponse(f"/login?next={quote(back, safe='')}", status_code=303)
    if not who.is_operator:
        raise PageError(403, "Operators only", "Only operators can open this page.")
    return who


async def operator_form(request: Request, back: str) -> tuple[Principal, FormData] | Response:
    """The operator behind a form post and the form, once its CSRF token checks out; or
    the response to send instead (sign in first, or "this form expired")."""
    who = await operator_posting(request, back)
    if isinstance(who, Response):
        return who
    form = await request.form()
    if not csrf_ok(ctx_of(request).csrf_keys, request, form.get(CSRF_FIELD)):
        return expired_form(request)
    return who, form


def first_error(errors: Mapping[str, str], order: tuple[str, ...]) -> str | None:
    return next((name for name in order if name in errors), None)


# -- users --------------------------------------------------------------------------------
