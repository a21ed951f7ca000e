#!/usr/bin/env bash
# Sets up a fresh machine and runs the whole test suite (what CI runs).
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh -k poll    # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh
bash scripts/setup.sh
.venv/bin/ruff check awaithumans tests bench examples
.venv/bin/ruff format --check awaithumans tests bench examples
.venv/bin/mypy
exec .venv/bin/pytest -p no:cacheprovider "$@"
