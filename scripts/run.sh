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
python -m bot.backend.demo

mkdir -p var
rasa run actions --port 5055 --actions actions > var/actions.log 2>&1 &
ACTIONS_PID=$!
rasa run --model "$MODEL" --endpoints endpoints.yml --credentials credentials.yml \
  --port 5005 --enable-api --cors "*" > var/rasa.log 2>&1 &
SERVER_PID=$!
trap 'kill $SERVER_PID $ACTIONS_PID 2>/dev/null || true' EXIT
echo "Logs: var/rasa.log, var/actions.log"
# Waits for the server and prints the chat page's address; in a terminal it
# also chats there over REST (/stop to quit).
if [ -t 0 ]; then
  python -m bot.channels.web --server http://localhost:5005 --chat
else
  python -m bot.channels.web --server http://localhost:5005
  wait $SERVER_PID
fi
