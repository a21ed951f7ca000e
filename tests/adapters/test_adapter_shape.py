"""The three adapters have one shape: the same ``await_human`` parameters as the core, the
coroutine under that name and its blocking twin beside it, one receiver vocabulary, and one
error for a missing framework."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

import awaithumans.adapters
from awaithumans.core import ASK_PARAMETERS, Ask, await_human, await_human_sync

ADAPTERS = ("temporal", "langgraph", "prefect")
# Workflow code in Temporal is async only: no blocking twin there.
HAS_SYNC = {"temporal": False, "langgraph": True, "prefect": True}
FRAMEWORK = {"temporal": "temporalio", "langgraph": "langgraph", "prefect": "prefect"}


def _adapter(name: str) -> Any:
    return importlib.import_module(f"awaithumans.adapters.{name}")


def _calls() -> list[tuple[str, Callable[..., Any]]]:
    calls: list[tuple[str, Callable[..., Any]]] = [
        ("core.await_human", await_human),
        ("core.await_human_sync", await_human_sync),
    ]
    for name in ADAPTERS:
        calls.append((f"{name}.await_human", _adapter(name).await_human))
        if HAS_SYNC[name]:
            calls.append((f"{name}.await_human_sync", _adapter(name).await_human_sync))
    return calls


def test_ask_declares_the_shared_parameters_once() -> None:
    assert tuple(f.name for f in dataclasses.fields(Ask)) == ASK_PARAMETERS
    assert ASK_PARAMETERS[:5] == (
        "task",
        "payload_schema",
        "payload",
        "response_schema",
        "timeout_seconds",
    )


@pytest.mark.parametrize(("where", "call"), _calls(), ids=[w for w, _ in _calls()])
def test_every_await_human_takes_the_shared_parameters_first(
    where: str, call: Callable[..., Any]
) -> None:
    params = list(inspect.signature(call).parameters.values())
    shared = params[: len(ASK_PARAMETERS)]
    assert [p.name for p in shared] == list(ASK_PARAMETERS), where
    for param, field in zip(shared, dataclasses.fields(Ask), strict=True):
        assert param.kind is inspect.Parameter.KEYWORD_ONLY, (where, param.name)
        # Same annotation text (the modules use postponed annotations) and same default.
        assert param.annotation == field.type, (where, param.name)
        expected = (
            inspect.Parameter.empty if field.default is dataclasses.MISSING else field.default
        )
        assert param.default == expected, (where, param.name)
    # An engine's own parameters come after the shared ones, keyword-only too.
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params), where
    assert inspect.signature(call).return_annotation == "R", where


@pytest.mark.parametrize("name", ADAPTERS)
def test_await_human_is_the_coroutine_and_the_sync_twin_blocks(name: str) -> None:
    adapter = _adapter(name)
    assert inspect.iscoroutinefunction(adapter.await_human)
    assert hasattr(adapter, "await_human_sync") is HAS_SYNC[name]
    if HAS_SYNC[name]:
        assert not inspect.iscoroutinefunction(adapter.await_human_sync)
        assert adapter.await_human_sync.__name__ == "await_human_sync"
        assert adapter.await_human_sync.__wrapped__ is adapter.await_human
    assert not hasattr(adapter, "await_human_async")


@pytest.mark.parametrize("name", ADAPTERS)
def test_one_receiver_vocabulary(name: str) -> None:
    adapter = _adapter(name)
    assert adapter.ResumeResult is awaithumans.adapters.ResumeResult
    assert adapter.Resumed is awaithumans.adapters.Resumed
    relay = list(inspect.signature(adapter.relay_app).parameters)
    assert relay[1] == "webhook_secret", relay
    resume = list(inspect.signature(adapter.resume_from_event).parameters)
    assert resume[1] == "event", resume
    assert inspect.signature(adapter.resume_from_event).return_annotation == "ResumeResult"


@pytest.mark.parametrize("name", ADAPTERS)
def test_a_missing_framework_names_its_extra(name: str) -> None:
    # A None entry in sys.modules makes the import fail, as without the extra installed.
    code = (
        f"import sys; sys.modules[{FRAMEWORK[name]!r}] = None\n"
        "from awaithumans.core import MissingExtraError\n"
        "try:\n"
        f"    import awaithumans.adapters.{name}\n"
        "except MissingExtraError as exc:\n"
        "    print(exc.code, exc.extra, exc.message, sep='|')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert out == (
        f"EXTRA_NOT_INSTALLED|{name}|awaithumans.adapters.{name} needs {FRAMEWORK[name]}:"
        f' pip install "awaithumans[{name}]"'
    )
