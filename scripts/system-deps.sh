#!/usr/bin/env bash
# Installs the system packages the test suite and benchmarks run for real: PostgreSQL 15 (the
# tests start their own throwaway cluster), Chromium and two font families (the dashboard's
# browser tests drive Debian's chromium through Playwright; Playwright's own browser download
# is not used), HAProxy (the replica tests put several servers behind a real load balancer),
# Node.js and npm when absent (the TypeScript SDK's tests), wrk (throughput benchmarks, WITH_BENCH=1) and python3-venv when Python's venv
# module is missing (stock Debian). Needs root on Debian; does nothing, and touches no package
# list, when everything is already there.
#   bash scripts/system-deps.sh        # what the test suite needs
#   bash scripts/system-deps.sh venv   # only python3-venv (what scripts/setup.sh needs)
set -euo pipefail
need=()           # installed with their recommended packages, as apt does by default
need_minimal=()   # installed without: chromium would otherwise pull in systemd, avahi, cups...
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_minimal+=(python3-venv)
if [ "${1:-}" = "venv" ]; then
  need=()
else
command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need_minimal+=(chromium)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need_minimal+=(haproxy)
# The TypeScript SDK's checks and tests (Node 20 or newer: the machines this targets have it).
command -v npm >/dev/null 2>&1 || need_minimal+=(nodejs npm)
# Fixed fonts make screenshots legible and alike on every machine. In Chromium, sans-serif and
# serif are Liberation Sans/Serif (Arial/Times metrics); monospace and system-ui are DejaVu.
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_minimal+=(fonts-dejavu-core)
[ -e /usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf ] || need_minimal+=(fonts-liberation)
if [ "${WITH_BENCH:-0}" = "1" ]; then command -v wrk >/dev/null 2>&1 || need+=(wrk); fi
fi
all=("${need[@]}" "${need_minimal[@]}")
if [ ${#all[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != "0" ]; then
  echo "system-deps: please install: ${all[*]} (apt-get install -y ${all[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if [ ${#need[@]} -gt 0 ]; then apt-get install -y -qq "${need[@]}" >/dev/null; fi
if [ ${#need_minimal[@]} -gt 0 ]; then
  apt-get install -y -qq --no-install-recommends "${need_minimal[@]}" >/dev/null
fi
