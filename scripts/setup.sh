#!/usr/bin/env bash
# Create .venv with Python 3.10 (Rasa 3.6 runs on 3.8-3.10; the project is tested on 3.10) and install the pinned
# dependencies. Re-running is cheap: it reinstalls only when the pins changed.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
  local candidates=()
  if command -v pyenv >/dev/null 2>&1; then
    for v in 3.10; do
      candidates+=("$(pyenv root)"/versions/"$v".*/bin/python)
    done
  fi
  candidates+=(python3.10 "$HOME"/.pyenv/versions/3.10.*/bin/python python3)
  for c in "${candidates[@]}"; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; then
      command -v "$c"
      return 0
    fi
  done
  return 1
}

if [ ! -x .venv/bin/python ]; then
  if ! PY=$(find_python); then
    echo "No Python 3.10 found (Rasa 3.6 needs 3.8-3.10; the project is tested on 3.10): install it, e.g. 'pyenv install 3.10.13' or 'apt-get install python3.10-venv'." >&2
    exit 1
  fi
  echo "Creating .venv with $PY"
  "$PY" -m venv .venv
fi

stamp=.venv/.installed
want=$(cat pyproject.toml requirements.lock | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "Installing pinned dependencies into .venv (first run takes a few minutes)"
  .venv/bin/python -m pip install -q --disable-pip-version-check -c requirements.lock -e '.[dev]'
  .venv/bin/rasa telemetry disable >/dev/null 2>&1 || true
  echo "$want" > "$stamp"
fi
