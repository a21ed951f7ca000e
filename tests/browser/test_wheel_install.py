"""The dashboard as ``pip install "awaithumans[server]"`` ships it: built wheel, clean venv.

Templates and static files are package data; a packaging change that drops them would pass
every test run from the source tree and still ship a dashboard of 500s and unstyled pages.
This builds the wheel, installs it with the ``server`` extra into a fresh virtual
environment (uv resolves from its cache or the registry), starts that environment's
``awaithumans dev`` and opens every page in Chromium.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, Response, expect

from awaithumans.testing.server import free_port
from tests.browser.test_dashboard_e2e import (
    Decision,
    Person,
    api_client,
    create_task,
    set_up_operator,
)
from tests.e2e.test_cli import Lines, default_sigint, stop_process

REPO = Path(__file__).resolve().parents[2]
UV = str(Path(sys.executable).parent / "uv")
DASHBOARD = REPO / "awaithumans" / "server" / "dashboard"
STARTUP_SECONDS = 30.0


def run(
    cmd: list[str], env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, check=False, env=env, cwd=cwd
    )
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
    return result


@dataclass
class InstalledServer:
    """``<venv>/bin/awaithumans dev``, with the attributes the page helpers use."""

    url: str
    setup_url: str
    admin_token: str
    venv: Path


@pytest.fixture
def installed_server(tmp_path: Path) -> Iterator[InstalledServer]:
    # The venv must see only the wheel: no source tree on the path, no settings of the runner.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "PYTHONPATH") and not k.startswith("AWAITHUMANS_")
    }
    dist = tmp_path / "dist"
    run([UV, "build", "--wheel", "--out-dir", str(dist), str(REPO)], env)
    wheels = sorted(dist.glob("awaithumans-*.whl"))
    assert len(wheels) == 1, wheels
    wheel = wheels[0]

    # Every template and static file of the source tree is in the wheel.
    with zipfile.ZipFile(wheel) as archive:
        packed = set(archive.namelist())
    shipped = {
        path.relative_to(REPO).as_posix()
        for folder in ("templates", "static")
        for path in (DASHBOARD / folder).iterdir()
        if path.is_file()
    }
    assert shipped, DASHBOARD
    assert shipped <= packed, sorted(shipped - packed)

    venv = tmp_path / "venv"
    run(["python3", "-m", "venv", "--without-pip", str(venv)], env)
    python = str(venv / "bin" / "python")
    run([UV, "pip", "install", "--python", python, f"{wheel}[server]"], env)

    project, home = tmp_path / "project", tmp_path / "home"
    project.mkdir()
    home.mkdir()
    # Imported from the venv's site-packages, not from this checkout (run from elsewhere:
    # `python -c` puts the working directory first on the path).
    where = run([python, "-c", "import awaithumans; print(awaithumans.__file__)"], env, project)
    assert where.stdout.startswith(str(venv)), where.stdout

    port = free_port()
    log = tmp_path / "dev.stderr"
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [str(venv / "bin" / "awaithumans"), "dev", "--port", str(port)],
            cwd=project,
            env={**env, "HOME": str(home), "PYTHONIOENCODING": "utf-8", "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            encoding="utf-8",
            preexec_fn=default_sigint,
        )
    try:
        assert proc.stdout is not None
        out = Lines(proc.stdout)
        try:
            setup_line = out.wait_for(lambda line: "/setup?token=" in line, STARTUP_SECONDS)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- stderr ---\n{log.read_text()}") from None
        url = f"http://localhost:{port}"
        assert f"✓ Server running at {url}" in out.seen, out.seen
        yield InstalledServer(
            url=url,
            setup_url=setup_line.strip(),
            admin_token=(project / ".awaithumans" / "admin.token").read_text().strip(),
            venv=venv,
        )
    finally:
        stop_process(proc, signal.SIGINT)


def test_installed_wheel_serves_every_dashboard_page(
    installed_server: InstalledServer, page: Page
) -> None:
    started = time.monotonic()
    server = installed_server
    assets: dict[str, int] = {}

    def record(response: Response) -> None:
        if "/static/" in response.url:
            assets[response.url.split("?", 1)[0].removeprefix(server.url)] = response.status

    page.on("response", record)
    failed: list[str] = []
    # (Navigating away aborts the live list's long-poll: only static files count here.)
    page.on(
        "requestfailed",
        lambda request: failed.append(request.url) if "/static/" in request.url else None,
    )

    def visit(path: str, heading: str) -> None:
        response = page.goto(f"{server.url}{path}")
        assert response is not None
        assert response.status == 200, (path, response.status)
        expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()
        # Styled by app.css (its background colour, not the browser's white).
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(246, 247, 249)", (path, background)

    visit("/login", "Sign in")
    # setup.html, then the signed-in queue. The helpers only need url and setup_url.
    set_up_operator(page, server, Person("Wheel Operator", "wheel@example.com"))
    with api_client(server) as api:
        task_id = create_task(api, "Installed from the wheel?", response_schema=Decision)
    visit("/", "Queue")
    expect(page.get_by_role("link", name="Installed from the wheel?")).to_be_visible()
    visit(f"/task?id={task_id}", "Installed from the wheel?")
    expect(page.get_by_role("button", name="Submit answer")).to_be_visible()
    visit("/users", "Users")
    visit("/settings", "Settings")
    visit("/audit", "Audit")
    # app.js runs: the queue's live list is wired up and re-renders on a change.
    visit("/", "Queue")
    with api_client(server) as api:
        create_task(api, "Second task, shown live", response_schema=Decision)
    expect(page.get_by_role("link", name="Second task, shown live")).to_be_visible(timeout=5_000)

    page_assets = {"/static/app.css", "/static/app.js", "/static/favicon.svg"}
    page_assets |= {"/static/queue.css", "/static/task.css", "/static/admin.css"}
    assert page_assets <= set(assets), sorted(assets)
    assert {path: status for path, status in assets.items() if status not in (200, 304)} == {}
    assert failed == []

    # Every file in static/ is served, with a sensible type.
    types = {".css": "text/css", ".js": "javascript", ".svg": "image/svg+xml"}
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for path in sorted((DASHBOARD / "static").iterdir()):
            got = client.get(f"/static/{path.name}")
            assert got.status_code == 200, (path.name, got.status_code)
            assert types[path.suffix] in got.headers["content-type"], got.headers
            assert got.content == path.read_bytes(), path.name
        setup = client.get(server.setup_url.removeprefix(server.url))
        assert setup.status_code == 400  # used up, and still a page rather than an error
        assert re.search(r"<h1>Setup link not valid</h1>", setup.text), setup.text
    assert time.monotonic() - started < 30
