"""What every provider must return, and how its reply becomes a :class:`Verdict`.

The model is forced to answer through one structured shape (a forced tool call, or strict
JSON output) and the reply is validated here; a reply that does not fit is the provider's
failure, never a pass. ``parsed_response`` travels as a JSON *string*: every provider's
strict mode accepts a string, while an open object (the response schema of the task) does
not fit their strict subsets; it is validated against the task's schema afterwards.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from awaithumans.core._codes import ErrorCode

#: The verdict tool's (or output format's) name.
VERDICT_NAME = "record_verdict"

VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "passed": {
            "type": "boolean",
            "description": "True if the answer is acceptable under the instructions.",
        },
        "reason": {
            "type": "string",
            "description": "One or two sentences the human will read: why it passed, or what"
            " to change (for a free-text reply: which required fields it does not settle).",
        },
        "parsed_response": {
            "type": ["string", "null"],
            "description": "Only for a free-text reply that settles every required field: the"
            " answer as a JSON object matching the response schema, serialised as a string."
            " Null otherwise.",
        },
    },
    "required": ["passed", "reason", "parsed_response"],
    "additionalProperties": False,
}


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens as the provider reported them (None where it did not)."""

    input_tokens: int | None = None
    output_tokens: int | None = None

    def as_json(self) -> dict[str, int | None]:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}


@dataclass(frozen=True, slots=True)
class Verdict:
    """The model's judgement of one answer."""

    passed: bool
    reason: str
    #: The free-text reply parsed into the response schema (not yet validated against it).
    parsed_response: dict[str, Any] | None
    model: str
    usage: Usage


class ProviderError(Exception):
    """No verdict: the provider failed, was unreachable, timed out, or replied malformed.

    Never the human's fault: no attempt is used, the task stays ``submitted`` with this
    message on it, and the verification is tried again later.
    """

    code = ErrorCode.VERIFIER_PROVIDER_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def verdict_from(raw: Any, *, model: str, usage: Usage) -> Verdict:
    """Validate a provider's structured reply (an object, or its JSON text).

    Raises:
        ProviderError: The reply is not the verdict shape.
    """
    if isinstance(raw, str | bytes):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise ProviderError("the model's reply is not JSON") from None
    if not isinstance(raw, dict):
        raise ProviderError("the model's reply is not a JSON object")
    passed, reason, parsed = raw.get("passed"), raw.get("reason"), raw.get("parsed_response")
    if not isinstance(passed, bool):
        raise ProviderError("the model's verdict has no boolean 'passed'")
    if not isinstance(reason, str) or not reason.strip():
        raise ProviderError("the model's verdict gives no reason")
    response: dict[str, Any] | None = None
    if isinstance(parsed, dict):  # a provider that sent the object itself
        response = parsed
    elif isinstance(parsed, str) and parsed.strip():
        try:
            loaded = json.loads(parsed)
        except ValueError:
            raise ProviderError("the model's parsed_response is not JSON") from None
        if not isinstance(loaded, dict):
            raise ProviderError("the model's parsed_response is not a JSON object")
        response = loaded
    elif parsed is not None and not (isinstance(parsed, str) and not parsed.strip()):
        raise ProviderError("the model's parsed_response is neither a JSON string nor null")
    return Verdict(passed, reason.strip(), response, model, usage)
