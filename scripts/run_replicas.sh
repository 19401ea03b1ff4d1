#!/usr/bin/env bash
# The production topology on this machine: N Rasa replicas and the action
# server on PostgreSQL (127.0.0.1:5432, database test) and Redis
# (127.0.0.1:6379), behind nginx, round robin.
#   scripts/run_replicas.sh [--replicas 2] [--port 8080]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/common.sh
train_if_needed
scripts/system_deps.sh
python -m benchmark.topology "$@"
