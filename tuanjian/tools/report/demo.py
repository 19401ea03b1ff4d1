"""Play sample conversations through a running assistant, for a filled report.

    scripts/run.sh                                        # in another terminal
    python -m tuanjian.tools.report.demo --server http://localhost:5005
    python -m tuanjian.tools.report --from <today> --to <today>      # printed at the end

The conversations (tuanjian/tools/report/sample_conversations.yml) are sent to the REST
webhook, one sender id per conversation; the assistant records them in its
tracker store, and its actions open tickets and store ratings as for a member.
The tracker store must be the SQL one (endpoints.yml) for the report to see them.
"""
from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from tuanjian import settings
from tuanjian.polling import answers_ok, wait_until
from tuanjian.tools.report.report import DEFAULT_TIMEZONE, timezone_named
from tuanjian.tools.report.texts import texts

SAMPLE = Path(__file__).with_name("sample_conversations.yml")
WEBHOOK = "/webhooks/rest/webhook"


def load_sample(path: Path = SAMPLE) -> list[dict[str, Any]]:
    conversations = (yaml.safe_load(Path(path).read_text("utf-8")) or {}).get("conversations") or []
    for conversation in conversations:
        if not conversation.get("name") or not conversation.get("messages"):
            raise ValueError(f"{path}: every conversation needs a name and messages")
    return conversations


def server_is_up(server: str, timeout: float = 120.0) -> bool:
    """Wait until the Rasa server answers GET / (it does once the model is loaded)."""
    return wait_until(lambda: answers_ok(server.rstrip("/") + "/"), timeout)


def send(server: str, sender: str, message: str, timeout: float = 60.0) -> list[dict[str, Any]]:
    body = json.dumps({"sender": sender, "message": message}, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(server.rstrip("/") + WEBHOOK, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read().decode("utf-8") or "[]")


def _text(name: str) -> str:
    """A line of the demo's output ("demo" in texts.yml)."""
    return texts()["demo"][name]


def _first_line(replies: list[dict[str, Any]]) -> str:
    texts = [r.get("text") or "" for r in replies if r.get("text")]
    if not texts:
        return _text("no_reply")
    line = texts[0].strip().splitlines()[0]
    return (line[:50] + "…") if len(line) > 50 or len(texts[0].strip().splitlines()) > 1 else line


def play(server: str, conversations: list[dict[str, Any]], prefix: str,
         say: Callable[[str], None] = print) -> int:
    """Send every conversation; return the number of messages sent."""
    sent = 0
    for number, conversation in enumerate(conversations, 1):
        sender = f"{prefix}-{number:02d}"
        note = f" — {conversation['note']}" if conversation.get("note") else ""
        say(f"[{number}/{len(conversations)}] {conversation['name']}{note}")
        for message in conversation["messages"]:
            replies = send(server, sender, str(message))
            sent += 1
            say("    " + _text("member").format(message=message))
            say("    " + _text("assistant").format(reply=_first_line(replies)))
    return sent


def recorded_events(tracker_db: str, prefix: str) -> int | None:
    """Events of this run in the local tracker store; None if there is none."""
    import sqlalchemy as sa

    from tuanjian.tracker_events import EVENTS

    engine = sa.create_engine(tracker_db, future=True)
    try:
        if engine.dialect.name == "sqlite" and not Path(engine.url.database or "").is_file():
            return None
        if not sa.inspect(engine).has_table(EVENTS.name):
            return None
        with engine.connect() as connection:
            query = sa.select(sa.func.count()).where(EVENTS.c.sender_id.like(f"{prefix}-%"))
            return connection.execute(query).scalar_one()
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tuanjian.tools.report.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="http://localhost:5005", help="the Rasa server (default: %(default)s)")
    parser.add_argument("--sample", type=Path, default=SAMPLE, help="conversations (default: %(default)s)")
    parser.add_argument("--tracker-db", default=settings.tracker_url(),
                        help="the tracker store to check afterwards, for a local server (default: var/tracker.db)")
    parser.add_argument("--wait", type=float, default=120.0, help="seconds to wait for the server (default: 120)")
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
    args = parser.parse_args(argv)

    conversations = load_sample(args.sample)
    if not server_is_up(args.server, args.wait):
        print(f"No assistant answers at {args.server}: start it with scripts/run.sh and try again.",
              file=sys.stderr)
        return 1
    now = datetime.now(timezone_named(DEFAULT_TIMEZONE))
    prefix = f"demo-{now.strftime('%Y%m%d%H%M%S')}"
    try:
        sent = play(args.server, conversations, prefix, (lambda _: None) if args.quiet else print)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"The assistant at {args.server} failed: {exc}", file=sys.stderr)
        return 1
    print(f"\nPlayed {len(conversations)} conversations ({sent} messages) as senders {prefix}-NN.")
    if urlsplit(args.server).hostname in ("localhost", "127.0.0.1", "::1"):
        events = recorded_events(args.tracker_db, prefix)
        if not events:
            print("Warning: the tracker store did not record them. Set in endpoints.yml\n"
                  "  tracker_store: {type: SQL, dialect: sqlite, db: var/tracker.db}\n"
                  "restart scripts/run.sh and run this again.", file=sys.stderr)
    day = now.date().isoformat()
    print("Now build the report and open var/report.html in a browser:\n"
          f"  .venv/bin/python -m tuanjian.tools.report --from {day} --to {day}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
