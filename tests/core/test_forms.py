"""Form extraction: Pydantic models and JSON schemas map onto the same form definitions."""

from __future__ import annotations

import datetime as dt
import enum
import json
import warnings
from decimal import Decimal
from typing import Annotated, Any, Literal

import pytest
from annotated_types import Ge, Le, MultipleOf
from pydantic import BaseModel, ConfigDict, Field

from awaithumans.core._forms import (
    FieldKind,
    FormDefinition,
    FormField,
    FormOption,
    extract_form,
    form_from_json_schema,
    humanize,
)


def _field(model: type[BaseModel], name: str) -> FormField:
    return next(f for f in extract_form(model).fields if f.name == name)


def _wire(form: FormDefinition) -> dict[str, Any]:
    return form.model_dump(mode="json", exclude_none=True)


class Reason(enum.Enum):
    """Why a refund was refused."""

    FRAUD_SUSPECTED = "fraud"
    OUT_OF_POLICY = "policy"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Address(BaseModel):
    street: str
    city: str


class Opaque:
    """Not a type pydantic can describe in a JSON schema."""


class RefundDecision(BaseModel):
    """Decide whether to refund the customer."""

    approved: bool
    notes: str | None = None


# --- primitives -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("annotation", "kind"),
    [
        (bool, FieldKind.SWITCH),
        (str, FieldKind.SHORT_TEXT),
        (int, FieldKind.NUMBER),
        (float, FieldKind.NUMBER),
        (Decimal, FieldKind.NUMBER),
        (dt.date, FieldKind.DATE),
        (dt.datetime, FieldKind.DATETIME),
        (dt.time, FieldKind.TIME),
    ],
)
def test_primitive_kinds(annotation: Any, kind: FieldKind) -> None:
    model = type("Answer", (BaseModel,), {"__annotations__": {"value": annotation}})
    field = _field(model, "value")
    assert field.kind is kind
    assert field.required is True
    assert field.fallback_reason is None


def test_int_and_float_carry_the_integer_flag() -> None:
    class Answer(BaseModel):
        count: int
        ratio: float

    assert _field(Answer, "count").integer is True
    assert _field(Answer, "ratio").integer is False


def test_non_number_fields_leave_number_attributes_unset() -> None:
    wire = _wire(extract_form(RefundDecision))["fields"][0]
    assert wire == {"name": "approved", "kind": "switch", "label": "Approved", "required": True}


# --- optional and defaults ----------------------------------------------------------------


def test_optional_takes_inner_kind_and_is_not_required() -> None:
    class Answer(BaseModel):
        when: dt.date | None
        amount: int | None = None

    when = _field(Answer, "when")
    assert (when.kind, when.required) == (FieldKind.DATE, False)
    amount = _field(Answer, "amount")
    assert (amount.kind, amount.required, amount.default) == (FieldKind.NUMBER, False, None)


def test_defaults_are_json_values_and_make_fields_optional() -> None:
    class Answer(BaseModel):
        approved: bool = True
        reason: Reason = Reason.OUT_OF_POLICY
        due: dt.date = dt.date(2024, 5, 1)
        at: dt.datetime = dt.datetime(2024, 5, 1, 9, 30, tzinfo=dt.UTC)
        amount: Decimal = Decimal("12.50")
        count: int = 3

    form = extract_form(Answer)
    assert all(not f.required for f in form.fields)
    defaults = {f.name: f.default for f in form.fields}
    assert defaults == {
        "approved": True,
        "reason": "policy",
        "due": "2024-05-01",
        "at": "2024-05-01T09:30:00Z",
        "amount": 12.5,
        "count": 3,
    }


def _just_a() -> list[Literal["a", "b"]]:
    return ["a"]


def test_default_factory_is_evaluated() -> None:
    class Answer(BaseModel):
        tags: list[Literal["a", "b"]] = Field(default_factory=_just_a)
        note: str = Field(default_factory=lambda: "n/a")

    assert _field(Answer, "tags").default == ["a"]
    assert _field(Answer, "note").default == "n/a"
    assert _field(Answer, "note").required is False


def test_failing_default_factory_only_loses_the_prefill() -> None:
    def broken() -> str:
        raise RuntimeError("boom")

    class Answer(BaseModel):
        note: str = Field(default_factory=broken)

    field = _field(Answer, "note")
    assert (field.kind, field.required, field.default) == (FieldKind.SHORT_TEXT, False, None)


def test_unserialisable_default_is_omitted_without_warning() -> None:
    class Answer(BaseModel):
        model_config = ConfigDict(arbitrary_types_allowed=True)
        thing: Opaque = Opaque()

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        field = _field(Answer, "thing")
    assert field.default is None
    assert field.kind is FieldKind.JSON
    assert field.fallback_reason is not None
    assert "Opaque" in field.fallback_reason


# --- labels and hints ---------------------------------------------------------------------


def test_label_is_title_or_humanised_name_and_hint_is_description() -> None:
    class Answer(BaseModel):
        customer_id: str
        order_ref: str = Field(title="Order reference", description="As printed on the receipt")
        reason: Reason = Field(description="Pick one")

    assert _field(Answer, "customer_id").label == "Customer id"
    assert _field(Answer, "customer_id").hint is None
    order = _field(Answer, "order_ref")
    assert (order.label, order.hint) == ("Order reference", "As printed on the receipt")
    # The enum's own docstring describes the enum, not this field.
    assert _field(Answer, "reason").hint == "Pick one"
    assert _field(Answer, "reason").label == "Reason"


def test_form_title_and_description_come_from_the_model() -> None:
    form = extract_form(RefundDecision)
    assert form.version == 1
    assert form.title == "Refund decision"
    assert form.description == "Decide whether to refund the customer."

    class Titled(BaseModel):
        model_config = ConfigDict(title="Approve the refund?")

    assert extract_form(Titled).title == "Approve the refund?"


def test_alias_is_the_field_name() -> None:
    class Answer(BaseModel):
        customer_id: str = Field(alias="customerId")

    assert extract_form(Answer).fields[0].name == "customerId"
    assert extract_form(Answer).fields[0].label == "Customer id"


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("customer_id", "Customer id"),
        ("customerId", "Customer id"),
        ("FRAUD_SUSPECTED", "Fraud suspected"),
        ("RefundDecision", "Refund decision"),
        ("HTTPStatus", "Http status"),
        ("x", "X"),
    ],
)
def test_humanize(name: str, label: str) -> None:
    assert humanize(name) == label


# --- selects ------------------------------------------------------------------------------


def test_enum_is_single_select_labelled_by_member_name() -> None:
    class Answer(BaseModel):
        reason: Reason
        priority: Priority

    reason = _field(Answer, "reason")
    assert reason.kind is FieldKind.SINGLE_SELECT
    assert reason.options == [
        FormOption(value="fraud", label="Fraud suspected"),
        FormOption(value="policy", label="Out of policy"),
    ]
    priority = _field(Answer, "priority")
    assert priority.options == [
        FormOption(value=1, label="Low"),
        FormOption(value=2, label="High"),
    ]


def test_literal_of_ints_is_single_select_labelled_by_value() -> None:
    class Answer(BaseModel):
        stars: Literal[1, 2, 3]
        only: Literal["yes"]

    stars = _field(Answer, "stars")
    assert stars.kind is FieldKind.SINGLE_SELECT
    assert stars.options is not None
    assert [(o.value, o.label) for o in stars.options] == [(1, "1"), (2, "2"), (3, "3")]
    assert isinstance(stars.options[0].value, int)
    assert _field(Answer, "only").options == [FormOption(value="yes", label="yes")]


def test_literal_with_none_is_optional_select() -> None:
    class Answer(BaseModel):
        pick: Literal["a", "b", None]

    pick = _field(Answer, "pick")
    assert pick.kind is FieldKind.SINGLE_SELECT
    assert pick.required is False
    assert pick.options is not None
    assert [o.value for o in pick.options] == ["a", "b"]


def test_collections_of_choices_are_multi_select() -> None:
    class Answer(BaseModel):
        reasons: list[Reason]
        letters: set[Literal["a", "b"]]
        stars: tuple[Literal[1, 2], ...] = ()
        picks: list[Literal["x", "y", "z"]] = Field(min_length=1, max_length=2)

    reasons = _field(Answer, "reasons")
    assert reasons.kind is FieldKind.MULTI_SELECT
    assert reasons.options is not None
    assert [o.label for o in reasons.options] == ["Fraud suspected", "Out of policy"]
    assert _field(Answer, "letters").kind is FieldKind.MULTI_SELECT
    stars = _field(Answer, "stars")
    assert (stars.kind, stars.default, stars.required) == (FieldKind.MULTI_SELECT, [], False)
    picks = _field(Answer, "picks")
    assert (picks.min_length, picks.max_length) == (1, 2)


# --- numbers ------------------------------------------------------------------------------


def test_decimal_with_bounds() -> None:
    class Answer(BaseModel):
        amount: Annotated[
            Decimal, Ge(Decimal("0.01")), Le(Decimal(500)), MultipleOf(Decimal("0.01"))
        ]

    amount = _field(Answer, "amount")
    assert amount.kind is FieldKind.NUMBER
    assert (amount.min, amount.max, amount.step) == (0.01, 500, 0.01)
    assert amount.integer is False
    assert amount.min_exclusive is None


def test_annotated_types_bounds() -> None:
    class Answer(BaseModel):
        rating: Annotated[int, Field(gt=0, lt=6)]
        ratio: Annotated[float, Field(gt=0, le=1)]
        step: Annotated[int, Field(ge=0, multiple_of=5)]

    rating = _field(Answer, "rating")
    # Strict integer bounds become inclusive ones, which every number input understands.
    assert (rating.min, rating.max, rating.min_exclusive, rating.max_exclusive) == (
        1,
        5,
        None,
        None,
    )
    ratio = _field(Answer, "ratio")
    assert (ratio.min, ratio.min_exclusive, ratio.max, ratio.max_exclusive) == (0, True, 1, None)
    assert (_field(Answer, "step").min, _field(Answer, "step").step) == (0, 5)


# --- text ---------------------------------------------------------------------------------


def test_text_lengths_and_long_text() -> None:
    class Answer(BaseModel):
        code: str = Field(min_length=2, max_length=8)
        essay: str = Field(max_length=2000)
        boundary: str = Field(max_length=200)
        notes: str = Field(json_schema_extra={"widget": "long_text"})
        memo: str | None = Field(None, json_schema_extra={"multiline": True})
        title: str = Field(max_length=500, json_schema_extra={"widget": "short_text"})

    code = _field(Answer, "code")
    assert (code.kind, code.min_length, code.max_length) == (FieldKind.SHORT_TEXT, 2, 8)
    assert code.multiline is None
    essay = _field(Answer, "essay")
    assert (essay.kind, essay.multiline) == (FieldKind.LONG_TEXT, True)
    assert _field(Answer, "boundary").kind is FieldKind.SHORT_TEXT
    assert _field(Answer, "notes").kind is FieldKind.LONG_TEXT
    assert _field(Answer, "memo").kind is FieldKind.LONG_TEXT
    assert _field(Answer, "title").kind is FieldKind.SHORT_TEXT


def test_placeholder_and_invalid_widget() -> None:
    class Answer(BaseModel):
        email: str = Field(json_schema_extra={"placeholder": "jane@example.com"})
        approved: bool = Field(json_schema_extra={"widget": "long_text"})

    assert _field(Answer, "email").placeholder == "jane@example.com"
    # A widget that cannot hold the type is ignored rather than producing a broken form.
    assert _field(Answer, "approved").kind is FieldKind.SWITCH


# --- JSON fallback ------------------------------------------------------------------------


def test_nested_model_falls_back_to_json() -> None:
    class Answer(BaseModel):
        shipping: Address
        billing: Address | None = None

    shipping = _field(Answer, "shipping")
    assert (shipping.kind, shipping.required) == (FieldKind.JSON, True)
    assert shipping.fallback_reason is not None
    assert "Address" in shipping.fallback_reason
    billing = _field(Answer, "billing")
    assert (billing.kind, billing.required) == (FieldKind.JSON, False)


def test_dict_and_other_unrenderable_types_fall_back_to_json() -> None:
    class Answer(BaseModel):
        model_config = ConfigDict(arbitrary_types_allowed=True)
        extra: dict[str, int]
        either: int | str
        tags: list[str]
        pair: tuple[int, str]
        anything: Any
        thing: Opaque

    form = extract_form(Answer)
    assert [f.kind for f in form.fields] == [FieldKind.JSON] * 6
    assert all(f.fallback_reason for f in form.fields)


def test_model_without_fields() -> None:
    class Nothing(BaseModel):
        pass

    form = extract_form(Nothing)
    assert form.fields == []
    assert _wire(form) == {"version": 1, "title": "Nothing", "fields": []}


# --- wire shape ---------------------------------------------------------------------------


class Everything(BaseModel):
    """A bit of every kind."""

    approved: bool
    reason: Reason | None = None
    stars: Literal[1, 2, 3] = 3
    tags: list[Reason] = Field(default_factory=list)
    notes: str = Field("", max_length=1000, description="Anything else?")
    amount: Decimal = Field(Decimal("9.99"), ge=0, le=1000)
    due: dt.date | None = None
    at: dt.datetime | None = None
    remind: dt.time | None = None
    shipping: Address | None = None


def test_result_roundtrips_through_json() -> None:
    form = extract_form(Everything)
    text = json.dumps(_wire(form))
    again = FormDefinition.model_validate(json.loads(text))
    assert again == form
    assert _wire(again) == _wire(form)


def test_wire_form_omits_unset_attributes() -> None:
    wire = _wire(extract_form(Everything))
    for field in wire["fields"]:
        assert None not in field.values()
        assert isinstance(field["kind"], str)


# --- JSON-schema path ---------------------------------------------------------------------


def test_json_schema_path_matches_model_path_for_refund_decision() -> None:
    from_schema = form_from_json_schema(RefundDecision.model_json_schema())
    assert from_schema == extract_form(RefundDecision)
    approved, notes = from_schema.fields
    assert (approved.kind, approved.required) == (FieldKind.SWITCH, True)
    assert (notes.kind, notes.required) == (FieldKind.SHORT_TEXT, False)


def test_json_schema_path_matches_model_path_on_everything_but_enum_labels() -> None:
    # A plain schema has enum values but not member names; everything else must agree, and
    # default_factory values are absent there too (pydantic does not evaluate them).
    model_form = _wire(extract_form(Everything))
    schema_form = _wire(form_from_json_schema(Everything.model_json_schema()))

    def strip(form: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        for field in form["fields"]:
            field = {k: v for k, v in field.items() if k != "default" or field["name"] != "tags"}
            for option in field.get("options", []):
                option.pop("label")
            out.append(field)
        return out

    assert strip(schema_form) == strip(model_form)
    assert schema_form["title"] == model_form["title"]
    assert schema_form["description"] == model_form["description"]


def test_hand_written_schema() -> None:
    schema = {
        "title": "Shipment check",
        "type": "object",
        "required": ["ok", "carrier", "weight"],
        "properties": {
            "ok": {"type": "boolean", "title": "Looks right?"},
            "carrier": {"$ref": "#/$defs/Carrier"},
            "weight": {"type": "number", "minimum": 0, "exclusiveMaximum": 30},
            "comment": {"type": ["string", "null"], "maxLength": 4000},
            "count": {"type": "integer", "minimum": 1, "maximum": 9, "exclusiveMinimum": True},
            "sent": {"allOf": [{"$ref": "#/$defs/When"}], "description": "Dispatch time"},
            "mystery": {},
            "legacy": {"type": "string", "nullable": True},
            "anything": True,
        },
        "$defs": {
            "Carrier": {"enum": ["ups", "dhl"], "x-enum-varnames": ["UPS", "DHL_EXPRESS"]},
            "When": {"type": "string", "format": "date-time"},
        },
    }
    form = form_from_json_schema(schema)
    assert form.title == "Shipment check"
    by_name = {f.name: f for f in form.fields}
    assert by_name["ok"].label == "Looks right?"
    assert by_name["carrier"].options == [
        FormOption(value="ups", label="Ups"),
        FormOption(value="dhl", label="Dhl express"),
    ]
    weight = by_name["weight"]
    assert (weight.min, weight.max, weight.max_exclusive) == (0, 30, True)
    comment = by_name["comment"]
    assert (comment.kind, comment.required) == (FieldKind.LONG_TEXT, False)
    count = by_name["count"]
    assert (count.min, count.max) == (2, 9)
    sent = by_name["sent"]
    assert (sent.kind, sent.hint, sent.required) == (FieldKind.DATETIME, "Dispatch time", False)
    assert by_name["mystery"].kind is FieldKind.JSON
    assert (by_name["legacy"].kind, by_name["legacy"].required) == (FieldKind.SHORT_TEXT, False)
    assert by_name["anything"].kind is FieldKind.JSON


@pytest.mark.parametrize(
    "schema",
    [
        {},
        {"type": "object"},
        {"type": "object", "properties": {"x": {"$ref": "#/$defs/Missing"}}},
        {
            "type": "object",
            "properties": {"x": {"$ref": "#/$defs/A"}},
            "$defs": {"A": {"$ref": "#/$defs/A"}},
        },
        {"type": "object", "properties": {"x": {"anyOf": [{"type": "null"}]}}},
        {"type": "object", "properties": {"x": {"enum": [[1], [2]]}}},
        {"type": "object", "properties": {"x": {"type": "integer", "default": object()}}},
    ],
)
def test_odd_schemas_never_raise(schema: dict[str, Any]) -> None:
    form = form_from_json_schema(schema)
    json.dumps(_wire(form))
    assert all(f.kind is FieldKind.JSON or f.fallback_reason is None for f in form.fields)
