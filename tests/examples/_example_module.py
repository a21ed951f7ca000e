"""An example's module loaded by its path, under a name of its own.

Several examples have a ``graph.py``; imported as plain ``graph`` (the example's folder put
on ``sys.path``), the first one a test process loads is the one every later ``import graph``
gets back from ``sys.modules``, whichever folder it came from.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def example_module(folder: Path, name: str) -> ModuleType:
    """``folder/name.py``, imported as ``examples_<folder>_<name>`` (once per process)."""
    unique = f"examples_{folder.name.replace('-', '_')}_{name}"
    if (loaded := sys.modules.get(unique)) is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(unique, folder / f"{name}.py")
    assert spec is not None, folder / f"{name}.py"
    assert spec.loader is not None, folder / f"{name}.py"
    module = importlib.util.module_from_spec(spec)
    sys.modules[unique] = module
    spec.loader.exec_module(module)
    return module
