#!/usr/bin/env bash
# Set up, train if needed, load the demo data into an empty database, start the
# action server and the Rasa server (REST, web chat page, WeChat on :5005),
# print the chat page's address and chat in this terminal. Without a terminal
# it just serves.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/common.sh
train_if_needed
# The embedded SQLite database (var/tuanjian.db) gets its schema from the
# migrations and the demo data on first run; TUANJIAN_DATABASE_URL points elsewhere.
python -m tuanjian.backend.demo

# Secrets the embedded default needs, generated for this run when not set
# (docs/security.md): the action server's shared secret, the key that
# signs the web page's session ids and the key of the verification throttle's
# digests (a new one forgets the throttle's counts: set it to keep them).
export ACTION_SERVER_TOKEN="${ACTION_SERVER_TOKEN:-$(new_secret)}"
export WEB_SESSION_SECRET="${WEB_SESSION_SECRET:-$(new_secret)}"
export TUANJIAN_THROTTLE_KEY="${TUANJIAN_THROTTLE_KEY:-$(new_secret)}"
# Rasa's HTTP API (trackers, model management) stays off unless an operator
# asks for it, and then only with a secret from the environment.
server_args=()
if [ "${RASA_ENABLE_API:-0}" = "1" ]; then
  if [ -n "${RASA_JWT_SECRET:-}" ]; then
    server_args+=(--enable-api --jwt-secret "$RASA_JWT_SECRET")
  elif [ -n "${RASA_AUTH_TOKEN:-}" ]; then
    server_args+=(--enable-api --auth-token "$RASA_AUTH_TOKEN")
  else
    echo "RASA_ENABLE_API=1 needs RASA_AUTH_TOKEN or RASA_JWT_SECRET: refusing to open Rasa's HTTP API without one." >&2
    exit 1
  fi
fi
# CORS: same-origin unless origins are listed; never "*".
if [ -n "${TUANJIAN_CORS_ORIGINS:-}" ]; then
  case " $TUANJIAN_CORS_ORIGINS " in
    *" * "*|*'*'*) echo "TUANJIAN_CORS_ORIGINS must list origins, not '*'." >&2; exit 1 ;;
  esac
  # shellcheck disable=SC2206
  server_args+=(--cors $TUANJIAN_CORS_ORIGINS)
fi

mkdir -p var
python -m actions.server --port 5055 > var/actions.log 2>&1 &
ACTIONS_PID=$!
rasa run --model "$MODEL" --endpoints endpoints.yml --credentials credentials.yml \
  --port 5005 "${server_args[@]}" > var/rasa.log 2>&1 &
SERVER_PID=$!
trap 'kill $SERVER_PID $ACTIONS_PID 2>/dev/null || true' EXIT
echo "Logs: var/rasa.log, var/actions.log"
# Waits for the server and prints the chat page's address; in a terminal it
# also chats there over REST (/stop to quit).
if [ -t 0 ]; then
  python -m tuanjian.rasa_server.channels.web --server http://localhost:5005 --chat
else
  python -m tuanjian.rasa_server.channels.web --server http://localhost:5005
  wait $SERVER_PID
fi
