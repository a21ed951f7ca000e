"""Setup (first operator), sign in, sign out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from awaithumans.core._codes import ErrorCode
from awaithumans.server.bootstrap import operator_exists, stored_setup_hash
from awaithumans.server.dashboard.access import ctx_of, page_user, safe_next
from awaithumans.server.dashboard.csrf import CSRF_FIELD, csrf_ok
from awaithumans.server.dashboard.render import render
from awaithumans.server.errors import ApiError
from awaithumans.server.security import (
    Door,
    ExpiredTokenError,
    TokenError,
    hash_token,
    tokens_equal,
)
from awaithumans.server.services.directory import active_user
from awaithumans.server.services.handoff import PATH as HANDOFF_PATH
from awaithumans.server.services.handoff import read_handoff
from awaithumans.server.services.sessions import (
    create_first_operator,
    open_session,
    sign_in,
    sign_out,
)
from awaithumans.server.web import (
    clear_session_cookie,
    client_ip,
    door_refusal,
    session_id,
    set_session_cookie,
)

router = APIRouter(include_in_schema=False)


async def _setup_state(request: Request, token: str | None) -> str | None:
    """None when ``token`` may create the first operator, else why not (a message)."""
    ctx = ctx_of(request)
    async with ctx.engine.connect() as conn:
        if await operator_exists(conn):
            return "Setup is already done. Sign in with your operator account."
        stored = await stored_setup_hash(conn)
    if not token or stored is None or not tokens_equal(stored, hash_token(token)):
        return (
            "This setup link is not valid. Use the link printed when the server started "
            "(restarting the server prints it again)."
        )
    return None


def _over_limit(request: Request, door: Door) -> Response | None:
    """Count this request at ``door``; the page to answer instead when over its limit."""
    refusal = door_refusal(request, door)
    if refusal is None:
        return None
    return render(
        request,
        "message.html",
        {"title": "Please wait", "message": refusal.message},
        status_code=refusal.status_code,
        headers=refusal.headers,
    )


def _bad_form(request: Request, template: str, context: dict[str, Any]) -> Response:
    return render(request, template, context, status_code=400)


@router.get("/setup")
async def setup_page(request: Request, token: str | None = None) -> Response:
    if (refused := _over_limit(request, Door.SETUP)) is not None:
        return refused
    problem = await _setup_state(request, token)
    if problem is not None:
        return render(
            request,
            "message.html",
            {"title": "Setup link not valid", "message": problem, "link": ("/login", "Sign in")},
            status_code=400,
        )
    return render(request, "setup.html", {"token": token, "values": {}, "errors": {}})


@router.post("/setup")
async def setup_submit(request: Request) -> Response:
    if (refused := _over_limit(request, Door.SETUP)) is not None:
        return refused
    ctx = ctx_of(request)
    form = await request.form()
    token = str(form.get("token", ""))
    values = {k: str(form.get(k, "")).strip() for k in ("email", "display_name")}
    if not csrf_ok(ctx.csrf_keys, request, form.get(CSRF_FIELD)):
        return _expired_form(request)
    errors: dict[str, str] = {}
    if "@" not in values["email"]:
        errors["email"] = "Enter an email address."
    if not values["display_name"]:
        errors["display_name"] = "Enter the name people will see."
    password = str(form.get("password", ""))
    if password != str(form.get("password_confirm", "")):
        errors["password_confirm"] = "The two passwords differ."  # noqa: S105 - a form field name
    if not errors:
        try:
            user = await create_first_operator(
                ctx,
                token=token,
                email=values["email"],
                display_name=values["display_name"],
                password=password,
            )
        except ApiError as exc:
            if exc.code == ErrorCode.WEAK_PASSWORD:
                errors["password"] = exc.message
            else:
                return render(
                    request,
                    "message.html",
                    {
                        "title": "Setup link not valid",
                        "message": exc.message,
                        "link": ("/login", "Sign in"),
                    },
                    status_code=exc.status_code,
                )
        else:
            response = RedirectResponse("/", status_code=303)
            set_session_cookie(response, ctx.settings, await open_session(ctx, str(user["id"])))
            return response
    return _bad_form(request, "setup.html", {"token": token, "values": values, "errors": errors})


def _expired_form(request: Request) -> Response:
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


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    if await page_user(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "login.html", {"next": safe_next(next), "email": "", "error": None})


@router.post("/login")
async def login_submit(request: Request) -> Response:
    ctx = ctx_of(request)
    form = await request.form()
    target = safe_next(str(form.get("next", "/")))
    email = str(form.get("email", "")).strip()
    if not csrf_ok(ctx.csrf_keys, request, form.get(CSRF_FIELD)):
        return _expired_form(request)
    try:
        _user, cookie = await sign_in(ctx, client_ip(request), email, str(form.get("password", "")))
    except ApiError as exc:
        return render(
            request,
            "login.html",
            {"next": target, "email": email, "error": exc.message},
            status_code=exc.status_code,
            headers=exc.headers,
        )
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, ctx.settings, cookie)
    return response


@router.post("/logout")
async def logout_submit(request: Request) -> Response:
    ctx = ctx_of(request)
    form = await request.form()
    await page_user(request)
    response = RedirectResponse("/login", status_code=303)
    if csrf_ok(ctx.csrf_keys, request, form.get(CSRF_FIELD)):
        await sign_out(ctx, session_id(request))
        clear_session_cookie(response)
    return response


@router.get(HANDOFF_PATH)
async def handoff(request: Request, t: str = "") -> Response:
    """A signed link from Slack or an email: sign its person in for its one task."""
    if (refused := _over_limit(request, Door.HANDOFF)) is not None:
        return refused
    ctx = ctx_of(request)
    try:
        link = read_handoff(ctx.keyring, t)
    except ExpiredTokenError:
        return _handoff_refused(
            request, "This link has expired", "It was good until the task's deadline."
        )
    except TokenError:
        return _handoff_refused(
            request, "This link is not valid", "It may have been cut short when it was copied."
        )
    target = f"/task?id={link.task_id}"
    current = await page_user(request)
    if current is not None and current.id == link.user_id and current.scope_task_id is None:
        # Already signed in as that person, with more than one task: keep that session.
        return RedirectResponse(target, status_code=303)
    user = await active_user(ctx.engine, link.user_id)
    if user is None:
        return _handoff_refused(
            request, "This link is not valid", "The person it was made for is no longer here."
        )
    cookie = await open_session(ctx, link.user_id, task_id=link.task_id, until=link.expires_at)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, ctx.settings, cookie)
    return response


def _handoff_refused(request: Request, title: str, why: str) -> Response:
    message = f"{why} Open the task from its latest message, or sign in."
    return render(request, "message.html", {"title": title, "message": message}, status_code=400)
