"""Optional dependencies: one way, and one message, to say which extra installs them."""

from __future__ import annotations

import importlib

from awaithumans.core._errors import MissingExtraError


def require_extra(module: str, needs: str, extra: str) -> None:
    """Import ``needs`` or fail with the ``pip install "awaithumans[extra]"`` to run.

    Called first thing by each adapter package (``module``), so a missing framework is one
    clear line instead of a ``ModuleNotFoundError`` from deep inside the adapter.

    Raises:
        MissingExtraError: ``needs`` cannot be imported.
    """
    try:
        importlib.import_module(needs)
    except ImportError as exc:
        raise MissingExtraError(module, needs, extra) from exc
