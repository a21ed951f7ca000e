"""Compiling a client's JSON Schema and checking a document against it.

Schemas come from agents (``payload_schema``, ``response_schema``), so compiling and running
them must not let one request hold the server:

* patterns (``pattern``, ``patternProperties`` keys) run on a linear-time engine (Rust's
  ``regex`` through ``jsonschema_rs.RegexOptions``), with a cap on each compiled program. A
  pattern that needs backtracking (a lookaround, a backreference) is refused when the schema
  is compiled: on a backtracking engine ``^(?:(a|aa)+\\1$|.*)$`` over 1,000 short strings
  held the server for 9.9 s. Pydantic's default engine is the same crate, so a model's
  ``Field(pattern=...)`` that pydantic accepts is accepted here too;
* :func:`field_errors` lists every problem only when the caller knows their number is
  bounded (``jsonschema_rs`` builds every error before yielding the first);
* a pattern error says what the field expects, in the schema's own words.

The size limits and cost estimates are :mod:`schema_shape`'s. This module runs in the
server and in the schema worker (:mod:`schema_worker`), which loads it by path so that it
starts in a few tens of milliseconds: it imports nothing but the standard library and
``jsonschema_rs``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, Literal

import jsonschema_rs

#: Caps on one compiled pattern (bytes of program, of lazy DFA cache): every ordinary
#: pattern fits; ``\p{L}{1000}{100}`` does not, and is refused in about a millisecond.
REGEX_SIZE_LIMIT = 2 * 1024 * 1024
REGEX_DFA_SIZE_LIMIT = 2 * 1024 * 1024
#: For schemas stored before the linear engine was required only: how far a backtracking
#: match may go before the field is reported as not checkable (about a millisecond).
LEGACY_BACKTRACK_LIMIT = 50_000
#: Most field errors one check returns.
MAX_LISTED = 50

Kind = Literal["invalid", "unsupported_pattern", "too_complex"]


class Problem(Exception):
    """The schema cannot be used: ``kind`` says why (the server maps it to an error code)."""

    def __init__(self, kind: Kind, message: str) -> None:
        super().__init__(message)
        self.kind: Kind = kind
        self.message = message


def _no_remote_refs(uri: str) -> Any:
    # Schemas come from clients. Following a "$ref" to a URL would let any caller make the
    # server fetch an address of its choosing (and block while it does).
    raise ValueError(f"remote $ref {uri!r} is not allowed; inline the definition")


_LINEAR = jsonschema_rs.RegexOptions(
    size_limit=REGEX_SIZE_LIMIT, dfa_size_limit=REGEX_DFA_SIZE_LIMIT
)
_BACKTRACKING = jsonschema_rs.FancyRegexOptions(
    backtrack_limit=LEGACY_BACKTRACK_LIMIT,
    size_limit=REGEX_SIZE_LIMIT,
    dfa_size_limit=REGEX_DFA_SIZE_LIMIT,
)


def compile_schema(schema: Any, which: str, *, legacy: bool = False) -> tuple[Any, bool]:
    """A validator for ``schema``, and whether it matches patterns by backtracking.

    Args:
        legacy: The schema was stored before patterns had to be linear: one that needs
            backtracking then gets a backtracking engine with a tight limit, rather than
            leaving its task unanswerable.

    Raises:
        Problem: The schema is invalid, or one of its patterns needs backtracking or
            compiles too large.
    """
    try:
        return _compile(schema, _LINEAR), False
    except Problem as exc:
        if not (legacy and exc.kind == "unsupported_pattern"):
            raise
    return _compile(schema, _BACKTRACKING), True


def _compile(schema: Any, options: Any) -> Any:
    try:
        return jsonschema_rs.validator_for(
            schema, retriever=_no_remote_refs, pattern_options=options
        )
    except jsonschema_rs.ValidationError as exc:
        kind = exc.kind
        if (
            isinstance(kind, jsonschema_rs.ValidationErrorKind.Format)
            and kind.format == "regex"
            and isinstance(exc.instance, str)
        ):
            raise _pattern_problem(exc.instance, exc.instance_path) from None
        raise Problem("invalid", _first_line(exc)) from None
    except ValueError as exc:
        raise Problem("invalid", _first_line(exc)) from None


def _pattern_problem(pattern: str, path: list[str | int]) -> Problem:
    where = "/" + "/".join(map(str, path))
    try:
        # The backtracking engine takes it: so it uses what only backtracking can match.
        jsonschema_rs.validator_for({"pattern": pattern}, pattern_options=_BACKTRACKING)
    except jsonschema_rs.ValidationError:
        return Problem(
            "invalid",
            f"the pattern {pattern!r} at {where} is not a valid regular expression, or"
            f" compiles larger than {REGEX_SIZE_LIMIT // 1024 // 1024} MiB",
        )
    return Problem(
        "unsupported_pattern",
        f"the pattern {pattern!r} at {where} needs backtracking (a lookaround or a"
        " backreference); patterns are matched in linear time here, so rewrite it"
        " without them",
    )


def _first_line(exc: Exception) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else "invalid schema"


def field_errors(
    validator: Any, schema: Any, instance: Any, which: str, *, list_all: bool
) -> list[dict[str, Any]]:
    """Every way ``instance`` breaks the schema, as ``{"loc", "msg"}`` (empty when valid).

    Args:
        list_all: List up to :data:`MAX_LISTED` problems. ``iter_errors`` builds all of
            them first (100,000 errors take 1.6 s), so callers pass False for a document
            that could have very many: then only the first problem is reported, which
            ``validate`` finds without looking further.
    """
    if validator.is_valid(instance):
        return []
    if list_all:
        found = list(itertools.islice(validator.iter_errors(instance), MAX_LISTED))
    else:
        try:
            validator.validate(instance)
            found = []
        except jsonschema_rs.ValidationError as exc:
            found = [exc]
    return [{"loc": [which, *e.instance_path], "msg": _message(schema, e, which)} for e in found]


def _message(schema: Any, error: Any, which: str) -> str:
    kind = error.kind
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.BacktrackLimitExceeded):
        return "Could not be checked: the expected format is too complex to match."
    if not isinstance(kind, jsonschema_rs.ValidationErrorKind.Pattern):
        return str(error.message)
    # A raw regex tells a person nothing: say what the field expects, in the schema's words.
    hint = _hint(schema, error)
    example = f" (for example: {hint['examples']})" if "examples" in hint else ""
    if "description" in hint:
        return f"Not in the expected format: {hint['description']}{example}."
    if "title" in hint:
        return f"Not a valid {hint['title']}{example}."
    if example:
        return f"Not in the expected format{example}."
    if which == "payload":
        # Payload errors go to the agent's developer, who wrote the pattern.
        return f"Does not match the pattern {kind.pattern!r}."
    return "Not in the expected format."


def _hint(schema: Any, error: Any) -> dict[str, str]:
    """The description, title and first example nearest the failed ``pattern``: in its own
    schema, else the field that ``$ref``-ed it, else the array it is the items of."""
    schema_path = list(error.schema_path)[:-1]
    candidates = [schema_path]
    evaluation = list(error.evaluation_path)
    if "$ref" in evaluation:
        candidates.append(evaluation[: len(evaluation) - evaluation[::-1].index("$ref") - 1])
    if schema_path[-1:] == ["items"]:
        candidates.append(schema_path[:-1])
    found: dict[str, str] = {}
    for path in candidates:
        node = _at(schema, path)
        if not isinstance(node, dict):
            continue
        for word in ("description", "title"):
            text = node.get(word)
            if word not in found and isinstance(text, str) and text.strip():
                found[word] = _short(text.strip().rstrip("."))
        examples = node.get("examples")
        if "examples" not in found and isinstance(examples, list) and examples:
            first = examples[0]
            if isinstance(first, str | int | float) and not isinstance(first, bool):
                found["examples"] = _short(str(first))
    return found


def _at(schema: Any, path: list[Any]) -> Any:
    node = schema
    for step in path:
        in_dict = isinstance(node, dict) and isinstance(step, str) and step in node
        in_list = isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node)
        if not (in_dict or in_list):
            return None
        node = node[step]
    return node


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- the schema worker's side ------------------------------------------------------------


def serve_worker(measure: Callable[..., Any]) -> None:
    """The schema worker's loop: framed JSON requests on stdin, replies on stdout.

    A frame is a 4-byte big-endian length and that many bytes of JSON. The first frame out
    says the worker is ready. A request holds ``key``, ``schema``, ``name`` (the schema's,
    for messages) and ``legacy``; with ``measure``, the schema is first measured (and a
    client's held to the limits) by ``measure`` (:func:`schema_shape.measure`, which the
    worker loads by path too); with ``instance``, ``which`` and ``list_all`` a document is
    checked. Replies are ``{"errors": [...]}``, ``{"backtracking": bool, "ms": float,
    "shape": [...]?}`` (no document) or ``{"problem": kind, "message": ...}``. Ends when
    stdin closes (the server stopped or died).
    """
    import json
    import os
    import signal
    import sys
    import time
    from collections import OrderedDict
    from dataclasses import astuple

    # The server's own work comes first: a long check must not slow its event loop down
    # on a machine with few cores.
    os.nice(5)

    # Ctrl+C reaches the whole process group; the server decides when its worker stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    read, write = sys.stdin.buffer, sys.stdout.buffer
    compiled: OrderedDict[str, tuple[Any, bool]] = OrderedDict()

    def send(reply: dict[str, Any]) -> None:
        data = json.dumps(reply).encode()
        write.write(len(data).to_bytes(4, "big") + data)
        write.flush()

    send({"ready": True})
    while True:
        head = read.read(4)
        if len(head) < 4:
            return
        request = json.loads(read.read(int.from_bytes(head, "big")))
        schema, name, legacy = request["schema"], request["name"], request["legacy"]
        # A stored schema may get the backtracking engine; a client's new one never does.
        key = f"{request['key']}:{legacy}"
        try:
            started = time.perf_counter()
            shape = None
            if request.get("measure"):
                try:
                    shape = list(astuple(measure(schema, name, limits=not legacy)))
                except ValueError as exc:  # schema_shape.TooComplex
                    raise Problem("too_complex", str(exc)) from None
            if key not in compiled:
                compiled[key] = compile_schema(schema, name, legacy=legacy)
                if len(compiled) > 256:
                    compiled.popitem(last=False)
            compiled.move_to_end(key)
            validator, backtracking = compiled[key]
            if "instance" not in request:
                ms = (time.perf_counter() - started) * 1000
                send({"backtracking": backtracking, "ms": ms, "shape": shape})
                continue
            errors = field_errors(
                validator,
                schema,
                request["instance"],
                request["which"],
                list_all=request["list_all"],
            )
            send({"errors": errors})
        except Problem as exc:
            send({"problem": exc.kind, "message": exc.message})
