"""Template rendering with the context every page needs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

from awaithumans.server.context import ServerContext
from awaithumans.server.dashboard.csrf import CSRF_FIELD, csrf_token, set_csrf_cookie
from awaithumans.server.services.display import span
from awaithumans.server.version import __version__

TEMPLATES_DIR = Path(__file__).with_name("templates")


def _age(value: datetime | None, now: datetime | None = None) -> str:
    """'3m', '2h', '5d' since ``value``."""
    if value is None:
        return ""
    return span(max(0, int(((now or datetime.now(UTC)) - value).total_seconds())))


def _left(value: datetime | None, now: datetime | None = None) -> str:
    """Time until ``value``, or 'overdue'."""
    if value is None:
        return ""
    seconds = int((value - (now or datetime.now(UTC))).total_seconds())
    return "overdue" if seconds <= 0 else span(seconds)


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else ""


def _humanize(status: str) -> str:
    return status.replace("_", " ")


env = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)
env.filters.update(age=_age, left=_left, when=_when, status_label=_humanize)
env.globals.update(version=__version__, csrf_field=CSRF_FIELD)


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render ``template`` with the page basics (user, CSRF token, active nav) filled in."""
    ctx: ServerContext = request.app.state.ctx
    values: dict[str, Any] = {
        "request": request,
        "user": getattr(request.state, "page_user", None),
        "csrf_token": csrf_token(ctx.csrf_key, request),
        "path": request.url.path,
    }
    values.update(context or {})
    body = env.get_template(template).render(values)
    response = HTMLResponse(body, status_code=status_code, headers=headers)
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    )
    set_csrf_cookie(request, response, secure=ctx.settings.cookies_secure)
    return response


def not_found_page(request: Request) -> HTMLResponse:
    """The page a person gets for a dashboard address that does not exist."""
    return render(
        request,
        "message.html",
        {"title": "Page not found", "message": "There is no page at this address."},
        status_code=404,
    )
