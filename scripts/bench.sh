#!/usr/bin/env bash
# Accuracy on the test set (tests/nlu/test_set*.yml) beside a TF-IDF baseline, and speed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/common.sh
python -m benchmark.run "$@"
