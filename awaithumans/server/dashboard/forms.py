"""The task page's answer form: form definition -> HTML widgets, and the posted form back.

The rules for turning answers into form encoding and back are every channel's
(:mod:`awaithumans.server.services.form_input`); this module adds what is HTML's own: the
controls a template renders, and input names prefixed ``f.`` so that no response field can
collide with the page's own fields (``id``, ``csrf_token``). Values travel in form encoding,
so a form re-rendered after a failed submit shows exactly what the person typed, even text
that did not parse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from awaithumans.core._forms import FieldKind, FormDefinition, FormField
from awaithumans.server.services import form_input
from awaithumans.server.services.form_input import FormValues, number_text, option_tokens

PREFIX = "f."
# Single selects with more options than this become a <select> instead of radio buttons.
MAX_RADIOS = 5

Control = Literal["input", "textarea", "checkbox", "radios", "select", "checkboxes"]

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
        attrs.append(("min", number_text(f.min)))
    if f.max is not None:
        attrs.append(("max", number_text(f.max)))
    step = f.step if f.step is not None else (1 if f.integer else None)
    attrs.append(("step", number_text(step) if step is not None else "any"))
    if f.placeholder:
        attrs.append(("placeholder", f.placeholder))
    return tuple(attrs)


# -- posted forms ------------------------------------------------------------------------


def _prefixed(values: Mapping[str, list[str]]) -> dict[str, list[str]]:
    return {input_name(name): posted for name, posted in values.items()}


def initial_values(
    form: FormDefinition, *responses: Mapping[str, Any] | None
) -> dict[str, list[str]]:
    """The page's inputs for the defaults, overlaid by each of ``responses`` (last wins)."""
    return _prefixed(form_input.initial_values(form, *responses))


def form_values(form: FormDefinition, response: Mapping[str, Any]) -> dict[str, list[str]]:
    """What the browser posts for ``response``: the inverse of :func:`parse_submission`."""
    return _prefixed(form_input.form_values(form, response))


def parse_submission(
    form: FormDefinition, posted: FormValues, *, schema: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """The response a posted page form holds, and ``{field name: message}`` for bad input."""
    by_field = {
        name.removeprefix(PREFIX): values
        for name, values in posted.items()
        if name.startswith(PREFIX)
    }
    return form_input.decode_submission(form, by_field, schema=schema)
