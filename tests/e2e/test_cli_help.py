"""The CLI explains itself: bare `awaithumans` lists the commands, every command's --help
says what it does, every option says what it is and its default; `url` and `token` read
the running dev server's discovery file (what the README's curls use)."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator
from pathlib import Path

from awaithumans.server.cli.main import build_parser
from tests.e2e.test_cli import run_cli


def _commands(
    parser: argparse.ArgumentParser, path: str = "awaithumans"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield f"{path} {name}", child
                yield from _commands(child, f"{path} {name}")


def test_every_command_and_option_explains_itself() -> None:
    found = list(_commands(build_parser()))
    names = {name for name, _ in found}
    assert {"awaithumans dev", "awaithumans serve", "awaithumans url", "awaithumans token",
            "awaithumans relay temporal", "awaithumans slack manifest"} <= names  # fmt: skip
    for name, parser in found:
        assert parser.description, f"{name} has no description"
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
                continue
            assert action.help, f"{name} {action.option_strings} has no help text"
            takes_value = action.nargs != 0 and action.option_strings
            if takes_value and not action.required and action.default is not None:
                assert "default" in action.help, f"{name} {action.option_strings}: no default"
    dev_help = " ".join(dict(_commands(build_parser()))["awaithumans dev"].format_help().split())
    assert "127.0.0.1" in dev_help
    assert "3001 or the next free one" in dev_help


def test_bare_awaithumans_lists_the_commands(tmp_path: Path) -> None:
    result = run_cli(cwd=tmp_path, home=tmp_path)
    assert result.returncode == 0, result.stderr
    for line in ("dev ", "serve ", "doctor ", "url ", "token "):
        assert line in result.stdout
    assert "Start with `awaithumans dev`" in result.stdout


def test_url_and_token_read_the_running_dev_server(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    missing = run_cli("url", cwd=tmp_path, home=home)
    assert missing.returncode == 1
    assert "No running `awaithumans dev` found" in missing.stderr
    # This test's own process stands in for the dev server: the file names a live pid.
    record = {"url": "http://localhost:3002", "admin_token": "ah_admin_x", "pid": os.getpid()}
    (home / ".awaithumans-dev.json").write_text(json.dumps(record))
    url = run_cli("url", cwd=tmp_path, home=home)
    token = run_cli("token", cwd=tmp_path, home=home)
    assert (url.returncode, url.stdout) == (0, "http://localhost:3002\n")
    assert (token.returncode, token.stdout) == (0, "ah_admin_x\n")
