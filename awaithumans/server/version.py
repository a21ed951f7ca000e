"""The server reports the package's version (one number for the SDK and the server)."""

from __future__ import annotations

from awaithumans._version import __version__

__all__ = ["__version__"]
