#!/usr/bin/env bash
# Sets up this checkout in ./.venv (editable install). Safe to run again.
#   bash scripts/setup.sh server   # what the server and the quickstart need (awaithumans[server])
#   bash scripts/setup.sh          # everything: the test suite's tools and engines too (dev group)
# Needs Python 3.11 or newer with its venv module (Debian: python3 and python3-venv).
set -euo pipefail
cd "$(dirname "$0")/.."

mode="dev"
if [ "${1:-}" = "server" ] || [ "${1:-}" = "dev" ]; then mode="$1"; shift; fi

# A Python 3.11+: $PYTHON if set, else the newest python3.X on PATH, else python3.
ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }
if [ -n "${PYTHON:-}" ]; then
  candidates=("$PYTHON")
else
  candidates=(python3.13 python3.12 python3.11 python3)
fi
PY=""
for candidate in "${candidates[@]}"; do
  if command -v "$candidate" >/dev/null 2>&1 && ok "$candidate"; then PY="$candidate"; break; fi
done
if [ -z "$PY" ]; then
  echo "setup: awaithumans needs Python 3.11 or newer (found: $(python3 --version 2>&1 || echo none))." >&2
  echo "  Debian 12 / Ubuntu 24.04: sudo apt-get install python3 python3-venv" >&2
  echo "  elsewhere: https://www.python.org/downloads/ or pyenv; then PYTHON=python3.11 bash scripts/setup.sh" >&2
  exit 1
fi

# A .venv left half-made (venv failed without python3-venv, or made by an older Python) is
# rebuilt rather than failing later with "No module named pip".
if [ -e .venv ] && ! { [ -x .venv/bin/python ] && ok .venv/bin/python && .venv/bin/python -c 'import pip' 2>/dev/null; }; then
  echo "setup: .venv is incomplete or too old; making it again"
  rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
  if ! "$PY" -c 'import ensurepip, venv' 2>/dev/null; then
    if [ "$(id -u)" = "0" ]; then
      bash scripts/system-deps.sh venv
    else
      echo "setup: $PY has no venv module; install it: sudo apt-get install python3-venv" >&2
      echo "  (or run: sudo bash scripts/system-deps.sh venv)" >&2
      exit 1
    fi
  fi
  if ! "$PY" -m venv .venv; then
    rm -rf .venv
    echo "setup: could not make .venv with $PY (on Debian: sudo apt-get install python3-venv)" >&2
    exit 1
  fi
fi
if [ ! -x .venv/bin/uv ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check uv
fi
# uv resolves and installs in seconds; pip would take minutes for the same set.
if [ "$mode" = "server" ]; then
  .venv/bin/uv pip install --quiet --python .venv/bin/python -e ".[server]" "${@}"
else
  .venv/bin/uv pip install --quiet --python .venv/bin/python -e . --group dev "${@}"
fi
