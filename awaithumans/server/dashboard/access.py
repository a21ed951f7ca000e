"""Who is looking at a page, and what happens when they may not."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from starlette.responses import RedirectResponse, Response

from awaithumans.server.auth import SESSION_COOKIE
from awaithumans.server.context import ServerContext
from awaithumans.server.dashboard.render import render
from awaithumans.server.principals import Principal


class LoginRequired(Exception):
    """Raised by page handlers for anonymous visitors: answered with a redirect to /login."""


class PageError(Exception):
    """A page-level refusal shown as a friendly page (not a JSON error)."""

    def __init__(self, status_code: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.title = title
        self.message = message


def ctx_of(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.ctx
    return ctx


async def page_user(request: Request) -> Principal | None:
    """The signed-in user from the session cookie (bearer tokens do not sign in pages)."""
    ctx = ctx_of(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    found = await ctx.auth.from_session(cookie)
    if found is None:
        return None
    request.state.session_id = found[1]
    request.state.page_user = found[0]
    return found[0]


async def require_user(request: Request) -> Principal:
    who = await page_user(request)
    if who is None:
        raise LoginRequired
    return who


async def require_operator(request: Request) -> Principal:
    who = await require_user(request)
    if not who.is_operator:
        raise PageError(403, "Operators only", "Only operators can open this page.")
    return who


def safe_next(target: str | None) -> str:
    """Only same-site paths: ``next=`` must not become an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def install_page_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def _login(request: Request, _exc: LoginRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(PageError)
    async def _page_error(request: Request, exc: PageError) -> Response:
        return render(
            request,
            "message.html",
            {"title": exc.title, "message": exc.message},
            status_code=exc.status_code,
        )
