"""The Slack messages of a task, as Block Kit: the ask, the claimed broadcast, the ending.

Every message carries the task's title and, unless the payload is redacted, its details;
what changes is the line of state and the buttons. A task that needs several approvals
also carries its progress ("1 of 2 approvals", who approved or rejected), rewritten after
each vote. Texts are cut to Slack's limits here,
so a long payload never turns a post into an ``invalid_blocks`` error.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from awaithumans.core._wire import ApprovalView
from awaithumans.server.db.records import TaskRecord
from awaithumans.server.services.display import as_text, display, outcome_line, time_left
from awaithumans.server.services.nudge_notice import Nudge
from awaithumans.server.services.policy import policy_of

Blocks = list[dict[str, Any]]

# Action ids the inbound routes dispatch on.
CLAIM = "awaithumans_claim"
OPEN_MODAL = "awaithumans_open_modal"
OPEN_DASHBOARD = "awaithumans_open_dashboard"

_HEADER_MAX = 150
_FIELD_MAX = 1900
_FIELDS_MAX = 10
_TEXT_MAX = 2900


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mrkdwn_escape(text: str) -> str:
    # Slack reads <, > and & as control characters in mrkdwn.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def details_blocks(task: TaskRecord, payload: dict[str, Any] | None) -> Blocks:
    """The task's details (its payload, unless redacted) as message blocks."""
    if task.redact_payload or payload is None:
        text = "🔒 Details hidden: the agent marked this task's payload as sensitive."
        return [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    node = display(payload)
    fields = []
    for key, child in node.items[:_FIELDS_MAX] if node.kind == "map" else []:
        value = child.text if child.kind not in ("map", "list") else as_text(child)
        text = f"*{_mrkdwn_escape(key)}*\n{_mrkdwn_escape(value)}"
        fields.append({"type": "mrkdwn", "text": _cut(text, _FIELD_MAX)})
    if not fields:
        return []
    blocks: Blocks = [{"type": "section", "fields": fields}]
    hidden = len(node.items) - _FIELDS_MAX
    if hidden > 0:
        more = f"…and {hidden} more in the dashboard."
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]})
    return blocks


def _head(
    task: TaskRecord, payload: dict[str, Any] | None, approvals: Sequence[ApprovalView] = ()
) -> Blocks:
    title = {"type": "plain_text", "text": _cut(task.task, _HEADER_MAX), "emoji": True}
    line = progress_line(task, approvals)
    progress = [_context(_mrkdwn_escape(line))] if line is not None else []
    return [{"type": "header", "text": title}, *details_blocks(task, payload), *progress]


def progress_line(task: TaskRecord, approvals: Sequence[ApprovalView]) -> str | None:
    """ "1 of 2 approvals · ✓ Bob · ✗ Carol" for a task that needs several; else None."""
    required = policy_of(task).approvals_required
    if required < 2:
        return None
    approved = sum(1 for a in approvals if a.approved)
    voters = [f"{'✓' if a.approved else '✗'} {a.display_name or a.email or a.user_id}"
              for a in approvals]  # fmt: skip
    return " · ".join([f"🗳️ {approved} of {required} approvals", *voters])


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(text, _TEXT_MAX)}]}


def _button(text: str, action_id: str, value: str, *, style: str | None = None,
            url: str | None = None) -> dict[str, Any]:  # fmt: skip
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": text, "emoji": True},
        "action_id": action_id,
        "value": value,
    }
    if style:
        button["style"] = style
    if url:
        button["url"] = url
    return button


def _nudged(blocks: Blocks, text: str, nudge: Nudge | None) -> tuple[str, Blocks]:
    """A reminder or escalation is the ask again, posted afresh (a new message, so it
    notifies as a DM or a mention would; the ending rewrites it with the others), with
    why it came first under the title."""
    if nudge is None:
        return text, blocks
    return f"{nudge.prefix} {text}", [blocks[0], _context(f"🔔 {nudge.headline}"), *blocks[1:]]


def ask_broadcast(
    task: TaskRecord,
    payload: dict[str, Any] | None,
    *,
    now: datetime | None = None,
    nudge: Nudge | None = None,
    approvals: Sequence[ApprovalView] = (),
) -> tuple[str, Blocks]:
    """A channel's message: anyone there may claim the task (the first click wins)."""
    now = now or datetime.now(UTC)
    blocks = [
        *_head(task, payload, approvals),
        _context(f"⏳ {time_left(task.timeout_at, now)} · the first to claim answers it"),
        {
            "type": "actions",
            "block_id": f"task:{task.id}",
            "elements": [_button("Claim this task", CLAIM, task.id, style="primary")],
        },
    ]
    return _nudged(blocks, f"Review needed: {task.task}", nudge)


def ask_direct(
    task: TaskRecord,
    payload: dict[str, Any] | None,
    dashboard_url: str,
    *,
    unfit: str | None = None,
    now: datetime | None = None,
    nudge: Nudge | None = None,
    approvals: Sequence[ApprovalView] = (),
) -> tuple[str, Blocks]:
    """A member's DM: answer in Slack (the modal), or in the dashboard (a signed link).

    ``unfit``: why the form cannot be a modal; then the dashboard is the only way.
    """
    now = now or datetime.now(UTC)
    state = f"⏳ {time_left(task.timeout_at, now)}"
    buttons = [_button("Open in Dashboard", OPEN_DASHBOARD, task.id, url=dashboard_url)]
    if unfit is None:
        buttons.insert(0, _button("Approve in Slack", OPEN_MODAL, task.id, style="primary"))
    else:
        state += f" · answer in the dashboard ({unfit})"
    blocks = [
        *_head(task, payload, approvals),
        _context(state),
        {"type": "actions", "block_id": f"task:{task.id}", "elements": buttons},
    ]
    return _nudged(blocks, f"Review needed: {task.task}", nudge)


def claimed_broadcast(
    task: TaskRecord,
    payload: dict[str, Any] | None,
    claimer: str,
    dashboard_url: str,
    *,
    approvals: Sequence[ApprovalView] = (),
) -> tuple[str, Blocks]:
    """The channel's message once claimed: no more Claim button, a link for the claimer."""
    blocks = [
        *_head(task, payload, approvals),
        _context(f"🙋 Claimed by {claimer}"),
        {
            "type": "actions",
            "block_id": f"task:{task.id}",
            "elements": [
                _button("Answer", OPEN_MODAL, task.id, style="primary"),
                _button("View in dashboard", OPEN_DASHBOARD, task.id, url=dashboard_url),
            ],
        },
    ]
    return f"Claimed by {claimer}: {task.task}", blocks


def closed(
    task: TaskRecord,
    payload: dict[str, Any] | None,
    *,
    approvals: Sequence[ApprovalView] = (),
) -> tuple[str, Blocks]:
    """Any message of the task once it ended: the outcome, no buttons left to press."""
    line = outcome_line(task)
    blocks = [*_head(task, payload, approvals), _context(_mrkdwn_escape(line))]
    return f"{line}: {task.task}", blocks
