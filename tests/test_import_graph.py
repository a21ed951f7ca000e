"""The package's import graph: no cycles, and the layers import only downwards.

Every import counts, including those inside functions and under ``TYPE_CHECKING``: moving an
import into a function hides a cycle from the interpreter, not from the design. The graph is
read from the source (AST), so this runs without importing anything.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "awaithumans"
ROOT = PACKAGE.parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts}


def _imported_names(path: Path, module: str) -> Iterator[str]:
    """Every dotted name an import statement in ``path`` refers to (absolute form)."""
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            # ``from pkg import sub`` may name a submodule rather than an attribute.
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _graph() -> dict[str, set[str]]:
    modules = _modules()

    def owner(name: str) -> str | None:
        # The longest prefix of ``name`` that is one of our modules.
        parts = name.split(".")
        while parts:
            candidate = ".".join(parts)
            if candidate in modules:
                return candidate
            parts.pop()
        return None

    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = {owner(name) for name in _imported_names(path, module)}
        # A submodule reaching up to its own package is left out: the package runs first
        # whenever any of its submodules is imported, so that edge says nothing about the
        # design, and a package re-exporting its children would otherwise always be a cycle.
        graph[module] = {
            t for t in targets if t is not None and t != module and not module.startswith(t + ".")
        }
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_walker_sees_hidden_imports() -> None:
    # The graph must see what the interpreter skips at import time, or the test below
    # proves nothing: the dashboard imports its pages inside a function.
    graph = _graph()
    assert "awaithumans.server.dashboard.pages_task" in graph["awaithumans.server.dashboard"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    cycles = _cycles(_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


WEB_FRAMEWORKS = ("fastapi", "starlette")


def _third_party(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize(
    "where",
    ["server/services", "server/auth.py", "server/db", "server/security", "server/errors.py"],
)
def test_services_know_nothing_of_the_web(where: str) -> None:
    # The answer path, the lifecycle and the outbox are reached from HTTP routes, Slack's
    # socket, email links and background loops alike: none of them may depend on FastAPI.
    target = PACKAGE / where
    paths = [target] if target.is_file() else sorted(target.rglob("*.py"))
    offenders = {
        str(p.relative_to(PACKAGE)): sorted(_third_party(p) & set(WEB_FRAMEWORKS)) for p in paths
    }
    assert not {k: v for k, v in offenders.items() if v}


def _imports_of(prefix: str) -> dict[str, set[str]]:
    return {m: targets for m, targets in _graph().items() if m.startswith(prefix)}


def test_layers_import_downwards_only() -> None:
    # The SDK core knows nothing above it; adapters and integrations know the core, never the
    # server; the server uses an adapter only through its public package, never its private
    # modules.
    core = _imports_of("awaithumans.core")
    above = {m: t for m, t in core.items() if any(not n.startswith("awaithumans.core") for n in t)}
    assert not above
    for sdk_side in ("awaithumans.adapters", "awaithumans.integrations"):
        modules = _imports_of(sdk_side)
        assert not {
            m: t for m, t in modules.items() if any(n.startswith("awaithumans.server") for n in t)
        }, sdk_side
    private = re.compile(r"^awaithumans\.adapters\.(?:[a-z]+\.)?_")
    server = _imports_of("awaithumans.server")
    assert not {m: sorted(t) for m, t in server.items() if any(private.match(n) for n in t)}
