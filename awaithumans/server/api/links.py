"""OpenAPI links between the task operations.

A response that carries a task (its ``id``) links to what a client does next with it: read
it, long-poll it, read its audit trail, answer, claim or cancel it. Tools that read links
follow them without guessing from names: client generators, and schemathesis's stateful
testing, which chains create -> claim -> complete -> poll with the ids the server returned.
"""

from __future__ import annotations

from typing import Any

TASKS = "/api/tasks"
TASK = TASKS + "/{task_id}"

# (link name, path, method, what following it does)
_TASK_OPERATIONS: tuple[tuple[str, str, str, str], ...] = (
    ("GetTask", TASK, "get", "Read the task."),
    ("PollTask", TASK + "/poll", "get", "Long-poll the task until it changes."),
    ("TaskAudit", TASK + "/audit", "get", "Read the task's audit trail."),
    ("CompleteTask", TASK + "/complete", "post", "Answer the task."),
    ("ClaimTask", TASK + "/claim", "post", "Claim the task."),
    ("CancelTask", TASK + "/cancel", "post", "Cancel the task."),
)


def operation_ref(path: str, method: str) -> str:
    """A JSON-pointer reference to an operation of this document (RFC 6901 escaping).

    A reference rather than an ``operationId``: FastAPI derives those from function names,
    which a rename would silently change.
    """
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method


def task_links(id_at: str = "$response.body#/id") -> dict[str, Any]:
    """The links from a response carrying a task, whose id is at the runtime expression
    ``id_at``."""
    return {
        name: {
            "operationRef": operation_ref(path, method),
            "parameters": {"task_id": id_at},
            "description": description,
        }
        for name, path, method, description in _TASK_OPERATIONS
    }


def with_task_links(
    responses: dict[int | str, dict[str, Any]],
    status: int,
    description: str,
    id_at: str = "$response.body#/id",
) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: ``responses`` plus the success ``status`` with links."""
    return {**responses, status: {"description": description, "links": task_links(id_at)}}
