"""``on_timeout=``: what a call returns when nobody answered in time, and how to tell.

With ``on_timeout="raise"`` (the default) a timeout raises ``TaskTimeoutError``. With a
``response_schema`` instance, the call returns that answer instead, and
:func:`is_default` says it is the default rather than a person's answer. The mark is on
the returned object itself, so the returned type stays exactly ``response_schema``
(equal to the same values, serialised the same way): a copy (``model_copy``, a round trip
through JSON or a workflow's history) is a plain answer again.
"""

from __future__ import annotations

import weakref
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from awaithumans.core._ask import RAISE, default_json, error_list, summary
from awaithumans.core._errors import SchemaValidationError

R = TypeVar("R", bound=BaseModel)

# The answers returned as defaults, by id: a weak reference each, so marking keeps nothing
# alive (ids are reused only after the object is gone, when its entry has left too).
_marked: dict[int, weakref.ref[BaseModel]] = {}
# A model declared with __slots__ takes no weak references; those few are held instead.
_pinned: dict[int, BaseModel] = {}


def is_default(answer: object) -> bool:
    """Whether ``answer`` is the ``on_timeout`` default a call returned after a timeout.

    False for a person's answer, and for anything the call did not return itself.
    """
    key = id(answer)
    ref = _marked.get(key)
    if ref is not None and ref() is answer:
        return True
    return key in _pinned and _pinned[key] is answer


def mark_default(answer: R) -> R:
    """Record ``answer`` as a default (see :func:`is_default`) and return it."""
    key = id(answer)
    try:
        _marked[key] = weakref.ref(answer, lambda _gone: _marked.pop(key, None))
    except TypeError:
        _pinned[key] = answer
    return answer


def default_answer(
    on_timeout: object, response_schema: type[R], stored: dict[str, Any] | None = None
) -> R | None:
    """The answer a timed-out call returns, marked; None when it should raise.

    ``stored`` is the default the server applied (its record wins); without one (a server
    that could not be reached at the deadline) the caller's own ``on_timeout`` is used.

    Raises:
        SchemaValidationError: The default does not fit ``response_schema``.
    """
    if isinstance(on_timeout, str) and on_timeout == RAISE:
        return None
    raw = stored if stored is not None else default_json(on_timeout, response_schema)
    try:
        answer = response_schema.model_validate(raw)
    except ValidationError as exc:
        raise SchemaValidationError(
            "on_timeout default", summary(exc), errors=error_list(exc)
        ) from None
    # A fresh instance each time: marking never touches the object the caller passed in.
    return mark_default(answer)
