"""Writes ``forms.json``, the forms both SDKs must derive from the same JSON schemas.

Run by hand after a change to the form rules (``awaithumans/core/_forms_schema.py``):

    .venv/bin/python tests/conformance/make_forms.py

The committed JSON is the contract. ``tests/core/test_form_conformance.py`` checks that the
Python rules still give every ``form`` (and that this script would write the same file);
``sdk/typescript/test/forms.test.ts`` checks the TypeScript port gives the same forms from
each ``json_schema`` and, for the ``pydantic`` cases, from the Zod schema written there as
the equivalent of the model below.

A case is ``{"name", "source", "json_schema", "form"}``: ``source`` is ``"pydantic"`` (the
schema a model's ``extract_form`` starts from) or ``"json_schema"`` (written by hand, for
the rules a model never exercises: draft-4 bounds, ``nullable``, ``oneOf``, odd types).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from awaithumans.core._forms import _FormSchemaGenerator, extract_form, form_from_json_schema

FIXTURE = Path(__file__).with_name("forms.json")


class RefundDecision(BaseModel):
    approved: bool = Field(description="Send the money back?")
    notes: str | None = Field(default=None, description="Anything the agent should know")


class Numbers(BaseModel):
    count: int = Field(ge=1, le=10)
    ratio: float = Field(gt=0, lt=1)
    price: float = Field(ge=0, multiple_of=0.01)
    level: int = Field(gt=3)
    below: int = Field(lt=8)
    amount: Decimal = Decimal("1.50")
    spare: int | None = Field(default=None, ge=0)


class Texts(BaseModel):
    name: str = Field(min_length=2, max_length=50)
    essay: str = Field(max_length=1000)
    summary: str = Field(json_schema_extra={"multiline": True})
    code: str = Field(json_schema_extra={"placeholder": "ABC-123"})
    headline: str = Field(title="Headline of the day")
    customerId: str  # a camelCase key, as a JSON client sends it
    short: str = Field(max_length=500, json_schema_extra={"widget": "short_text"})


class Refund(Enum):
    FULL_REFUND = "full"
    PARTIAL_REFUND = "partial"
    NO_REFUND = "none"


class Choices(BaseModel):
    verdict: Literal["approve", "reject"]
    refund: Refund
    sizes: list[Literal["s", "m", "l"]] = Field(min_length=1, max_length=2)
    tags: list[str]
    level: Literal[1, 2, 3] = 2
    maybe: Literal["yes", "no"] | None = None


class Temporal(BaseModel):
    due: dt.date
    at: dt.datetime
    when: dt.time


class Defaults(BaseModel):
    priority: int = 3
    send_email: bool = True
    channel: Literal["email", "sms"] = "email"
    note: str = "n/a"
    labels: list[str] = Field(default_factory=lambda: ["urgent"])


class Address(BaseModel):
    street: str
    city: str


class Fallbacks(BaseModel):
    address: Address
    counts: dict[str, int]
    either: str | int
    pair: tuple[int, int]


def _model_case(name: str, model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(schema_generator=_FormSchemaGenerator)
    form = extract_form(model).model_dump(mode="json", exclude_none=True)
    return {"name": name, "source": "pydantic", "json_schema": schema, "form": form}


#: Hand-written schemas, for rules no pydantic model exercises.
_SCHEMAS: dict[str, dict[str, Any]] = {
    "draft4_exclusive_flags": {
        "type": "object",
        "properties": {
            "score": {"type": "number", "minimum": 0, "exclusiveMinimum": True},
            "whole": {"type": "integer", "maximum": 9, "exclusiveMaximum": True},
            "both": {"type": "number", "minimum": 5, "exclusiveMinimum": 2},
            "int_both": {"type": "integer", "minimum": 1, "exclusiveMinimum": 4.5},
            "not_bounds": {"type": "number", "minimum": True, "maximum": "9"},
        },
    },
    "nullable_spellings": {
        "type": "object",
        "required": ["a", "b", "c", "d", "e"],
        "properties": {
            "a": {"type": ["string", "null"], "maxLength": 300},
            "b": {"type": "integer", "nullable": True},
            "c": {"oneOf": [{"type": "boolean"}, {"type": "null"}]},
            "d": {"enum": ["x", "y", None]},
            "e": {"type": ["null"]},
        },
    },
    "refs_and_wrappers": {
        "title": "Approve the refund?",
        "description": "Written for people, so kept as it is.",
        "$ref": "#/$defs/Root",
        "$defs": {
            "Root": {
                "type": "object",
                "required": ["kind", "alias", "wrapped", "dangling"],
                "properties": {
                    "kind": {"$ref": "#/$defs/Kind", "title": "Kind of thing"},
                    "alias": {"$ref": "#/$defs/Alias"},
                    "wrapped": {"allOf": [{"$ref": "#/$defs/Kind"}], "description": "Wrapped"},
                    "dangling": {"$ref": "#/$defs/Missing"},
                    "escaped": {"$ref": "#/$defs/a~1b"},
                },
            },
            "Kind": {"type": "string", "enum": ["a", "b"], "x-enum-varnames": ["ALPHA", "BETA"]},
            "Alias": {"$ref": "#/$defs/Kind"},
            "a~b": {"type": "boolean"},
            "a/b": {"type": "integer", "minimum": 2},
        },
    },
    "odd_values": {
        "type": "object",
        "properties": {
            "anything": True,
            "typeless": {"description": "no type"},
            "null_only": {"type": "null"},
            "never": {"anyOf": []},
            "strange": {"type": "color"},
            "flags": {"enum": [True, False, 1.5, 0]},
            "objects": {"enum": [{"a": 1}]},
            "empty_enum": {"enum": [None]},
            "bad_enum": {"enum": "abc"},
            "names_mismatch": {"enum": ["p", "q"], "x-enum-varnames": ["P_ONE"]},
            "constant": {"const": "fixed"},
            "free_list": {"type": "array"},
            "tuple": {"type": "array", "prefixItems": [{"type": "string"}]},
            "map": {"type": "object", "additionalProperties": {"type": "string"}},
            "untitled_nested": {"type": "object", "properties": {"x": {"type": "string"}}},
            "multi_enum": {
                "type": "array",
                "items": {"anyOf": [{"enum": ["r", "g"]}, {"type": "null"}]},
                "minItems": 1.5,
                "maxItems": 3,
            },
            "multi_bad": {"type": "array", "items": {"enum": [[1], [2]]}},
        },
    },
    "defaults_and_widgets": {
        "type": "object",
        "properties": {
            "decimal_default": {
                "anyOf": [{"type": "number"}, {"type": "string", "pattern": "^[0-9.]+$"}],
                "default": "2.50",
            },
            "bad_decimal_default": {"type": "number", "default": "lots"},
            "whole_default": {"type": "integer", "default": "4"},
            "object_default": {"type": "object", "default": {"k": [1, 2]}},
            "null_default": {"type": "string", "default": None},
            "long_by_widget": {"type": "string", "maxLength": 20, "widget": "long_text"},
            "short_despite_length": {"type": "string", "maxLength": 900, "widget": "short_text"},
            "other_widget": {"type": "string", "widget": "slider"},
            "multiline_on_ref": {"$ref": "#/$defs/Text", "multiline": True},
            "placeholder_from_target": {"$ref": "#/$defs/Text"},
            "number_step": {"type": "number", "multipleOf": 0.25, "maximum": 10},
            "two_numbers": {"anyOf": [{"type": "number"}, {"type": "integer"}]},
            "str_or_enum": {"anyOf": [{"type": "number"}, {"type": "string", "enum": ["x"]}]},
            "date_or_null": {"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]},
            "time": {"type": "string", "format": "time", "title": "Time"},
            "email": {"type": "string", "format": "email", "minLength": 3},
            "snake_case_title": {"type": "string", "title": "Snake Case Title"},
        },
        "required": ["time", "snake_case_title", "not_a_property"],
        "$defs": {"Text": {"type": "string", "placeholder": "type here", "title": "Text"}},
    },
    "no_properties": {"type": "object", "title": "EmptyAnswer"},
    # Whole numbers written as floats: json.loads keeps them floats, so a choice 1.0 is
    # labelled "1.0" and a length of 2.0 is no length (the TypeScript port reads the JSON
    # text to see them; a parsed JavaScript object cannot tell 1.0 from 1).
    "whole_floats": {
        "type": "object",
        "properties": {
            "number_default": {"type": "number", "default": 1.0},
            "integer_default": {"type": "integer", "default": 1.0},
            "integer_text_default": {"type": "integer", "default": "4.0"},
            "number_text_default": {"type": "number", "default": "2.0"},
            "bounds": {"type": "number", "minimum": 1.0, "maximum": 5.0, "multipleOf": 1.0},
            "int_bounds": {"type": "integer", "exclusiveMinimum": 1.0, "exclusiveMaximum": 5.0},
            "const_float": {"const": 1.0},
            "const_int": {"const": 1},
            "enum_mixed": {"enum": [1.0, 2.5, 3, 1e16, 1e-7], "default": 1.0},
            "enum_named": {"type": "number", "enum": [1.0, 2.0], "x-enum-varnames": ["ONE", 2.0]},
            "multi_floats": {"type": "array", "items": {"enum": [1.0, 2]}, "minItems": 1.0},
            "float_lengths": {"type": ["string", "null"], "minLength": 2.0, "maxLength": 10},
            "float_type": {"type": 1.0},
        },
    },
}


def build_cases() -> list[dict[str, Any]]:
    """Every case, in the fixture's order."""
    cases = [
        _model_case("refund_decision", RefundDecision),
        _model_case("numbers", Numbers),
        _model_case("texts", Texts),
        _model_case("choices", Choices),
        _model_case("temporal", Temporal),
        _model_case("defaults", Defaults),
        _model_case("fallbacks", Fallbacks),
    ]
    for name, schema in _SCHEMAS.items():
        form = form_from_json_schema(schema).model_dump(mode="json", exclude_none=True)
        cases.append({"name": name, "source": "json_schema", "json_schema": schema, "form": form})
    return cases


def render(cases: list[dict[str, Any]]) -> str:
    return json.dumps(cases, indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    FIXTURE.write_text(render(build_cases()), encoding="utf-8")
    print(f"wrote {FIXTURE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
