"""A task's form as a Slack modal, and the modal's submitted state back as form values.

Each field becomes one input block (``block_id`` ``f:<name>``, action ``value``):

=============  ==========================================
switch         radio buttons Yes / No
single_select  static_select
multi_select   multi_static_select
short_text     plain_text_input
long_text      plain_text_input, multiline
number         number_input (decimals unless an integer)
date / time    datepicker / timepicker
datetime       datetimepicker (UTC)
=============  ==========================================

A form Slack cannot show whole (a JSON field, a select with over 100 options, more fields
than a modal holds, texts past Slack's limits) is not squeezed into a broken modal: the
message offers the dashboard instead (:func:`unfit_reason`). Submitted state goes back
through the same decoding rules as the dashboard's form (``services.form_input``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from awaithumans.core._forms import FieldKind, FormDefinition, FormField
from awaithumans.server.services.form_input import initial_values, option_tokens

CALLBACK_ID = "awaithumans_answer"
ACTION = "value"
PREFIX = "f:"

# Slack's limits for a modal and its elements.
_MAX_BLOCKS = 100
_MAX_OPTIONS = 100
_MAX_OPTION_TEXT = 75
_MAX_OPTION_VALUE = 150
_MAX_LABEL = 2000
_MAX_HINT = 2000
_MAX_INPUT_LENGTH = 3000
_TITLE = "Your answer"

_SHOWN = frozenset(FieldKind) - {FieldKind.JSON}


def unfit_reason(form: FormDefinition) -> str | None:
    """Why Slack cannot show this form as a modal; None when it can."""
    if not form.fields:
        return None
    if len(form.fields) + 2 > _MAX_BLOCKS:
        return f"{len(form.fields)} fields are more than a Slack modal holds"
    for f in form.fields:
        if f.kind not in _SHOWN:
            return f"the field {f.label!r} needs the dashboard's JSON editor"
        if f.kind in (FieldKind.SINGLE_SELECT, FieldKind.MULTI_SELECT):
            options = f.options or []
            if not options or len(options) > _MAX_OPTIONS:
                return f"the field {f.label!r} has more choices than a Slack menu holds"
            tokens = option_tokens(f)
            if any(len(t) > _MAX_OPTION_VALUE for t in tokens):
                return f"a choice of {f.label!r} is too long for Slack"
    return None


def _text(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": text[:limit] or " ", "emoji": True}


def _option(text: str, value: str) -> dict[str, Any]:
    return {"text": _text(text, _MAX_OPTION_TEXT), "value": value}


def _element(f: FormField, initial: Sequence[str]) -> dict[str, Any]:
    first = initial[0] if initial else None
    if f.kind is FieldKind.SWITCH:
        options = [_option("Yes", "true"), _option("No", "false")]
        element: dict[str, Any] = {"type": "radio_buttons", "options": options}
        chosen = [o for o in options if o["value"] == first]
        if chosen:
            element["initial_option"] = chosen[0]
        return element
    if f.kind in (FieldKind.SINGLE_SELECT, FieldKind.MULTI_SELECT):
        options = [
            _option(o.label, t) for o, t in zip(f.options or [], option_tokens(f), strict=True)
        ]
        multi = f.kind is FieldKind.MULTI_SELECT
        element = {
            "type": "multi_static_select" if multi else "static_select",
            "options": options,
            "placeholder": _text("Choose…", 150),
        }
        chosen = [o for o in options if o["value"] in initial]
        if multi and chosen:
            element["initial_options"] = chosen
        elif chosen:
            element["initial_option"] = chosen[0]
        return element
    if f.kind is FieldKind.NUMBER:
        element = {"type": "number_input", "is_decimal_allowed": not f.integer}
        if f.min is not None:
            element["min_value"] = _number(f.min)
        if f.max is not None:
            element["max_value"] = _number(f.max)
        if first:
            element["initial_value"] = first
        return element
    if f.kind is FieldKind.DATE:
        element = {"type": "datepicker"}
        if first:
            element["initial_date"] = first
        return element
    if f.kind is FieldKind.TIME:
        element = {"type": "timepicker"}
        if first:
            element["initial_time"] = first[:5]
        return element
    if f.kind is FieldKind.DATETIME:
        element = {"type": "datetimepicker"}
        if first:
            try:
                at = datetime.fromisoformat(first).replace(tzinfo=UTC)
                element["initial_date_time"] = int(at.timestamp())
            except ValueError:
                pass
        return element
    element = {
        "type": "plain_text_input",
        "multiline": f.kind is FieldKind.LONG_TEXT or bool(f.multiline),
    }
    if f.max_length is not None:
        element["max_length"] = min(int(f.max_length), _MAX_INPUT_LENGTH)
    if f.min_length:
        element["min_length"] = min(int(f.min_length), _MAX_INPUT_LENGTH)
    if f.placeholder:
        element["placeholder"] = _text(f.placeholder, 150)
    if first:
        element["initial_value"] = first[:_MAX_INPUT_LENGTH]
    return element


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def answer_view(
    task_id: str,
    title: str,
    form: FormDefinition,
    *,
    details: Sequence[dict[str, Any]] = (),
    initial: Mapping[str, Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The modal for answering ``task_id``: its details, then one input per field.

    ``initial`` (the task's ``initial_response``, or a rejected answer to correct) overlays
    the fields' defaults.
    """
    values = initial_values(form, defaults, initial)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{_escape(title)}*"}},
        *details,
    ]
    for f in form.fields:
        block: dict[str, Any] = {
            "type": "input",
            "block_id": PREFIX + f.name,
            "label": _text(f.label, _MAX_LABEL),
            "optional": not f.required,
            "element": {**_element(f, values.get(f.name, [])), "action_id": ACTION},
        }
        if f.hint:
            block["hint"] = _text(f.hint, _MAX_HINT)
        blocks.append(block)
    return {
        "type": "modal",
        "callback_id": CALLBACK_ID,
        "private_metadata": json.dumps({"task_id": task_id}),
        "title": _text(_TITLE, 24),
        "submit": _text("Submit", 24),
        "close": _text("Cancel", 24),
        "blocks": blocks[:_MAX_BLOCKS],
    }


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def submitted_values(state: Mapping[str, Any]) -> dict[str, list[str]]:
    """A modal's ``view.state.values`` as form encoding: field name -> strings."""
    out: dict[str, list[str]] = {}
    for block_id, actions in state.items():
        if not block_id.startswith(PREFIX) or not isinstance(actions, Mapping):
            continue
        element = actions.get(ACTION)
        if isinstance(element, Mapping):
            out[block_id.removeprefix(PREFIX)] = _strings(element)
    return out


def _strings(element: Mapping[str, Any]) -> list[str]:
    kind = element.get("type")
    if kind in ("radio_buttons", "static_select"):
        chosen = element.get("selected_option")
        return [str(chosen["value"])] if isinstance(chosen, Mapping) else []
    if kind in ("multi_static_select", "checkboxes"):
        return [str(o["value"]) for o in element.get("selected_options") or []]
    if kind == "datepicker":
        return [str(element["selected_date"])] if element.get("selected_date") else []
    if kind == "timepicker":
        return [str(element["selected_time"])] if element.get("selected_time") else []
    if kind == "datetimepicker":
        at = element.get("selected_date_time")
        if not isinstance(at, int | float):
            return []
        when = datetime.fromtimestamp(at, UTC).replace(tzinfo=None)
        return [when.isoformat(timespec="minutes")]
    value = element.get("value")
    return [str(value)] if value not in (None, "") else []


def field_errors_for(
    form: FormDefinition, by_field: Mapping[str, str], general: Sequence[str]
) -> dict[str, str]:
    """Errors as a modal shows them: at their input blocks (the general ones at the first)."""
    errors = {PREFIX + name: message[:150] for name, message in by_field.items()}
    if general and form.fields:
        first = PREFIX + form.fields[0].name
        errors[first] = "; ".join([*general, *([errors[first]] if first in errors else [])])[:150]
    return errors
