"""Form definitions and the one set of rules that maps a JSON schema onto them.

A form definition is what every channel renders: the web dashboard, the Slack modal and the
email all read the same list of fields. The SDK derives it from the response model
(:func:`awaithumans.core._forms.extract_form`), the server from a raw JSON schema when a client
sends none; both go through :func:`form_from_json_schema`, so the two can never disagree.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

FORM_VERSION = 1

# Extension keywords. A generated schema carries enum member names (the standard schema only
# has values) under the key openapi-generator already uses, so non-Python clients can send
# them too; the fallback key marks a field pydantic could not describe at all.
ENUM_NAMES_KEY = "x-enum-varnames"
FALLBACK_KEY = "x-awaithumans-fallback"

# Past this many characters a single-line input becomes unusable, so switch to a text area.
LONG_TEXT_THRESHOLD = 200

# Bounds how far $ref chains and nested unions are followed; real schemas need two or three.
_MAX_HOPS = 16


class FieldKind(StrEnum):
    """The widget a channel renders for a field."""

    SWITCH = "switch"
    SINGLE_SELECT = "single_select"
    MULTI_SELECT = "multi_select"
    SHORT_TEXT = "short_text"
    LONG_TEXT = "long_text"
    NUMBER = "number"
    DATE = "date"
    DATETIME = "datetime"
    TIME = "time"
    JSON = "json"


class FormOption(BaseModel):
    """One choice of a select: the JSON value submitted and the text shown."""

    value: str | int | float | bool
    label: str


class FormField(BaseModel):
    """One input of a form. Unset attributes are ``None`` and vanish with ``exclude_none``.

    Attributes:
        name: Key of the value in the submitted response (the field's alias, if it has one).
        kind: Widget to render.
        label: Text shown next to the input.
        hint: Help text under the input (the field's description).
        required: Whether the person must fill it in.
        default: Pre-filled JSON value.
        options: Choices of a select.
        min: Lower bound of a number (see ``min_exclusive``).
        max: Upper bound of a number (see ``max_exclusive``).
        min_exclusive: The lower bound itself is not allowed (only for non-integers).
        max_exclusive: The upper bound itself is not allowed (only for non-integers).
        integer: Whether a number must be whole.
        step: The number must be a multiple of this.
        min_length: Fewest characters of a text, or fewest picks of a multi-select.
        max_length: Most characters of a text, or most picks of a multi-select.
        multiline: Set on long text, for channels that only look at this flag.
        placeholder: Greyed-out example text inside an empty input.
        fallback_reason: Why the field is rendered as a raw JSON editor.
    """

    name: str
    kind: FieldKind
    label: str
    hint: str | None = None
    required: bool
    default: Any | None = None
    options: list[FormOption] | None = None
    min: int | float | None = None
    max: int | float | None = None
    min_exclusive: bool | None = None
    max_exclusive: bool | None = None
    integer: bool | None = None
    step: int | float | None = None
    min_length: int | None = None
    max_length: int | None = None
    multiline: bool | None = None
    placeholder: str | None = None
    fallback_reason: str | None = None


class FormDefinition(BaseModel):
    """Everything a channel needs to render the response form of a task."""

    version: int = FORM_VERSION
    title: str | None = None
    description: str | None = None
    fields: list[FormField]


def form_from_json_schema(schema: Mapping[str, Any]) -> FormDefinition:
    """Build a form definition from an object JSON schema.

    Accepts what ``Model.model_json_schema()`` emits (``$defs``/``$ref``, ``anyOf`` with
    ``null`` for optionals, ``format``, ``enum``, ``const``, length and number bounds) as well
    as hand-written schemas. Never raises for a field it cannot render: such a field becomes a
    ``json`` field with a ``fallback_reason``.

    Args:
        schema: JSON schema of the response; its top-level ``properties`` become the fields.

    Returns:
        The form definition, one field per property, in schema order.
    """
    root = _deref(schema, schema)
    properties = root.get("properties")
    required = root.get("required")
    required_names = set(required) if isinstance(required, list) else set()
    fields = []
    if isinstance(properties, Mapping):
        for name, prop in properties.items():
            # A boolean subschema (``"x": true``) says nothing about the type: JSON fallback.
            body = prop if isinstance(prop, Mapping) else {}
            fields.append(_field(str(name), body, name in required_names, schema))
    title = root.get("title")
    description = root.get("description")
    return FormDefinition(
        title=_form_title(title) if isinstance(title, str) else None,
        description=description if isinstance(description, str) else None,
        fields=fields,
    )


def humanize(name: str) -> str:
    """Turn an identifier into a label: ``"customer_id"`` and ``"customerId"`` -> ``"Customer id"``.

    Args:
        name: A field, enum member or class name.

    Returns:
        Lower-case words with the first letter capitalised.
    """
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", name)
    words = re.split(r"[\s_\-]+", spaced.strip(" _-"))
    text = " ".join(word.lower() for word in words if word)
    return text[:1].upper() + text[1:] if text else name


def _form_title(title: str) -> str:
    # An identifier is the class name pydantic fills in; anything else was written for people.
    return humanize(title) if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", title) else title


def _field(name: str, prop: Mapping[str, Any], listed: bool, root: Mapping[str, Any]) -> FormField:
    # Field-level facts (title, description, default) live on the property itself; a $ref
    # target's title and description describe the enum or model class, not this field.
    body, nullable = _unwrap(prop, root)
    attrs = _classify(body, root)

    def extra(key: str) -> Any:
        return prop.get(key, body.get(key))

    widget = extra("widget")
    kind = attrs["kind"]
    if kind in _TEXT_KINDS:
        long = (attrs.get("max_length") or 0) > LONG_TEXT_THRESHOLD or extra("multiline") is True
        kind = FieldKind.LONG_TEXT if long else FieldKind.SHORT_TEXT
        if widget in _TEXT_KINDS:  # an explicit widget beats the length heuristic
            kind = FieldKind(widget)
        attrs["kind"] = kind
        attrs["multiline"] = True if kind is FieldKind.LONG_TEXT else None

    placeholder = extra("placeholder")
    title = prop.get("title")
    description = prop.get("description")
    return FormField(
        name=name,
        label=title if isinstance(title, str) and title != _auto_title(name) else humanize(name),
        hint=description if isinstance(description, str) else None,
        # Optional[X] means "may be left empty", even when pydantic lists it as required.
        required=listed and not nullable,
        default=_default(prop, attrs),
        placeholder=placeholder if isinstance(placeholder, str) else None,
        **attrs,
    )


_TEXT_KINDS = frozenset({FieldKind.SHORT_TEXT, FieldKind.LONG_TEXT})
_TEMPORAL_FORMATS = {
    "date": FieldKind.DATE,
    "date-time": FieldKind.DATETIME,
    "time": FieldKind.TIME,
}


def _auto_title(name: str) -> str:
    # The title pydantic invents for an untitled field; treat it as "no title" so a model and
    # its JSON schema produce the same label.
    return name.title().replace("_", " ").strip()


def _classify(body: Mapping[str, Any], root: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``kind`` plus the kind-specific FormField attributes for a resolved schema."""
    if FALLBACK_KEY in body:
        return _fallback(str(body[FALLBACK_KEY]))
    if "const" in body or "enum" in body:
        return _choices(body, FieldKind.SINGLE_SELECT)
    kind = body.get("type")
    if kind == "boolean":
        return {"kind": FieldKind.SWITCH}
    if kind in ("integer", "number"):
        return _number(body, integer=kind == "integer")
    if kind == "string":
        temporal = _TEMPORAL_FORMATS.get(str(body.get("format")))
        if temporal is not None:
            return {"kind": temporal}
        return {
            "kind": FieldKind.SHORT_TEXT,  # _field picks short or long once it sees the extras
            "min_length": _count(body.get("minLength")),
            "max_length": _count(body.get("maxLength")),
        }
    if kind == "array":
        return _array(body, root)
    if kind == "object":
        title = body.get("title")
        if isinstance(title, str) and isinstance(body.get("properties"), Mapping):
            return _fallback(f"nested model {title} has no native widget; edit it as JSON")
        return _fallback("mappings have no native widget; edit them as JSON")
    if body.get("anyOf") == [] or kind == "null":
        return _fallback("the field only accepts null; edit it as JSON")
    if "anyOf" in body or isinstance(kind, list):
        return _fallback("a union of different types has no native widget; edit it as JSON")
    if kind is None:
        return _fallback("the schema gives no type; edit the value as JSON")
    return _fallback(f"type {kind!r} has no native widget; edit it as JSON")


def _fallback(reason: str) -> dict[str, Any]:
    return {"kind": FieldKind.JSON, "fallback_reason": reason}


def _choices(body: Mapping[str, Any], kind: FieldKind) -> dict[str, Any]:
    values = [body["const"]] if "const" in body else body.get("enum")
    if not isinstance(values, list):
        return _fallback("the enum lists no choices; edit the value as JSON")
    values = [value for value in values if value is not None]  # null means "optional"
    if not values or not all(isinstance(value, str | int | float) for value in values):
        return _fallback("choices that are not plain values have no native widget")
    names = body.get(ENUM_NAMES_KEY)
    if isinstance(names, list) and len(names) == len(values):
        labels = [humanize(str(member)) for member in names]
    else:  # a Literal, or an enum whose member names the sender did not include
        labels = [str(value) for value in values]
    options = [FormOption(value=v, label=label) for v, label in zip(values, labels, strict=True)]
    return {"kind": kind, "options": options}


def _array(body: Mapping[str, Any], root: Mapping[str, Any]) -> dict[str, Any]:
    if "prefixItems" in body:
        return _fallback("fixed-length tuples have no native widget; edit them as JSON")
    items = body.get("items")
    if isinstance(items, Mapping):
        item, _ = _unwrap(items, root)
        if "const" in item or "enum" in item:
            attrs = _choices(item, FieldKind.MULTI_SELECT)
            if attrs["kind"] is FieldKind.MULTI_SELECT:
                attrs["min_length"] = _count(body.get("minItems"))
                attrs["max_length"] = _count(body.get("maxItems"))
            return attrs
    return _fallback("lists of free-form values have no native widget; edit them as JSON")


def _number(body: Mapping[str, Any], *, integer: bool) -> dict[str, Any]:
    attrs: dict[str, Any] = {"kind": FieldKind.NUMBER, "integer": integer}
    for side, inclusive_key, exclusive_key in (
        ("min", "minimum", "exclusiveMinimum"),
        ("max", "maximum", "exclusiveMaximum"),
    ):
        bound = _real(body.get(inclusive_key))
        exclusive = body.get(exclusive_key)
        if exclusive is True:  # draft 4 spelling: a flag on the inclusive keyword
            exclusive = bound
            bound = None
        strict = _real(exclusive)
        if strict is not None:
            if integer:
                # A whole number above 3 is at least 4: keep the bound inclusive for inputs.
                strict_inclusive = (
                    math.floor(strict) + 1 if side == "min" else math.ceil(strict) - 1
                )
                bound = (
                    strict_inclusive if bound is None else _tighter(side, bound, strict_inclusive)
                )
            elif bound is None or _tighter(side, bound, strict) == strict:
                bound = strict
                attrs[f"{side}_exclusive"] = True
        attrs[side] = bound
    attrs["step"] = _real(body.get("multipleOf"))
    return attrs


def _tighter(side: str, a: float, b: float) -> float:
    return max(a, b) if side == "min" else min(a, b)


def _real(value: Any) -> int | float | None:
    # bool is an int subclass; a stray true/false is not a bound.
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return value
    return None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _default(prop: Mapping[str, Any], attrs: Mapping[str, Any]) -> Any:
    if "default" not in prop:
        return None
    value = prop["default"]
    if attrs["kind"] is FieldKind.NUMBER and isinstance(value, str):
        # pydantic writes Decimal defaults as strings; a number input wants a number.
        try:
            number = float(value)
        except ValueError:
            return None
        if not math.isfinite(number):
            return None
        return int(number) if attrs.get("integer") and number.is_integer() else number
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return None  # the form must stay JSON; a pre-fill is not worth breaking that
    return value


def _unwrap(node: Mapping[str, Any], root: Mapping[str, Any]) -> tuple[Mapping[str, Any], bool]:
    """Follow ``$ref`` and strip ``null`` from unions; return (schema, whether null is allowed)."""
    nullable = False
    for _ in range(_MAX_HOPS):
        node = _deref(node, root)
        branches = node.get("anyOf", node.get("oneOf"))
        if isinstance(branches, list) and "type" not in node:
            live = [b for b in branches if isinstance(b, Mapping) and b.get("type") != "null"]
            nullable = nullable or len(live) < len(branches)
            picked = live[0] if len(live) == 1 else _decimal(live)
            if picked is None:
                return {"anyOf": live}, nullable  # a real union: left to the JSON fallback
            node = picked
            continue
        all_of = node.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], Mapping):
            node = all_of[0]  # older pydantic wraps a $ref with siblings this way
            continue
        break
    kind = node.get("type")
    if isinstance(kind, list):  # {"type": ["string", "null"]}
        rest = [k for k in kind if k != "null"]
        nullable = nullable or len(rest) < len(kind)
        node = {**node, "type": rest[0] if len(rest) == 1 else rest}
    enum = node.get("enum")
    if (isinstance(enum, list) and None in enum) or node.get("nullable") is True:
        nullable = True  # Literal[..., None], or the OpenAPI 3.0 spelling of Optional
    return node, nullable


def _decimal(branches: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    # pydantic describes Decimal as "a number, or a string holding one"; show a number input.
    if len(branches) != 2:
        return None
    numbers = [b for b in branches if b.get("type") == "number"]
    strings = [
        b
        for b in branches
        if b.get("type") == "string" and not {"enum", "const", "format"} & b.keys()
    ]
    return numbers[0] if len(numbers) == 1 and len(strings) == 1 else None


def _deref(node: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow local ``$ref`` pointers (``#/$defs/Name``); leave anything unresolvable as is."""
    for _ in range(_MAX_HOPS):
        ref = node.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#"):
            return node
        target: Any = root
        for part in ref[1:].split("/")[1:]:
            part = part.replace("~1", "/").replace("~0", "~")
            target = target.get(part) if isinstance(target, Mapping) else None
        if not isinstance(target, Mapping):
            return node
        node = target
    return node
