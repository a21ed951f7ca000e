"""Answers as form encoding, and back: one set of rules for every channel that shows a form.

Form encoding is what a form posts: field name -> list of strings. The dashboard's HTML
form, a Slack modal and an email link all collect answers in it, so they share:

* :func:`initial_values` turns defaults and ``initial_response`` into form encoding;
* :func:`form_values` is the form encoding of a response (the inverse of the next);
* :func:`decode_submission` turns posted values back into the response JSON, with
  per-field errors for input that cannot be read (the answer path then checks the result
  against the task's ``response_schema``);
* :func:`field_errors` places schema errors on the fields they are about.

Pure functions, keyed by the response's field names; a channel that prefixes its input
names (the dashboard does) strips the prefix first.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time
from typing import Any

from pydantic import ValidationError

from awaithumans.core._forms import FieldKind, FormDefinition, FormField, form_from_json_schema

#: What a form posts: field name -> the strings given for it.
FormValues = Mapping[str, Sequence[str]]


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


def number_text(value: float) -> str:
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
            out[f.name] = _encode(f, response[f.name])
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
        return [t for t, o in _pairs(f) if same_value(o, value)][:1]
    if kind is FieldKind.MULTI_SELECT:
        items = value if isinstance(value, list) else [value]
        return [t for t, o in _pairs(f) if any(same_value(o, v) for v in items)]
    if kind is FieldKind.NUMBER and isinstance(value, int | float) and not isinstance(value, bool):
        return [number_text(value)]
    if kind is FieldKind.DATETIME and isinstance(value, str):
        return [_datetime_local(value)]
    if kind is FieldKind.TIME and isinstance(value, str):
        return [_time_local(value)]
    if kind is FieldKind.JSON:
        return [json.dumps(value, indent=2, ensure_ascii=False)]
    return [value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)]


def _pairs(f: FormField) -> list[tuple[str, Any]]:
    return list(zip(option_tokens(f), (o.value for o in f.options or ()), strict=True))


def same_value(a: Any, b: Any) -> bool:
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


def decode_submission(
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
        posted = [v for v in submitted.get(f.name, ()) if isinstance(v, str)]
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
            value = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
        except json.JSONDecodeError as exc:
            raise _Invalid(
                f"This is not valid JSON (line {exc.lineno}, column {exc.colno})."
            ) from None
        except (ValueError, RecursionError):
            raise _Invalid("This is not valid JSON.") from None
        try:
            # An escaped unpaired surrogate ("\ud800") parses, but has no UTF-8: the
            # answer could not be stored.
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise _Invalid("This has an unpaired surrogate (\\ud800 to \\udfff).") from None
        return value
    if kind is FieldKind.LONG_TEXT:
        text = text.replace("\r\n", "\n")
    return _text(f, text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    # 1e999 is valid JSON that Python reads as infinity, which no answer can hold.
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is out of range")
    return number


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
        shown = number_text(low)
        raise _Invalid(
            f"Enter more than {shown}." if f.min_exclusive else f"Enter {shown} or more."
        )
    if high is not None and (value >= high if f.max_exclusive else value > high):
        shown = number_text(high)
        raise _Invalid(
            f"Enter less than {shown}." if f.max_exclusive else f"Enter {shown} or less."
        )
    if f.step:
        ratio = value / f.step
        if abs(ratio - round(ratio)) > 1e-9 * max(1.0, abs(ratio)):
            raise _Invalid(f"Enter a multiple of {number_text(f.step)}.")
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
