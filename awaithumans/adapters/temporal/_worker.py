"""Worker-side wiring: the interceptor that turns typed errors into workflow failures, and
a plugin that registers everything in one go.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from temporalio.plugin import SimplePlugin
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowRunner,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from awaithumans.adapters.temporal._activities import activities
from awaithumans.adapters.temporal._workflow import to_application_error
from awaithumans.core._errors import AwaitHumansError

# Modules the sandbox must share with the worker: pydantic models and our error classes
# must be the same objects inside and outside, or isinstance checks and conversion break.
PASSTHROUGH_MODULES = ("awaithumans", "pydantic", "pydantic_core", "httpx")


def _as_awaithumans_error(err: BaseException) -> AwaitHumansError | None:
    # Matched by name as well as by class: a workflow file that imported awaithumans inside
    # the sandbox (without passthrough) has its own copy of the error classes.
    if isinstance(err, AwaitHumansError):
        return err
    names = {(c.__module__, c.__qualname__) for c in type(err).__mro__}
    if ("awaithumans.core._errors", "AwaitHumansError") in names:
        return err  # type: ignore[return-value]
    return None


class _FailWorkflowOnHumanErrors(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        try:
            return await super().execute_workflow(input)
        except Exception as exc:
            err = _as_awaithumans_error(exc)
            if err is None:
                raise
            # Without this an uncaught TaskTimeoutError would fail the workflow *task*, which
            # Temporal retries forever; an ApplicationError fails the workflow itself.
            raise to_application_error(err) from exc


class AwaitHumansInterceptor(Interceptor):
    """Fails the workflow with ``ApplicationError(type=<code>, non_retryable=True)`` when an
    awaithumans error (timeout, cancellation, ...) escapes the workflow's run method.
    """

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _FailWorkflowOnHumanErrors


def _with_passthrough(runner: WorkflowRunner | None) -> WorkflowRunner:
    if runner is None:
        raise ValueError("AwaitHumansPlugin needs a workflow runner")
    if isinstance(runner, SandboxedWorkflowRunner):
        return dataclasses.replace(
            runner,
            restrictions=runner.restrictions.with_passthrough_modules(*PASSTHROUGH_MODULES),
        )
    return runner


class AwaitHumansPlugin(SimplePlugin):
    """Registers the adapter's activities, its interceptor and sandbox passthrough.

    ``Worker(client, task_queue=..., workflows=[...], plugins=[AwaitHumansPlugin()])``
    """

    def __init__(self) -> None:
        super().__init__(
            "awaithumans.AwaitHumansPlugin",
            interceptors=[AwaitHumansInterceptor()],
            activities=lambda existing: [*(existing or []), *activities()],
            workflow_runner=_with_passthrough,
        )
