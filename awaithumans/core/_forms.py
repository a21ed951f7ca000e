"""Derive the response form of a task from its Pydantic response model.

The model is first turned into a JSON schema and then mapped by
:func:`~awaithumans.core._forms_schema.form_from_json_schema`, the same function the server
uses when a client sends only a schema. Only the schema generation is specialised here, to
carry what a plain schema loses: enum member names, ``default_factory`` values, and types
pydantic cannot describe at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from pydantic import BaseModel
from pydantic.json_schema import (
    GenerateJsonSchema,
    JsonSchemaValue,
    JsonSchemaWarningKind,
    NoDefault,
)

from awaithumans.core._forms_schema import (
    ENUM_NAMES_KEY,
    FALLBACK_KEY,
    FORM_VERSION,
    FieldKind,
    FormDefinition,
    FormField,
    FormOption,
    form_from_json_schema,
    humanize,
)

if TYPE_CHECKING:  # annotations only: the core imports nothing beyond pydantic at runtime
    from pydantic_core import core_schema

    # What pydantic passes to handle_invalid_for_json_schema: a schema or one field of a model.
    _SchemaOrField = (
        core_schema.CoreSchema
        | core_schema.ModelField
        | core_schema.DataclassField
        | core_schema.TypedDictField
        | core_schema.ComputedField
    )

__all__ = [
    "FORM_VERSION",
    "FieldKind",
    "FormDefinition",
    "FormField",
    "FormOption",
    "extract_form",
    "form_from_json_schema",
    "humanize",
]


def extract_form(model: type[BaseModel]) -> FormDefinition:
    """Build the form a person fills in to answer with an instance of ``model``.

    Never raises for a field that cannot be rendered natively (nested models, mappings,
    unions, arbitrary types): it becomes a ``json`` field with a ``fallback_reason``.

    Args:
        model: The Pydantic v2 response model. Field names in the form are the keys
            ``model.model_validate`` expects, i.e. aliases where set.

    Returns:
        The form definition; ``model_dump(mode="json", exclude_none=True)`` is its wire form.
    """
    schema = model.model_json_schema(schema_generator=_FormSchemaGenerator)
    return form_from_json_schema(schema)


class _FormSchemaGenerator(GenerateJsonSchema):
    """A validation-mode schema generator that keeps what the form needs and never raises."""

    # Unserialisable defaults are simply not pre-filled; warning the caller about it on every
    # await_human call would be noise.
    ignored_warning_kinds: set[JsonSchemaWarningKind] = {  # noqa: RUF012 (pydantic's own type)
        "skipped-choice",
        "non-serializable-default",
    }

    def get_default_value(self, schema: core_schema.WithDefaultSchema) -> Any:
        # A plain schema drops default_factory values; a form wants them pre-filled. Factories
        # that need the other fields' data cannot be evaluated here, and a failing one only
        # costs the pre-fill.
        factory = schema.get("default_factory")
        if factory is not None and not schema.get("default_factory_takes_data"):
            try:
                return cast(Callable[[], Any], factory)()
            except Exception:
                return NoDefault
        return super().get_default_value(schema)

    def enum_schema(self, schema: core_schema.EnumSchema) -> JsonSchemaValue:
        # Labels come from member names ("PARTIAL_REFUND" -> "Partial refund"), which the
        # standard schema omits.
        result = super().enum_schema(schema)
        result[ENUM_NAMES_KEY] = [member.name for member in schema["members"]]
        return result

    def handle_invalid_for_json_schema(
        self, schema: _SchemaOrField, error_info: str
    ) -> JsonSchemaValue:
        # The default raises, which would make one odd field sink the whole task.
        cls = cast(Mapping[str, Any], schema).get("cls")
        what = f"type {cls.__name__}" if isinstance(cls, type) else error_info
        return {FALLBACK_KEY: f"{what} has no JSON schema; edit the value as JSON"}
