"""The signed-in person's own page (/account): their password, signing out everywhere, and
being away (new tasks to a delegate until a date; ``delegation_form.py``).

Every reviewer and operator with a session has it, not only operators: the one who lost a
laptop is the first to want every session ended. A session opened by a signed link from
Slack or an email is for its one task, and does not reach this page.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import func, select
from starlette.responses import RedirectResponse, Response

from awaithumans.core._codes import ErrorCode
from awaithumans.server.dashboard.access import PageError, ctx_of, page_user, require_user
from awaithumans.server.dashboard.admin_common import expired_form, first_error, raw_field
from awaithumans.server.dashboard.csrf import CSRF_FIELD, csrf_ok
from awaithumans.server.dashboard.delegation_form import (
    DelegationForm,
    delegation_view,
    read_delegation_form,
    save_delegation,
)
from awaithumans.server.dashboard.render import render
from awaithumans.server.db.models import SessionRow, UserRow
from awaithumans.server.db.types import utcnow
from awaithumans.server.errors import ApiError
from awaithumans.server.principals import Principal
from awaithumans.server.services.sessions import change_own_password, sign_out_everywhere
from awaithumans.server.web import clear_session_cookie, client_ip, session_id

router = APIRouter(include_in_schema=False)

PATH = "/account"
_FIELDS = ("current_password", "new_password", "new_password_confirm")
_NOTICES = {
    "password": "Password changed. Your other sessions were signed out.",
    "delegated": "Delegation saved: your new tasks go to your delegate until you are back.",
    "delegation-ended": "Delegation ended: new tasks come to you again.",
}
# Which field a refusal from the password change belongs to.
_FIELD_OF: dict[str, str] = {
    ErrorCode.INVALID_CREDENTIALS: "current_password",
    ErrorCode.RATE_LIMITED: "current_password",
    ErrorCode.WEAK_PASSWORD: "new_password",
}


def _own(who: Principal) -> Principal:
    if who.scope_task_id is not None:
        raise PageError(
            403,
            "Sign in for your account",
            "A link from Slack or an email opens its one task only. Sign in with your "
            "password to manage your account.",
        )
    return who


async def _posting(request: Request) -> Principal | Response:
    """The person behind a form post here, or /login for an anonymous one (coming back to
    the page: a GET of the form's action would be a 405)."""
    who = await page_user(request)
    if who is None:
        return RedirectResponse(f"/login?next={PATH}", status_code=303)
    return _own(who)


async def _facts(request: Request, who: Principal) -> dict[str, Any]:
    """Whether they have a password, and how many sessions they have open."""
    async with ctx_of(request).engine.connect() as conn:
        stored = await conn.scalar(select(UserRow.password_hash).where(UserRow.id == who.id))
        sessions = await conn.scalar(
            select(func.count())
            .select_from(SessionRow)
            .where(
                SessionRow.user_id == who.id,
                SessionRow.revoked_at.is_(None),
                SessionRow.expires_at > utcnow(),
            )
        )
    return {"has_password": stored is not None, "sessions": int(sessions or 0)}


async def _page(
    request: Request,
    who: Principal,
    *,
    errors: dict[str, str] | None = None,
    delegation: DelegationForm | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    errors = errors or {}
    derrors = delegation.errors if delegation else {}
    notice = None if errors or derrors else _NOTICES.get(request.query_params.get("done", ""))
    return render(
        request,
        "account.html",
        {
            **await _facts(request, who),
            "errors": errors,
            "first_error": first_error(errors, _FIELDS),
            "notice": notice,
            "d": await delegation_view(ctx_of(request).engine, who.id),
            "derrors": derrors,
            "dvalues": delegation.shown if delegation else {},
        },
        status_code=status_code,
        headers=headers,
    )


@router.get(PATH)
async def account_page(request: Request) -> Response:
    return await _page(request, _own(await require_user(request)))


@router.post(f"{PATH}/password")
async def change_password(request: Request) -> Response:
    who = await _posting(request)
    if isinstance(who, Response):
        return who
    ctx = ctx_of(request)
    form = await request.form()
    if not csrf_ok(ctx.csrf_keys, request, form.get(CSRF_FIELD)):
        return expired_form(request)
    new = raw_field(form, "new_password")
    if new != raw_field(form, "new_password_confirm"):
        errors = {"new_password_confirm": "The two new passwords differ."}
        return await _page(request, who, errors=errors, status_code=400)
    try:
        await change_own_password(
            ctx,
            who,
            session_id=session_id(request),
            ip=client_ip(request),
            current=raw_field(form, "current_password"),
            new=new,
        )
    except ApiError as exc:
        errors = {_FIELD_OF.get(exc.code, "current_password"): exc.message}
        return await _page(
            request, who, errors=errors, status_code=exc.status_code, headers=exc.headers
        )
    return RedirectResponse(f"{PATH}?done=password", status_code=303)


@router.post(f"{PATH}/sign-out")
async def sign_out_everywhere_submit(request: Request) -> Response:
    """End every session of the person, this one too, and go to the sign-in page."""
    who = await _posting(request)
    if isinstance(who, Response):
        return who
    form = await request.form()
    if not csrf_ok(ctx_of(request).csrf_keys, request, form.get(CSRF_FIELD)):
        return expired_form(request)
    await sign_out_everywhere(ctx_of(request), who)
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response)
    return response


@router.post(f"{PATH}/delegation")
async def set_own_delegation(request: Request) -> Response:
    """Away until ... -> delegate to ..., or end it, for oneself."""
    who = await _posting(request)
    if isinstance(who, Response):
        return who
    ctx = ctx_of(request)
    form = await request.form()
    if not csrf_ok(ctx.csrf_keys, request, form.get(CSRF_FIELD)):
        return expired_form(request)
    got = read_delegation_form(form)
    if not got.errors and await save_delegation(ctx.writer, who.id, got) is None:
        done = "delegated" if got.values.get("delegate_to_user_id") else "delegation-ended"
        return RedirectResponse(f"{PATH}?done={done}#away", status_code=303)
    return await _page(request, who, delegation=got, status_code=400)
