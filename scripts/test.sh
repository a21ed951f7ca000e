#!/usr/bin/env bash
# Sets up a fresh machine and runs the whole test suite (what CI runs).
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh -k poll    # extra arguments go to pytest
# The first run installs system packages (PostgreSQL, Chromium, fonts; root or sudo needed)
# and the dev tools into .venv (a few minutes); the suite itself takes about 28 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n==> %s\n' "$*"; }
step "system packages (PostgreSQL, Chromium, fonts, HAProxy): scripts/system-deps.sh"
bash scripts/system-deps.sh
step "virtualenv .venv with the dev tools: scripts/setup.sh"
bash scripts/setup.sh
step "ruff (lint and format)"
.venv/bin/ruff check awaithumans tests bench examples
.venv/bin/ruff format --check awaithumans tests bench examples
step "mypy --strict"
.venv/bin/mypy
step "TypeScript SDK (sdk/typescript): npm ci, biome, tsc --noEmit, node --test"
# Node 20+ and npm; its tests start their own server from .venv (about 20 s).
command -v npm >/dev/null || { echo "npm not found: install Node.js 20 or newer" >&2; exit 1; }
(cd sdk/typescript && npm ci --no-audit --no-fund && npm run lint && npm run typecheck && npm test)
step "pytest"
# Two workers, each test file whole on one of them (its module fixtures, servers and
# engines are set up once); every worker starts its own PostgreSQL, Temporal and Prefect.
# The 25 slowest tests are listed at the end: where to look when the suite grows slow.
exec .venv/bin/pytest -p no:cacheprovider -n 2 --dist loadfile --durations=25 "$@"
