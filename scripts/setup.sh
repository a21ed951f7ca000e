#!/usr/bin/env bash
# Sets up a fresh machine for awaithumans development: a virtualenv in ./.venv with the
# package (editable), the server extra and the test tools. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
if [ ! -x .venv/bin/uv ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check uv
fi
# uv resolves and installs in seconds; pip would take minutes for the same set.
.venv/bin/uv pip install --quiet --python .venv/bin/python -e . --group dev "${@}"
