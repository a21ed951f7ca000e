"""Browser fixtures: Debian's Chromium through Playwright (sync API), and a real dev server.

* ``browser``: one headless Chromium for all tests in this directory (see below for why not
  the whole session).
* ``page`` (1280x800) and ``mobile_page`` (390x844, touch, mobile viewport): a new context
  each, closed after the test. A test fails if its page requested anything not on this machine.
* ``dev_server``: a real ``awaithumans dev`` in a temporary project directory and home.
* ``artifacts_dir`` and ``shoot(page, name)``: full-page screenshots to
  ``test-artifacts/screenshots/<name>-<width>.png``.

Write the tests here as plain ``def`` tests. A started sync Playwright leaves its event loop
marked as running in this thread, so asyncio tests cannot run while it is up; that is also
why ``browser`` is package-scoped: it stops after the last test in this directory, before
the asyncio tests elsewhere in the suite run.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Playwright, ViewportSize, sync_playwright

from tests.support.browser import (
    ChromiumNotFoundError,
    DevServer,
    find_chromium,
    is_local_url,
    launch_chromium,
    screenshot,
)

HERE = Path(__file__).parent
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
MOBILE: ViewportSize = {"width": 390, "height": 844}
# Same rendering everywhere: fixed locale, time zone, colour scheme, no animations.
CONTEXT_DEFAULTS: dict[str, Any] = {
    "locale": "en-US",
    "timezone_id": "UTC",
    "color_scheme": "light",
    "reduced_motion": "reduce",
    "device_scale_factor": 1,
}
ACTION_TIMEOUT_MS = 10_000


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.path).parents and inspect.iscoroutinefunction(
            getattr(item, "obj", None)
        ):
            raise pytest.UsageError(
                f"{item.nodeid}: browser tests must be plain `def` tests (Playwright's sync "
                "API); an asyncio test cannot run while the sync Playwright is started."
            )


@pytest.fixture(scope="session")
def chromium_path() -> str:
    try:
        return find_chromium()
    except ChromiumNotFoundError as exc:
        problem = str(exc)
    pytest.fail(problem, pytrace=False)  # not a skip: a browser test that did not run failed


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="package")
def browser(playwright: Playwright, chromium_path: str) -> Iterator[Browser]:
    browser = launch_chromium(playwright)
    yield browser
    browser.close()


def _open_page(browser: Browser, viewport: ViewportSize, **options: Any) -> Iterator[Page]:
    context = browser.new_context(viewport=viewport, **CONTEXT_DEFAULTS, **options)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    off_host: list[str] = []
    context.on("request", lambda r: None if is_local_url(r.url) else off_host.append(r.url))
    try:
        yield context.new_page()
    finally:
        context.close()
    if off_host:
        pytest.fail(
            "the page requested URLs off this machine (the dashboard must be self-contained, "
            "no CDNs or web fonts):\n  " + "\n  ".join(off_host),
            pytrace=False,
        )


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A desktop page (1280x800) in a fresh context."""
    yield from _open_page(browser, DESKTOP)


@pytest.fixture
def mobile_page(browser: Browser) -> Iterator[Page]:
    """A phone-sized page (390x844): mobile viewport rules (<meta viewport>) and touch."""
    yield from _open_page(browser, MOBILE, is_mobile=True, has_touch=True)


@pytest.fixture(scope="session")
def artifacts_dir(pytestconfig: pytest.Config) -> Path:
    """``test-artifacts/screenshots/`` under the repository root (git-ignored)."""
    path = pytestconfig.rootpath / "test-artifacts" / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def shoot(artifacts_dir: Path) -> Callable[[Page, str], Path]:
    """``shoot(page, name)``: full-page screenshot to ``<artifacts_dir>/<name>-<width>.png``."""

    def shoot(page: Page, name: str) -> Path:
        return screenshot(page, artifacts_dir, name)

    return shoot


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[DevServer]:
    """A real ``awaithumans dev`` on a free port, in ``tmp_path/project`` with
    ``HOME=tmp_path/home``; fresh database, nobody signed up yet. Stopped with SIGINT after.

    ``url`` (http://localhost:PORT), ``setup_url`` (the one-shot link of the banner),
    ``admin_token``, ``cwd``, ``home``, ``port``, ``stdout_lines``, ``stderr()``.
    """
    server = DevServer(tmp_path / "project", tmp_path / "home")
    with server:
        yield server
