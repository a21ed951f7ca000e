"""JSON values made readable for people: payloads and answers on pages, in messages and mails.

Pure functions: :func:`display` turns any JSON value into a small tree a template renders;
:func:`answer_items` lists an answer by its form's labels, choices by their option labels.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from awaithumans.core._forms import FieldKind, FormDefinition, FormField
from awaithumans.core._wire import TaskStatus
from awaithumans.server.db.records import TaskRecord
from awaithumans.server.services.form_input import number_text, same_value

# Nesting shown as nested lists before the rest is shown as compact JSON text.
MAX_DEPTH = 6
# Items shown per list/object in a rendered value; the rest is summarised.
MAX_ITEMS = 200


@dataclass(frozen=True, slots=True)
class Node:
    """A JSON value prepared for display: ``map``/``list`` hold children, others text."""

    kind: Literal["map", "list", "text", "none", "code", "more"]
    text: str = ""
    items: list[tuple[str, Node]] = field(default_factory=list)


def display(value: Any, depth: int = 0) -> Node:
    """A readable tree of ``value``; past ``MAX_DEPTH`` levels the rest is compact JSON."""
    if isinstance(value, Mapping | list):
        if depth >= MAX_DEPTH:
            return Node("code", json.dumps(value, ensure_ascii=False, separators=(",", ":")))
        pairs = list(value.items()) if isinstance(value, Mapping) else list(enumerate(value))
        if not pairs:
            return Node("none", "(empty)")
        items = [(str(k), display(v, depth + 1)) for k, v in pairs[:MAX_ITEMS]]
        if len(pairs) > MAX_ITEMS:
            items.append(("…", Node("more", f"{len(pairs) - MAX_ITEMS} more not shown")))
        return Node("map" if isinstance(value, Mapping) else "list", items=items)
    if value is None:
        return Node("none", "—")
    if isinstance(value, bool):
        return Node("text", "Yes" if value else "No")
    if isinstance(value, float):
        return Node("text", number_text(value))
    return Node("text", str(value))


@dataclass(frozen=True, slots=True)
class AnswerItem:
    label: str
    value: Node


def answer_items(form: FormDefinition, response: Mapping[str, Any]) -> list[AnswerItem]:
    """The answer by field label, choices by their option labels; unknown keys by name."""
    items: list[AnswerItem] = []
    for f in form.fields:
        if f.name in response:
            items.append(AnswerItem(f.label, display(_labelled(f, response[f.name]))))
    known = {f.name for f in form.fields}
    items.extend(
        AnswerItem(key, display(value)) for key, value in response.items() if key not in known
    )
    return items


def _labelled(f: FormField, value: Any) -> Any:
    options = f.options or []
    if f.kind is FieldKind.SINGLE_SELECT:
        return next((o.label for o in options if same_value(o.value, value)), value)
    if f.kind is FieldKind.MULTI_SELECT and isinstance(value, list):
        return [next((o.label for o in options if same_value(o.value, v)), v) for v in value]
    if f.kind is FieldKind.DATETIME and isinstance(value, str):
        try:
            at = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        if at.tzinfo is None:
            return at.isoformat(sep=" ", timespec="seconds" if at.second else "minutes")
        at = at.astimezone(UTC)
        return at.strftime("%Y-%m-%d %H:%M:%S UTC" if at.second else "%Y-%m-%d %H:%M UTC")
    return value


def as_text(node: Node, indent: str = "") -> str:
    """A display tree as plain text: one ``key: value`` line per leaf, nested by indent
    (for chat messages and plain-text mail, where no template renders the tree)."""
    if node.kind in ("map", "list"):
        lines = []
        for key, child in node.items:
            label = f"{indent}{key}:" if node.kind == "map" else f"{indent}-"
            if child.kind in ("map", "list"):
                lines.append(label)
                lines.append(as_text(child, indent + "  "))
            else:
                lines.append(f"{label} {child.text}")
        return "\n".join(lines)
    return f"{indent}{node.text}"


def span(seconds: int) -> str:
    """A duration at its largest unit: '3d', '2h', '5m', '40s'."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def time_left(until: datetime, now: datetime | None = None) -> str:
    """'59m left' until ``until``, or 'overdue'."""
    seconds = int((until - (now or datetime.now(UTC))).total_seconds())
    return "overdue" if seconds <= 0 else f"{span(seconds)} left"


_ENDINGS = {
    TaskStatus.COMPLETED: "✅ Completed",
    TaskStatus.TIMED_OUT: "⌛ Timed out: nobody answered in time",
    TaskStatus.CANCELLED: "🚫 Cancelled",
    TaskStatus.VERIFICATION_EXHAUSTED: "⛔ Closed: the answers failed verification",
}


def outcome_line(task: TaskRecord) -> str:
    """How a task ended, in one line for messages and mails: '✅ Completed by Alice via
    slack', '⌛ Timed out: nobody answered in time' (and, for a task created with an
    ``on_timeout`` default, that the default was applied: no person gave that answer)."""
    line = _ENDINGS.get(task.status, f"Closed ({task.status.value})")
    if task.status is TaskStatus.TIMED_OUT and task.on_timeout_enc is not None:
        line += "; the agent's default answer was applied"
    if task.status is TaskStatus.COMPLETED:
        who = task.completed_by_display_name or task.completed_by_email
        if who:
            line += f" by {who}"
        if task.completed_via_channel:
            line += f" via {task.completed_via_channel}"
    return line
