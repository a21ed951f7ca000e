"""``docs/env.md`` is the settings as the server reads them: fresh, complete, every name read.

The page is generated from ``Settings`` (``awaithumans/server/env_reference.py``). Here it
is generated again and compared with the committed file, every field must carry a
description, and every variable name the page gives is set, alone, in the environment, to
show that ``Settings()`` really reads it under that name (a wrong prefix or a forgotten
alias would leave the field at its default).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from awaithumans.server import env_reference
from awaithumans.server.env_reference import EnvVar
from awaithumans.server.settings import Settings

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "env.md"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("AWAITHUMANS_"):
            monkeypatch.delenv(name)


def test_the_committed_page_is_the_generated_one() -> None:
    assert PAGE.read_text(encoding="utf-8") == env_reference.render(), (
        f"docs/env.md is stale: run `{env_reference.COMMAND}` and commit it"
    )


def test_every_setting_has_a_description() -> None:
    assert env_reference.undocumented() == [], "add a description= to these fields in settings.py"


def _value(settings: object, path: str) -> object:
    for part in path.split("."):
        settings = getattr(settings, part)
    return settings


def _sample(var: EnvVar, default: object) -> str:
    """A valid value for ``var`` that is not its default."""
    if var.kind.startswith("one of "):
        choices = [c.strip(" `") for c in var.kind.removeprefix("one of ").split(",")]
        return next(c for c in choices if c != default)
    kind = var.kind.split(",")[0]
    if kind == "secret":
        return "s3cret-value"
    if kind == "text":
        if var.field == "database_url":
            return "postgresql://u:p@db.example/awaithumans"
        if var.field == "business_hours":
            return "Mon-Fri 09:00-17:00 Europe/Berlin"
        return "sample-text"
    if kind == "integer":
        return str(default + 1 if isinstance(default, int) else 2525)
    if kind == "number":
        return str(default + 1 if isinstance(default, float) else 5.5)
    if kind == "true or false":
        return "false" if default is True else "true"
    if kind == "path":
        return "/srv/mail"
    if kind == "COUNT/SECONDS":
        return "7/70"
    if kind == "comma-separated names":
        return "MY_PROVIDER_KEY, OTHER_KEY"
    if kind == "comma-separated IP addresses or networks (CIDR)":
        return "10.0.0.0/8, 192.0.2.7"
    raise AssertionError(f"no sample for {var.kind!r} ({var.field})")


VARIABLES = [v for g in env_reference.groups() for v in g.variables]


@pytest.mark.parametrize(
    ("var", "name"),
    [(v, n) for v in VARIABLES for n in v.names],
    ids=[n for v in VARIABLES for n in v.names],
)
def test_each_documented_name_is_read(
    var: EnvVar, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = _value(Settings(), var.field)
    sample = _sample(var, default)
    monkeypatch.setenv(name, sample)
    read = _value(Settings(), var.field)
    assert read != default, f"{name}={sample} left {var.field} at {default!r}"


def test_documented_defaults_are_the_real_ones() -> None:
    settings = Settings()
    for var in VARIABLES:
        value = _value(settings, var.field)
        if var.kind.startswith("secret"):
            assert var.default == "—"
        elif value is None or value == []:
            assert var.default == "—", var
        elif isinstance(value, tuple):
            count, seconds = value
            assert var.default == f"`{count}/{seconds:g}`", var
        elif isinstance(value, bool):
            assert var.default == f"`{str(value).lower()}`", var
        elif isinstance(value, float):
            assert var.default == f"`{value:g}`", var
        else:
            assert var.default == f"`{value}`", var


def test_what_the_page_says_of_names_and_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    page = PAGE.read_text(encoding="utf-8")
    # "Names are not case-sensitive."
    monkeypatch.setenv("awaithumans_port", "4100")
    assert Settings().port == 4100
    # "In the Slack and email groups, a blank value means unset."
    monkeypatch.setenv("AWAITHUMANS_EMAIL_TRANSPORT", "  ")
    monkeypatch.setenv("AWAITHUMANS_SLACK_BOT_TOKEN", "")
    assert Settings().email.transport is None
    assert Settings().slack.bot_token is None
    # A group given whole as JSON replaces its separate variables.
    monkeypatch.setenv("AWAITHUMANS_SLACK_CLIENT_ID", "separate")
    monkeypatch.setenv("AWAITHUMANS_SLACK", '{"client_id": "whole"}')
    assert Settings().slack.client_id == "whole"
    for group in ("AWAITHUMANS_SLACK", "AWAITHUMANS_EMAIL", "AWAITHUMANS_EMAIL_SMTP"):
        assert f"`{group}`" in page
    monkeypatch.setenv("AWAITHUMANS_EMAIL_SMTP", '{"host": "relay.example"}')
    monkeypatch.setenv("AWAITHUMANS_VERIFIER", '{"concurrency": 3}')
    assert Settings().email.smtp.host == "relay.example"
    assert Settings().verifier.concurrency == 3


def test_every_field_of_every_group_is_on_the_page() -> None:
    """No field is left out by the walk (the groups are found through the annotations)."""
    listed = {v.field for v in VARIABLES}

    def walk(model: type[BaseModel], path: str) -> Iterator[str]:
        for name, field in model.model_fields.items():
            nested = field.annotation
            if isinstance(nested, type) and issubclass(nested, BaseModel):
                yield from walk(nested, f"{path}{name}.")
            else:
                yield path + name

    assert set(walk(Settings, "")) == listed
    assert "email.smtp.host" in listed
    assert "verifier.gemini_base_url" in listed


def test_the_check_command(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "awaithumans.server.env_reference", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=REPO,
        )

    fresh = run("--check")
    assert fresh.returncode == 0, fresh.stderr
    stale = tmp_path / "env.md"
    stale.write_text(PAGE.read_text(encoding="utf-8").replace("Port it listens on", "Port"))
    checked = run("--check", str(stale))
    assert checked.returncode == 1
    assert "is stale: run `python -m awaithumans.server.env_reference`" in checked.stderr
    assert "Port it listens on" not in stale.read_text()  # --check changes nothing
    written = run(str(stale))
    assert written.returncode == 0, written.stderr
    assert stale.read_text(encoding="utf-8") == PAGE.read_text(encoding="utf-8")
