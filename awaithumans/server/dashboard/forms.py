"""The task page's answer form: form definition -> HTML widgets, and posted fields -> response.

Pure functions, no server needed. Values travel in *form encoding* (what a browser posts:
input name -> list of strings), so a form re-rendered after a failed submit shows exactly
what the person typed, even text that did not parse:

* :func:`initial_values` turns defaults and ``initial_response`` into form encoding;
* :func:`widgets_for` describes every control for the template;
* :func:`parse_submission` turns posted fields back into the response JSON, with
  per-field errors for input that cannot be read (the caller then checks the result
  against the task's ``response_schema``).

Inputs are named ``f.<field name>`` so no response field can collide with the page's own
fields (``id``, ``csrf_token``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any, Literal

from pydantic import ValidationError

from awaithumans.core._forms import FieldKind, FormDefinition, FormField, form_from_json_schema

PREFIX = "f."
# Single selects with more options than this become a <select> instead of radio buttons.
MAX_RADIOS = 5
# Nesting shown as nested lists before the rest is shown as compact JSON text.
MAX_DEPTH = 6
# Items shown per list/object in a rendered value; the rest is summarised.
MAX_ITEMS = 200

Control = Literal["input", "textarea", "checkbox", "radios", "select", "checkboxes"]
FormValues = Mapping[str, Sequence[str]]

_INPUT_TYPES = {
    FieldKind.SHORT_TEXT: "text",
    FieldKind.NUMBER: "number",
    FieldKind.DATE: "date",
    FieldKind.DATETIME: "datetime-local",
    FieldKind.TIME: "time",
}


def input_name(field_name: str) -> str:
    """The HTML ``name`` of a response field's control."""
    return PREFIX + field_name


def load_form(
    stored: Mapping[str, Any] | None, response_schema: Mapping[str, Any]
) -> FormDefinition:
    """The task's form definition, or one derived from its response schema.

    A stored definition that does not validate (a client may send anything) is replaced by the
    derived one rather than breaking the page.
    """
    if stored is not None:
        try:
            return FormDefinition.model_validate(stored)
        except ValidationError:
            pass
    return form_from_json_schema(response_schema)


# -- widgets ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Choice:
    """One radio button, checkbox or <option>."""

    id: str
    value: str
    label: str
    checked: bool


@dataclass(frozen=True, slots=True)
class Widget:
    """Everything the template needs to render one field."""

    name: str
    input_name: str
    id: str
    kind: FieldKind
    control: Control
    label: str
    required: bool
    hint: str | None = None
    value: str = ""
    input_type: str = "text"
    attrs: tuple[tuple[str, str], ...] = ()
    choices: tuple[Choice, ...] = ()
    error: str | None = None
    mono: bool = False

    @property
    def hint_id(self) -> str:
        return f"{self.id}-hint"

    @property
    def error_id(self) -> str:
        return f"{self.id}-error"

    @property
    def focus_id(self) -> str:
        """The element a link to this field should jump to."""
        return self.choices[0].id if self.control in ("radios", "checkboxes") else self.id

    @property
    def describedby(self) -> str:
        ids = [self.hint_id] if self.hint else []
        if self.error:
            ids.append(self.error_id)
        return " ".join(ids)


def widgets_for(
    form: FormDefinition, values: FormValues, errors: Mapping[str, str] | None = None
) -> list[Widget]:
    """Describe each field's control, filled with ``values`` (form encoding)."""
    errors = errors or {}
    return [
        _widget(f, f"f-{i}", list(values.get(input_name(f.name), ())), errors.get(f.name))
        for i, f in enumerate(form.fields)
    ]


def _widget(f: FormField, wid: str, posted: list[str], error: str | None) -> Widget:
    base: dict[str, Any] = {
        "name": f.name,
        "input_name": input_name(f.name),
        "id": wid,
        "kind": f.kind,
        "label": f.label,
        "required": f.required,
        "hint": f.hint,
        "error": error,
    }
    first = posted[0] if posted else ""
    kind = f.kind
    if kind in (FieldKind.SINGLE_SELECT, FieldKind.MULTI_SELECT) and not f.options:
        kind = FieldKind.JSON  # a select without options cannot be answered otherwise
    if kind is FieldKind.SWITCH:
        if not f.required:
            checked = first == "true"
            return Widget(control="checkbox", value="true", **base, choices=_yes(wid, checked))
        yes_no = (
            Choice(f"{wid}-yes", "true", "Yes", first == "true"),
            Choice(f"{wid}-no", "false", "No", first == "false"),
        )
        return Widget(control="radios", choices=yes_no, **base)
    if kind is FieldKind.SINGLE_SELECT:
        tokens = option_tokens(f)
        choices = [
            Choice(f"{wid}-{j}", token, opt.label, token == first)
            for j, (token, opt) in enumerate(zip(tokens, f.options or (), strict=True))
        ]
        if len(choices) > MAX_RADIOS:
            return Widget(control="select", choices=tuple(choices), **base)
        if not f.required:
            choices.append(Choice(f"{wid}-none", "", "No answer", not first))
        return Widget(control="radios", choices=tuple(choices), **base)
    if kind is FieldKind.MULTI_SELECT:
        picked = set(posted)
        tokens = option_tokens(f)
        choices = [
            Choice(f"{wid}-{j}", token, opt.label, token in picked)
            for j, (token, opt) in enumerate(zip(tokens, f.options or (), strict=True))
        ]
        return Widget(control="checkboxes", choices=tuple(choices), **base)
    if kind is FieldKind.LONG_TEXT:
        return Widget(control="textarea", value=first, attrs=_text_attrs(f), **base)
    if kind is FieldKind.JSON:
        why = f.fallback_reason or "this field has no form control"
        base["hint"] = " ".join(filter(None, [f.hint, f"Enter JSON ({why})."]))
        return Widget(control="textarea", value=first, mono=True, **base)
    attrs: tuple[tuple[str, str], ...] = ()
    if kind is FieldKind.NUMBER:
        attrs = _number_attrs(f)
    elif kind is FieldKind.SHORT_TEXT:
        attrs = _text_attrs(f)
    elif kind is FieldKind.DATETIME:
        base["hint"] = " ".join(filter(None, [f.hint, "Time in UTC."]))
        attrs = (("step", "1"),) if len(first) > 16 else ()
    elif kind is FieldKind.TIME and len(first) > 5:
        attrs = (("step", "1"),)
    return Widget(control="input", input_type=_INPUT_TYPES[kind], value=first, attrs=attrs, **base)


def _yes(wid: str, checked: bool) -> tuple[Choice, ...]:
    return (Choice(wid, "true", "Yes", checked),)


def _text_attrs(f: FormField) -> tuple[tuple[str, str], ...]:
    attrs = []
    if f.min_length is not None:
        attrs.append(("minlength", str(f.min_length)))
    if f.max_length is not None:
        attrs.append(("maxlength", str(f.max_length)))
    if f.placeholder:
        attrs.append(("placeholder", f.placeholder))
    return tuple(attrs)


def _number_attrs(f: FormField) -> tuple[tuple[str, str], ...]:
    attrs = []
    if f.min is not None:
        attrs.append(("min", _number_text(f.min)))
    if f.max is not None:
        attrs.append(("max", _number_text(f.max)))
    step = f.step if f.step is not None else (1 if f.integer else None)
    attrs.append(("step", _number_text(step) if step is not None else "any"))
    if f.placeholder:
        attrs.append(("placeholder", f.placeholder))
    return tuple(attrs)


def _number_text(value: float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def option_tokens(f: FormField) -> list[str]:
    """The posted value of each option: its text, or its index when two texts collide."""
    tokens = [
        v if isinstance(v, str) else json.dumps(v) for v in (o.value for o in f.options or ())
    ]
    if len(set(tokens)) != len(tokens):
        return [f"#{i}" for i in range(len(tokens))]
    return tokens


# -- JSON values -> form encoding ----------------------------------------------------------


def initial_values(
    form: FormDefinition, *responses: Mapping[str, Any] | None
) -> dict[str, list[str]]:
    """Form encoding of the defaults, overlaid by each of ``responses`` in turn (last wins)."""
    merged: dict[str, Any] = {f.name: f.default for f in form.fields if f.default is not None}
    for response in responses:
        merged.update(response or {})
    return form_values(form, merged)


def form_values(form: FormDefinition, response: Mapping[str, Any]) -> dict[str, list[str]]:
    """What a browser would post for ``response``: the inverse of :func:`parse_submission`."""
    out: dict[str, list[str]] = {}
    for f in form.fields:
        if f.name in response and response[f.name] is not None:
            out[input_name(f.name)] = _encode(f, response[f.name])
    return out


def _encode(f: FormField, value: Any) -> list[str]:
    kind = f.kind
    if kind in (FieldKind.SINGLE_SELECT, FieldKind.MULTI_SELECT) and not f.options:
        kind = FieldKind.JSON
    if kind is FieldKind.SWITCH:
        if value is True:
            return ["true"]
        return ["false"] if value is False and f.required else []
    if kind is FieldKind.SINGLE_SELECT:
        return [t for t, o in _pairs(f) if _same(o, value)][:1]
    if kind is FieldKind.MULTI_SELECT:
        items = value if isinstance(value, list) else [value]
        return [t for t, o in _pairs(f) if any(_same(o, v) for v in items)]
    if kind is FieldKind.NUMBER and isinstance(value, int | float) and not isinstance(value, bool):
        return [_number_text(value)]
    if kind is FieldKind.DATETIME and isinstance(value, str):
        return [_datetime_local(value)]
    if kind is FieldKind.TIME and isinstance(value, str):
        return [_time_local(value)]
    if kind is FieldKind.JSON:
        return [json.dumps(value, indent=2, ensure_ascii=False)]
    return [value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)]


def _pairs(f: FormField) -> list[tuple[str, Any]]:
    return list(zip(option_tokens(f), (o.value for o in f.options or ()), strict=True))


def _same(a: Any, b: Any) -> bool:
    # 1 == True in Python; a form must not confuse the option 1 with the option true.
    return bool(a == b) and isinstance(a, bool) == isinstance(b, bool)


def _datetime_local(value: str) -> str:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    parsed = parsed.replace(microsecond=0)
    return parsed.isoformat(timespec="seconds" if parsed.second else "minutes")


def _time_local(value: str) -> str:
    try:
        parsed = time.fromisoformat(value.replace("Z", "+00:00")).replace(
            tzinfo=None, microsecond=0
        )
    except ValueError:
        return value
    return parsed.isoformat(timespec="seconds" if parsed.second else "minutes")


# -- form encoding -> JSON values ----------------------------------------------------------


class _Invalid(Exception):
    """A field whose input cannot become a value; the message is shown at the field."""


_MISSING = object()


def parse_submission(
    form: FormDefinition, submitted: FormValues, *, schema: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Turn posted fields into the response, plus ``{field name: message}`` for bad input.

    An optional field left empty is left out (so the model's default applies), or sent as
    ``null`` when ``schema`` lists it as required (``Optional[X]`` without a default).
    """
    listed = _schema_required(schema) if schema is not None else set()
    response: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for f in form.fields:
        posted = [v for v in submitted.get(input_name(f.name), ()) if isinstance(v, str)]
        try:
            value = _decode(f, posted)
        except _Invalid as exc:
            errors[f.name] = str(exc)
            continue
        if value is not _MISSING:
            response[f.name] = value
        elif f.required:
            errors[f.name] = _required_message(f)
        elif f.name in listed:
            response[f.name] = None
    return response, errors


def _schema_required(schema: Mapping[str, Any]) -> set[str]:
    root: Any = schema
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        for part in ref[2:].split("/"):
            root = root.get(part) if isinstance(root, Mapping) else None
    required = root.get("required") if isinstance(root, Mapping) else None
    return {r for r in required if isinstance(r, str)} if isinstance(required, list) else set()


def _required_message(f: FormField) -> str:
    if f.kind is FieldKind.SWITCH:
        return "Choose Yes or No."
    if f.kind in (FieldKind.SINGLE_SELECT, FieldKind.MULTI_SELECT):
        return "Choose an option."
    return "This field is required."


_STRIPPED = frozenset(
    {FieldKind.SHORT_TEXT, FieldKind.NUMBER, FieldKind.DATE, FieldKind.DATETIME, FieldKind.TIME}
)


def _decode(f: FormField, posted: list[str]) -> Any:
    kind = f.kind
    if kind in (FieldKind.SINGLE_SELECT, FieldKind.MULTI_SELECT) and not f.options:
        kind = FieldKind.JSON
    if kind is FieldKind.SWITCH:
        return _switch(f, posted)
    if kind is FieldKind.MULTI_SELECT:
        return _multi(f, posted)
    text = posted[0] if posted else ""
    if kind in _STRIPPED:
        text = text.strip()
    if not text.strip():
        return _MISSING
    if kind is FieldKind.SINGLE_SELECT:
        for token, value in _pairs(f):
            if token == text:
                return value
        raise _Invalid("Choose one of the listed options.")
    if kind is FieldKind.NUMBER:
        return _number(f, text)
    if kind is FieldKind.DATE:
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError:
            raise _Invalid("Enter a date as YYYY-MM-DD.") from None
    if kind is FieldKind.DATETIME:
        return _datetime(text)
    if kind is FieldKind.TIME:
        try:
            parsed = time.fromisoformat(text)
        except ValueError:
            raise _Invalid("Enter a time as HH:MM.") from None
        return parsed.isoformat()
    if kind is FieldKind.JSON:
        try:
            return json.loads(text, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            raise _Invalid(
                f"This is not valid JSON (line {exc.lineno}, column {exc.colno})."
            ) from None
        except (ValueError, RecursionError):
            raise _Invalid("This is not valid JSON.") from None
    if kind is FieldKind.LONG_TEXT:
        text = text.replace("\r\n", "\n")
    return _text(f, text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _switch(f: FormField, posted: list[str]) -> Any:
    if not f.required:
        return "true" in posted  # an unchecked checkbox posts nothing: that is "no"
    if not posted or not posted[0]:
        return _MISSING
    if posted[0] in ("true", "false"):
        return posted[0] == "true"
    raise _Invalid("Choose Yes or No.")


def _multi(f: FormField, posted: list[str]) -> list[Any]:
    picked = set(posted) - {""}
    pairs = _pairs(f)
    if picked - {t for t, _ in pairs}:
        raise _Invalid("Choose only from the listed options.")
    values = [v for t, v in pairs if t in picked]
    if f.min_length is not None and len(values) < f.min_length:
        raise _Invalid(f"Choose at least {f.min_length}.")
    if f.max_length is not None and len(values) > f.max_length:
        raise _Invalid(f"Choose at most {f.max_length}.")
    return values


_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _number(f: FormField, text: str) -> int | float:
    if not _NUMBER.match(text):
        raise _Invalid("Enter a whole number." if f.integer else "Enter a number.")
    number = float(text)
    if not math.isfinite(number):
        raise _Invalid("Enter a smaller number.")
    value: int | float
    if f.integer:
        if not number.is_integer():
            raise _Invalid("Enter a whole number.")
        value = int(text) if re.fullmatch(r"[+-]?\d+", text) else int(number)
    else:
        value = number
    low, high = f.min, f.max
    if low is not None and (value <= low if f.min_exclusive else value < low):
        shown = _number_text(low)
        raise _Invalid(
            f"Enter more than {shown}." if f.min_exclusive else f"Enter {shown} or more."
        )
    if high is not None and (value >= high if f.max_exclusive else value > high):
        shown = _number_text(high)
        raise _Invalid(
            f"Enter less than {shown}." if f.max_exclusive else f"Enter {shown} or less."
        )
    if f.step:
        ratio = value / f.step
        if abs(ratio - round(ratio)) > 1e-9 * max(1.0, abs(ratio)):
            raise _Invalid(f"Enter a multiple of {_number_text(f.step)}.")
    return value


def _datetime(text: str) -> str:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _Invalid("Enter a date and time.") from None
    # datetime-local inputs carry no zone; the form says they are UTC.
    parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return parsed.isoformat().replace("+00:00", "Z")


def _text(f: FormField, text: str) -> str:
    if f.min_length is not None and len(text) < f.min_length:
        raise _Invalid(f"Use at least {f.min_length} characters.")
    if f.max_length is not None and len(text) > f.max_length:
        raise _Invalid(f"Use at most {f.max_length} characters.")
    return text


def field_errors(
    form: FormDefinition, problems: Sequence[Mapping[str, Any]]
) -> tuple[dict[str, str], list[str]]:
    """Split schema errors (``{"loc": ["response", field, ...], "msg"}``) by form field.

    Returns the first message per field, and the messages that name no field of the form.
    """
    names = {f.name for f in form.fields}
    by_field: dict[str, str] = {}
    general: list[str] = []
    for problem in problems:
        loc = list(problem.get("loc") or ())
        msg = str(problem.get("msg", "is not valid"))
        target = loc[1] if len(loc) > 1 else None
        if target is None:
            # "'x' is a required property" is reported on the object, but is about x.
            found = re.match(r'^"(.+)" is a required property$', msg)
            target = found.group(1) if found else None
        if isinstance(target, str) and target in names:
            by_field.setdefault(target, msg)
        else:
            general.append(msg)
    return by_field, general


# -- showing values ------------------------------------------------------------------------


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
        return Node("text", _number_text(value))
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
        return next((o.label for o in options if _same(o.value, value)), value)
    if f.kind is FieldKind.MULTI_SELECT and isinstance(value, list):
        return [next((o.label for o in options if _same(o.value, v)), v) for v in value]
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
