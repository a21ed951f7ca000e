"""The installed version, read once from the package metadata."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("awaithumans")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+local"
