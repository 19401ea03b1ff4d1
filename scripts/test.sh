#!/usr/bin/env bash
# Every test: lint and type gate, data validation, unit tests, and conversation tests on a trained model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/common.sh

echo "== lint and types (ruff, mypy; settings in pyproject.toml)"
ruff check .
mypy

echo "== rasa data validate"
rasa data validate --domain domain --data data --config config.yml --quiet

echo "== train (only if data, domain or config changed)"
train_if_needed

echo "== system packages the tests need (Debian's chromium, a Chinese font, nginx)"
scripts/system_deps.sh

echo "== unit, integration and browser tests"
python -m pytest -q tests

echo "== conversation tests"
# endpoints.yml names the action server's secret; these tests call no action.
export ACTION_SERVER_TOKEN="${ACTION_SERVER_TOKEN:-$(new_secret)}"
rm -rf results/stories
rasa test core --model "$MODEL" --stories tests/stories --out results/stories \
  --fail-on-prediction-errors --quiet
echo "conversation tests passed: $(grep -c '^- story:' tests/stories/*.yml | awk -F: '{s+=$2} END {print s}') stories"
