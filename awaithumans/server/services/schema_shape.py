"""How big a client's schema is, what it may be, and how dear a document is to check.

Checked when a task is created, before anything compiles: a schema over a limit is refused
with ``SCHEMA_TOO_COMPLEX`` (every real form is far below each). The same walk yields the
estimates :class:`~awaithumans.server.services.schemas.SchemaCache` routes by: what may run
on the event loop, what goes to a worker.

Checking cost is not just schema size times document size. References can share a
definition so that it is evaluated exponentially often: 31 definitions, each ``allOf`` the
next one twice, make 2^30 evaluations of one integer (it never finished). So the size that
counts is the schema with its local references followed (:attr:`Shape.size`), and some
keywords cost far more than a value each (``multipleOf`` with a fraction took 13-66 µs per
number, 1.8 ms for a 4,000-digit one).

Like :mod:`schema_rules`, it imports only the standard library: the schema worker loads it
by path, to measure schemas too big to measure on the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias
from urllib.parse import unquote

#: Longest ``pattern`` (or ``patternProperties`` key) in characters; real ones are short.
MAX_PATTERN_CHARS = 1_000
#: Deepest nesting of objects and arrays in a schema; a nested object field takes two
#: levels (``properties`` -> name), so 32 levels hold 15 nested objects. Also keeps the
#: compiler's recursion shallow.
MAX_DEPTH = 32
#: Most field definitions (``properties`` and ``patternProperties`` entries) in one schema.
MAX_PROPERTIES = 1_000
#: Most JSON values in one schema: a 1,000-field form with titles and limits is ~6,000.
MAX_NODES = 20_000
#: Most values once local ``$ref``s are followed (each use of a definition counts it again).
MAX_SIZE = 200_000

#: What a keyword costs per value checked, in values (measured: see the module docstring;
#: ``format`` and content checks parse what they check).
_SURCHARGE = {
    "multipleOf": 1_000,
    "format": 20,
    "contentEncoding": 20,
    "contentMediaType": 20,
    "contentSchema": 20,
}


class TooComplex(ValueError):
    """The schema is over a limit; the message names it and where."""


@dataclass(frozen=True, slots=True)
class Shape:
    """A schema's size and estimated checking cost.

    Attributes:
        nodes: JSON values in the schema as written.
        patterns: Patterns in it (``pattern`` values, ``patternProperties`` keys).
        size: Values with local references followed.
        cost: ``size`` plus the dear keywords' surcharges: a document's checking cost is
            about its :func:`weight` times this, in tens of nanoseconds.
        opaque: It has references this walk cannot follow (anchors, ``$id`` scopes,
            dynamic references): its cost is unknown, so it never runs on the event loop.
    """

    nodes: int
    patterns: int
    size: int
    cost: int
    opaque: bool


def measure(schema: Any, which: str, *, limits: bool = True) -> Shape:
    """Measure ``schema``; with ``limits``, refuse one over a limit.

    Stops at the first limit crossed, so a huge schema costs no more than a legal one
    (20,000 values take about 5 ms).

    Raises:
        TooComplex: Naming the limit and where it was crossed.
    """
    nodes = patterns = properties = surcharge = 0
    refs = False
    # (value, depth, parent entry, key in parent): where a value is, rebuilt only to report.
    stack: list[_At] = [(schema, 1, None, None)]
    if type(schema) is not dict and type(schema) is not list:
        return Shape(1, 0, 1, 1, opaque=False)
    while stack:
        entry = stack.pop()
        value, depth = entry[0], entry[1]
        # Every child counts at least one value: a long list is refused before its walk.
        nodes += 1 + len(value)
        if not limits:
            pass
        elif nodes > MAX_NODES:
            raise TooComplex(f"{which} has more than {MAX_NODES} values.")
        elif depth > MAX_DEPTH:
            raise TooComplex(f"{which} nests deeper than {MAX_DEPTH} levels (at {_path(entry)}).")
        if type(value) is dict:
            for key, item in value.items():
                if key == "pattern" and type(item) is str:
                    patterns += 1
                    if limits and len(item) > MAX_PATTERN_CHARS:
                        raise _long_pattern(which, (item, 0, entry, key))
                elif key in _SURCHARGE:
                    surcharge += _SURCHARGE[key]
                elif key in _REF_KEYS or key == "$id":
                    refs = True
                elif key in _FIELD_MAPS and type(item) is dict:
                    properties += len(item)
                    if key == "patternProperties":
                        for name in item:
                            patterns += 1
                            if limits and len(name) > MAX_PATTERN_CHARS:
                                raise _long_pattern(which, (name, 0, entry, key))
                if type(item) is dict or type(item) is list:
                    nodes -= 1  # counted when its turn comes
                    stack.append((item, depth + 1, entry, key))
            if limits and properties > MAX_PROPERTIES:
                raise TooComplex(f"{which} defines more than {MAX_PROPERTIES} properties.")
        elif type(value) is list:
            for i, item in enumerate(value):
                if type(item) is dict or type(item) is list:
                    nodes -= 1
                    stack.append((item, depth + 1, entry, i))
    if not refs:
        return Shape(nodes, patterns, nodes, nodes + surcharge, opaque=False)
    size, cost, opaque = _expanded(schema)
    if limits and size > MAX_SIZE:
        raise TooComplex(
            f"{which} has more than {MAX_SIZE} values once its $refs are followed"
            " (a definition counts once for each use).",
        )
    return Shape(nodes, patterns, size, cost, opaque)


_At: TypeAlias = tuple[Any, int, "_At | None", Any]
_FIELD_MAPS = frozenset({"properties", "patternProperties"})
_REF_KEYS = frozenset({"$ref", "$dynamicRef", "$recursiveRef"})


def _path(entry: _At) -> str:
    steps: list[str] = []
    at: _At | None = entry
    while at is not None and at[2] is not None:
        steps.append(str(at[3]))
        at = at[2]
    return "/" + "/".join(reversed(steps))


def _long_pattern(which: str, entry: _At) -> TooComplex:
    return TooComplex(
        f"{which} has a pattern longer than {MAX_PATTERN_CHARS} characters at {_path(entry)}.",
    )


_CAP = 10**12  # past any bound callers compare with; keeps the sums small


def _expanded(root: Any) -> tuple[int, int, bool]:
    """Size and cost of ``root`` with local references followed, and whether some could
    not be. A reference back into a definition being counted (recursion) counts nothing:
    recursion consumes the document as it goes, which the document's weight covers."""
    done: dict[int, tuple[int, int]] = {}
    # Containers being counted: their own values and surcharge so far, their children.
    pending: dict[int, tuple[int, int, list[Any]]] = {}
    opaque = False
    stack: list[Any] = [root]
    while stack:
        node = stack[-1]
        key = id(node)
        if key in done:
            stack.pop()
            continue
        if key not in pending:
            own, extra, children = _parts(root, node)
            opaque = opaque or None in children
            children = [c for c in children if c is not None]
            pending[key] = (own, extra, children)
            # Children not yet counted go first; one being counted (a cycle) is skipped.
            stack.extend(c for c in children if id(c) not in done and id(c) not in pending)
            continue
        stack.pop()
        own, extra, children = pending.pop(key)
        size, cost = own, own + extra
        for child in children:
            child_size, child_cost = done.get(id(child), (0, 0))
            size += child_size
            cost += child_cost
        done[key] = (min(size, _CAP), min(cost, _CAP))
    return (*done[id(root)], opaque)


def _parts(root: Any, node: Any) -> tuple[int, int, list[Any]]:
    """A container's own count (itself and its scalars), its surcharge, and the containers
    it leads to: its children, then the target of its ``$ref`` (None: not followable)."""
    items = node if isinstance(node, list) else list(node.values())
    children: list[Any] = [v for v in items if type(v) is dict or type(v) is list]
    own = 1 + len(items) - len(children)
    if isinstance(node, list):
        return own, 0, children
    extra = sum(_SURCHARGE.get(k, 0) for k in node)
    if node is not root and isinstance(node.get("$id"), str):
        children.append(None)  # a new base URI: "#/..." inside means another document
    if "$dynamicRef" in node or "$recursiveRef" in node:
        children.append(None)
    ref = node.get("$ref")
    if isinstance(ref, str):
        target = _pointer(root, ref)
        if target is None or type(target) is dict or type(target) is list:
            children.append(target)
        else:
            own += 1
    return own, extra, children


def _pointer(root: Any, ref: str) -> Any:
    """The value a local JSON-pointer reference names, or None for any other reference."""
    if ref == "#":
        return root
    if not ref.startswith("#/"):
        return None
    node = root
    for raw in ref[2:].split("/"):
        step = unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and step in node:
            node = node[step]
        elif isinstance(node, list) and step.isdigit() and int(step) < len(node):
            node = node[int(step)]
        else:
            return None  # the compiler reports it as a missing reference
    return node


def weight(instance: Any, cap: int) -> int:
    """A document's size in checking units: a value each, and one per 4 characters of text
    (or per 4 digits of a big number). Stops counting past ``cap``, which callers compare
    it with, so a huge document costs no more than that to weigh."""
    total = 0
    stack = [instance]
    while stack and total <= cap:
        value = stack.pop()
        total += 1
        if isinstance(value, str):
            total += len(value) // 4
        elif isinstance(value, int):
            total += value.bit_length() // 13  # 13 bits: about 4 decimal digits
        elif isinstance(value, dict):
            total += sum(len(k) for k in value) // 4
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return total
