"""The web dashboard: server-rendered pages, served by the task server itself.

Templates and static files ship inside the package, so every ``pip install
"awaithumans[server]"`` has the dashboard; no front-end build exists to forget. Pages work
without JavaScript; a small script adds live updates.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).with_name("static")


def mount_dashboard(app: FastAPI) -> None:
    """Add the dashboard's pages and static files to ``app``."""
    from awaithumans.server.dashboard import (
        pages_account,
        pages_analytics,
        pages_auth,
        pages_bulk,
        pages_queue,
        pages_settings,
        pages_settings_email,
        pages_task,
        pages_users,
    )
    from awaithumans.server.dashboard.access import install_page_handlers

    install_page_handlers(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for module in (
        pages_auth,
        pages_account,
        pages_queue,
        pages_bulk,
        pages_task,
        pages_users,
        pages_settings,
        pages_settings_email,
        pages_analytics,
    ):
        app.include_router(module.router)
