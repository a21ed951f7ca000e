"""JSON Schema checks for payloads and responses, compiled once per distinct schema.

Agents send the same few schemas thousands of times; compiling a validator is far dearer
than running one, so validators are cached by the schema's canonical hash.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import jsonschema_rs

from awaithumans.core._codes import ErrorCode
from awaithumans.core._wire import fingerprint
from awaithumans.server.errors import ApiError

_MAX_CACHED = 512


def _no_remote_refs(uri: str) -> Any:
    # Schemas come from clients. Following a "$ref" to a URL would let any caller make the
    # server fetch an address of its choosing (and block while it does).
    raise ValueError(f"remote $ref {uri!r} is not allowed; inline the definition")


class SchemaCache:
    """LRU of compiled validators keyed by schema hash."""

    def __init__(self) -> None:
        self._validators: OrderedDict[str, Any] = OrderedDict()

    def validator(self, schema: dict[str, Any], *, which: str) -> Any:
        key = fingerprint(schema)
        found = self._validators.get(key)
        if found is not None:
            self._validators.move_to_end(key)
            return found
        try:
            compiled = jsonschema_rs.validator_for(schema, retriever=_no_remote_refs)
        except (jsonschema_rs.ValidationError, ValueError) as exc:
            first_line = str(exc).splitlines()[0] if str(exc) else "invalid schema"
            raise ApiError(
                400, ErrorCode.INVALID_SCHEMA, f"{which} is not a valid JSON Schema: {first_line}"
            ) from None
        self._validators[key] = compiled
        if len(self._validators) > _MAX_CACHED:
            self._validators.popitem(last=False)
        return compiled

    def errors(self, schema: dict[str, Any], instance: Any, *, which: str) -> list[dict[str, Any]]:
        """Every way ``instance`` breaks ``schema``, as field errors (empty when valid)."""
        validator = self.validator(schema, which=which)
        if validator.is_valid(instance):
            return []
        return [
            {"loc": [which, *e.instance_path], "msg": e.message}
            for e in validator.iter_errors(instance)
        ][:50]
