"""The error tree: one root, two branches with what they carry, one enum of codes."""

from __future__ import annotations

import ast
import inspect
import pickle
import re
from pathlib import Path

import httpx
import pytest

import awaithumans
from awaithumans import (
    ApiError,
    AuthenticationError,
    AwaitHumansError,
    ErrorCode,
    PermissionDeniedError,
    TaskClient,
    TaskError,
    TaskNotFoundError,
    TaskTimeoutError,
)
from awaithumans.testing import ServerProcess

PACKAGE = Path(awaithumans.__file__).parent


def _public_errors() -> list[type[BaseException]]:
    return [
        obj
        for name in awaithumans.__all__
        if inspect.isclass(obj := getattr(awaithumans, name)) and issubclass(obj, BaseException)
    ]


def test_every_public_error_is_an_awaithumans_error_with_a_known_code() -> None:
    errors = _public_errors()
    assert len(errors) >= 15
    for cls in errors:
        assert issubclass(cls, AwaitHumansError), cls
        assert cls.default_code in set(ErrorCode), cls


def test_the_branches_carry_status_and_task_id() -> None:
    missing = TaskNotFoundError("tsk_1")
    assert isinstance(missing, ApiError)
    assert isinstance(missing, TaskError)
    assert (missing.status_code, missing.task_id, missing.code) == (404, "tsk_1", "TASK_NOT_FOUND")
    timeout = TaskTimeoutError("t", 60, task_id="tsk_2")
    assert isinstance(timeout, TaskError)
    assert not isinstance(timeout, ApiError)
    assert timeout.task_id == "tsk_2"
    denied = PermissionDeniedError("no", status_code=403)
    assert isinstance(denied, AuthenticationError)  # what 403s raised before 0.2
    copy = pickle.loads(pickle.dumps(missing))
    assert (copy.status_code, copy.task_id) == (404, "tsk_1")


def test_the_tree_in_the_docstring_names_every_error() -> None:
    doc = inspect.getmodule(AwaitHumansError).__doc__ or ""
    drawn = set(re.findall(r"[─└├]── (\w+)", doc)) | {"AwaitHumansError"}
    defined = {cls.__name__ for cls in _public_errors()}
    assert defined <= drawn, defined - drawn


def test_the_server_sends_only_codes_of_the_enum() -> None:
    # Every "CODE" literal the server hands to an error constructor is an ErrorCode member
    # (mypy enforces the constructor's type; this catches codes built elsewhere).
    known = {c.value for c in ErrorCode}
    found: set[str] = set()
    for path in (PACKAGE / "server").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            named = isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            if named and node.value.id == "ErrorCode":  # type: ignore[attr-defined]
                found.add(node.attr)  # type: ignore[attr-defined]
    assert found, "the server names its codes through ErrorCode"
    assert found <= known, found - known


async def test_a_403_says_what_is_missing(sqlite_server: ServerProcess) -> None:
    async with httpx.AsyncClient(
        base_url=sqlite_server.url,
        headers={"Authorization": f"Bearer {sqlite_server.admin_token}"},
    ) as admin:
        made = await admin.post(
            "/api/admin/users", json={"email": "ann@acme.com", "display_name": "Ann"}
        )
        assert made.status_code == 201, made.text
        created = await admin.post(
            "/api/tasks",
            json={
                "task": "Approve?",
                "payload": {},
                "payload_schema": {"type": "object"},
                "response_schema": {"type": "object"},
                "timeout_seconds": 600,
                "idempotency_key": "errors-403",
                "assign_to": {"email": "ann@acme.com"},
            },
        )
        task_id = created.json()["id"]
        key = (await admin.post("/api/admin/agent-keys", json={"name": "bot"})).json()["key"]
    async with TaskClient(sqlite_server.url, key) as agent:
        with pytest.raises(PermissionDeniedError) as refused:
            await agent.complete_task(task_id, {})
    err = refused.value
    assert (err.status_code, err.code) == (403, "FORBIDDEN")
    assert "Agent keys" in err.message
    assert err.hint is not None
    assert "AWAITHUMANS_API_KEY" not in err.hint
    async with TaskClient(sqlite_server.url, "ah_not_a_key") as stranger:
        with pytest.raises(AuthenticationError) as unknown:
            await stranger.get_task(task_id)
    assert not isinstance(unknown.value, PermissionDeniedError)
    assert unknown.value.status_code == 401
    assert "AWAITHUMANS_API_KEY" in (unknown.value.hint or "")
