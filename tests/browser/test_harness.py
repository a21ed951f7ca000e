"""The browser harness itself: Chromium, a real dev server, screenshots, no outside traffic."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Page

from tests.support.browser import DevServer

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_width(path: Path) -> int:
    """Width of a non-empty PNG file, from its header chunk."""
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE), path
    assert len(data) > 1000, f"{path}: {len(data)} bytes"
    return int.from_bytes(data[16:20], "big")


def test_health_page_in_chromium_at_both_widths(
    dev_server: DevServer,
    page: Page,
    mobile_page: Page,
    shoot: Callable[[Page, str], Path],
) -> None:
    assert dev_server.url.startswith("http://localhost:")
    assert dev_server.setup_url.startswith(f"{dev_server.url}/setup?token=")
    assert dev_server.admin_token
    assert (dev_server.home / ".awaithumans-dev.json").is_file()

    requested: list[str] = []
    shots: list[Path] = []
    for tab in (page, mobile_page):
        tab.on("request", lambda request: requested.append(request.url))
        response = tab.goto(f"{dev_server.url}/api/health")
        assert response is not None
        assert response.status == 200
        body = tab.inner_text("body")
        assert '"status":"ok"' in body.replace(" ", ""), body
        shots.append(shoot(tab, "harness-health"))

    assert [path.name for path in shots] == ["harness-health-1280.png", "harness-health-390.png"]
    assert [png_width(path) for path in shots] == [
        1280,
        # Mobile emulation is on: a page without <meta name="viewport" ...> (this JSON) is
        # laid out 980 px wide, as on a phone. Dashboard pages must have the tag.
        980,
    ]

    assert requested, "the page made no request at all"
    hosts = {urlsplit(url).hostname for url in requested}
    assert hosts <= {"127.0.0.1", "localhost"}, requested
