#!/usr/bin/env bash
# Installs the system packages the test suite and benchmarks run for real: PostgreSQL 15 (the
# tests start their own throwaway cluster) and wrk (throughput benchmarks). Needs root on
# Debian; does nothing when everything is already there.
set -euo pipefail
need=()
command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ "${WITH_BENCH:-0}" = "1" ]; then command -v wrk >/dev/null 2>&1 || need+=(wrk); fi
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != "0" ]; then
  echo "system-deps: please install: ${need[*]} (apt-get install -y ${need[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${need[@]}" >/dev/null
