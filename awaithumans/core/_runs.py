"""Where the run that waits for a task lives, as the adapters record it in ``task_metadata``.

Each adapter writes one entry (``{"temporal": {...}}``, ``{"langgraph": {...}}``,
``{"prefect": {...}}``) when it creates a task; the receivers that bring the answer back
(the adapters' relays, and the server when it delivers into an engine itself) read it from
the task's webhook. Writer and readers share these classes, so a field cannot be spelled one
way on one side and another way on the other. Plain data: no engine is imported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self
from uuid import UUID

from awaithumans.core._errors import NotOurEventError
from awaithumans.core._wire import TERMINAL_STATUSES


def _text(entry: dict[str, Any], field: str) -> str | None:
    value = entry.get(field)
    return value if isinstance(value, str) and value else None


class _WaitingRun:
    """The way in, shared by the records below: from a task's metadata, from an event."""

    #: The ``task_metadata`` key the record lives under.
    KEY: ClassVar[str]
    #: What the record names, for error messages.
    WHAT: ClassVar[str]

    @classmethod
    def parse(cls, entry: dict[str, Any]) -> Self | None:
        """The record from its metadata entry; None if the entry does not name a run."""
        raise NotImplementedError

    @classmethod
    def from_metadata(cls, metadata: object) -> Self | None:
        """The record in a task's metadata, or None if the task names no such run."""
        entry = metadata.get(cls.KEY) if isinstance(metadata, dict) else None
        return cls.parse(entry) if isinstance(entry, dict) else None

    @classmethod
    def from_event(cls, data: dict[str, Any]) -> tuple[str, Self]:
        """(task id, record) named by a task event's ``data``.

        Raises:
            NotOurEventError: The event names no task, or no run of this engine.
        """
        task_id = data.get("task_id")
        if not isinstance(task_id, str) or not task_id:
            raise NotOurEventError("data.task_id required")
        found = cls.from_metadata(data.get("task_metadata"))
        if found is None:
            raise NotOurEventError(f"data.task_metadata.{cls.KEY} does not name a {cls.WHAT}")
        return task_id, found


@dataclass(frozen=True)
class TemporalWorkflow(_WaitingRun):
    """The workflow execution waiting in ``await_human`` (Temporal adapter)."""

    KEY: ClassVar[str] = "temporal"
    WHAT: ClassVar[str] = "workflow (workflow_id)"

    workflow_id: str
    run_id: str | None = None
    namespace: str | None = None
    task_queue: str | None = None

    @classmethod
    def parse(cls, entry: dict[str, Any]) -> Self | None:
        workflow_id = _text(entry, "workflow_id")
        if workflow_id is None:
            return None
        fields = (_text(entry, f) for f in ("run_id", "namespace", "task_queue"))
        return cls(workflow_id, *fields)

    @property
    def address(self) -> str:
        return self.workflow_id

    def metadata(self) -> dict[str, Any]:
        """The ``task_metadata`` entry that records this run: ``{KEY: {...}}``."""
        fields = {
            "workflow_id": self.workflow_id,
            "run_id": self.run_id,
            "namespace": self.namespace,
            "task_queue": self.task_queue,
        }
        return {self.KEY: {k: v for k, v in fields.items() if v is not None}}


@dataclass(frozen=True)
class LangGraphThread(_WaitingRun):
    """The thread, and the node execution within it, interrupted in ``await_human``."""

    KEY: ClassVar[str] = "langgraph"
    WHAT: ClassVar[str] = "thread (thread_id)"

    thread_id: str
    #: The interrupted node's checkpoint namespace ("" for a node of the root graph).
    checkpoint_ns: str = ""

    @classmethod
    def parse(cls, entry: dict[str, Any]) -> Self | None:
        thread_id = _text(entry, "thread_id")
        if thread_id is None:
            return None
        ns = entry.get("checkpoint_ns")
        return cls(thread_id, ns if isinstance(ns, str) else "")

    @property
    def address(self) -> str:
        return self.thread_id

    def metadata(self) -> dict[str, Any]:
        """The ``task_metadata`` entry that records this run: ``{KEY: {...}}``."""
        return {self.KEY: {"thread_id": self.thread_id, "checkpoint_ns": self.checkpoint_ns}}


@dataclass(frozen=True)
class PrefectPause(_WaitingRun):
    """The flow run, and which of its pauses, waiting in ``await_human``."""

    KEY: ClassVar[str] = "prefect"
    WHAT: ClassVar[str] = "flow run and pause (flow_run_id, pause_key)"

    flow_run_id: str
    pause_key: str

    @classmethod
    def parse(cls, entry: dict[str, Any]) -> Self | None:
        run_id, key = _text(entry, "flow_run_id"), _text(entry, "pause_key")
        if run_id is None or key is None:
            return None
        try:
            UUID(run_id)
        except ValueError:
            return None
        return cls(run_id, key)

    @property
    def address(self) -> str:
        return self.flow_run_id

    @property
    def run_uuid(self) -> UUID:
        return UUID(self.flow_run_id)

    def metadata(self) -> dict[str, Any]:
        """The ``task_metadata`` entry that records this run: ``{KEY: {...}}``."""
        return {self.KEY: {"flow_run_id": self.flow_run_id, "pause_key": self.pause_key}}


WaitingRun = TemporalWorkflow | LangGraphThread | PrefectPause

#: Every record, by the metadata key it lives under.
WAITING_RUNS: dict[str, type[WaitingRun]] = {
    cls.KEY: cls for cls in (TemporalWorkflow, LangGraphThread, PrefectPause)
}


def final_status(data: dict[str, Any]) -> str:
    """The event's task status, which must be a final one to resume a run with.

    Raises:
        NotOurEventError: Not a final status (a receiver only acts on a task's outcome).
    """
    status = data.get("status")
    if not isinstance(status, str) or status not in TERMINAL_STATUSES:
        raise NotOurEventError(f"status {status!r} is not a final outcome")
    return str(status)
