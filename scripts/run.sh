#!/usr/bin/env bash
# Set up, train if needed, start the action server and the Rasa server (REST
# API on :5005), and chat in this terminal. Without a terminal it just serves.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/common.sh
train_if_needed
# The embedded SQLite database (var/tuanjian.db) gets its schema from the
# migrations and the demo data on first run; TUANJIAN_DATABASE_URL points elsewhere.
python -m bot.backend.demo

rasa run actions --port 5055 --actions actions &
ACTIONS_PID=$!
trap 'kill $ACTIONS_PID 2>/dev/null || true' EXIT

SERVER_ARGS=(--model "$MODEL" --endpoints endpoints.yml --credentials credentials.yml
             --port 5005 --enable-api --cors "*")
if [ -t 0 ]; then
  echo "Chat below (REST API at http://localhost:5005/webhooks/rest/webhook); /stop to quit."
  rasa shell "${SERVER_ARGS[@]}"
else
  rasa run "${SERVER_ARGS[@]}"
fi
