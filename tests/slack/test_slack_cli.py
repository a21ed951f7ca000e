"""`awaithumans slack manifest`: the app to paste into api.slack.com, URLs filled in."""

from __future__ import annotations

import json
import subprocess
import sys


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "awaithumans._cli_entry", "slack", "manifest", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_manifest_has_this_servers_urls_and_every_scope() -> None:
    done = _run("--url", "https://approvals.acme.com/")
    assert done.returncode == 0, done.stderr
    app = json.loads(done.stdout)
    settings = app["settings"]
    base = "https://approvals.acme.com/api/channels/slack"
    assert settings["interactivity"]["request_url"] == f"{base}/interactions"
    assert settings["event_subscriptions"]["request_url"] == f"{base}/events"
    assert app["oauth_config"]["redirect_urls"] == [f"{base}/oauth/callback"]
    scopes = set(app["oauth_config"]["scopes"]["bot"])
    assert {"users:read", "users:read.email", "chat:write", "im:write", "channels:read",
            "groups:read"} <= scopes  # fmt: skip
    assert settings["socket_mode_enabled"] is False


def test_socket_mode_needs_no_request_urls() -> None:
    done = _run("--url", "http://localhost:3001", "--socket-mode")
    app = json.loads(done.stdout)
    assert "AWAITHUMANS_SLACK_APP_TOKEN=xapp-" in done.stderr  # what to do next
    assert app["settings"]["socket_mode_enabled"] is True
    assert "request_url" not in app["settings"]["interactivity"]
    assert "request_url" not in app["settings"]["event_subscriptions"]


def test_a_plain_http_url_is_refused_with_a_way_out() -> None:
    done = _run("--url", "http://approvals.acme.com")
    assert done.returncode == 2
    assert "--socket-mode" in done.stderr
