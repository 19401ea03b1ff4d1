"""Build the help-desk report: an HTML file with charts for a date range.

    python -m tuanjian.tools.report --from 2026-11-01 --to 2026-11-30 [--out var/report.html]

Reads Rasa's SQL tracker store (endpoints.yml: tracker_store type SQL,
var/tracker.db) and the tickets and ratings of the backend database
(TUANJIAN_DATABASE_URL, else var/tuanjian.db).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import sessionmaker

from tuanjian import settings
from tuanjian.backend import db
from tuanjian.tools.report.render import faq_titles, percent, render_html
from tuanjian.tools.report.report import DEFAULT_THRESHOLD, DEFAULT_TIMEZONE, build_report, period_from_args
from tuanjian.tracker_events import EVENTS, tracker_engine

DEFAULT_OUT = settings.VAR_DIR / "report.html"
RESPONSES = settings.DOMAIN_DIR / "responses.yml"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tuanjian.tools.report", description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="first", metavar="YYYY-MM-DD",
                        help="first day (default: 29 days before --to)")
    parser.add_argument("--to", dest="last", metavar="YYYY-MM-DD", help="last day, included (default: today)")
    parser.add_argument("--tracker-db", default=settings.tracker_url(), metavar="URL",
                        help="SQLAlchemy URL of Rasa's SQL tracker store (default: sqlite:///var/tracker.db)")
    parser.add_argument("--backend-db", default=None, metavar="URL",
                        help="SQLAlchemy URL of the backend (default: $TUANJIAN_DATABASE_URL, else var/tuanjian.db)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), type=Path, help="HTML file (default: var/report.html)")
    parser.add_argument("--tz", default=DEFAULT_TIMEZONE,
                        help=f"time zone the days are counted in (default: {DEFAULT_TIMEZONE})")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help=f"cosine similarity to group unanswered questions (default: {DEFAULT_THRESHOLD})")
    parser.add_argument("--top", type=int, default=20, help="unanswered-question groups listed (default: 20)")
    return parser.parse_args(argv)


def _check_tracker(engine: sa.engine.Engine, url: str) -> str | None:
    """Why the tracker store cannot be read, or None."""
    if engine.dialect.name == "sqlite":
        path = engine.url.database
        if not path or path == ":memory:" or not Path(path).is_file():
            return (f"no tracker store at {url}: set tracker_store (type SQL, db var/tracker.db) in "
                    f"endpoints.yml, restart scripts/run.sh and talk to the assistant "
                    f"(python -m tuanjian.tools.report.demo plays sample conversations)")
    if not sa.inspect(engine).has_table(EVENTS.name):
        return f"{url} has no '{EVENTS.name}' table: it is not a Rasa SQL tracker store"
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        period = period_from_args(args.first, args.last, args.tz)
    except ValueError as exc:
        print(f"tuanjian.tools.report: {exc}", file=sys.stderr)
        return 2
    tracker = tracker_engine(args.tracker_db)
    backend = db.make_engine(args.backend_db) if args.backend_db else db.get_engine()
    try:
        problem = _check_tracker(tracker, args.tracker_db)
        if problem:
            print(f"tuanjian.tools.report: {problem}", file=sys.stderr)
            return 2
        if not sa.inspect(backend).has_table("review_messages"):
            print("tuanjian.tools.report: the backend database is not migrated yet; migrate it with "
                  "`python -m tuanjian.backend.demo` (or db.migrate())", file=sys.stderr)
            return 2
        report = build_report(tracker, sessionmaker(bind=backend, future=True), period, args.threshold)
    except DBAPIError as exc:
        print(f"tuanjian.tools.report: cannot read the databases: {exc.orig}", file=sys.stderr)
        return 2
    finally:
        tracker.dispose()
        if args.backend_db:
            backend.dispose()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render_html(report, faq_titles(RESPONSES), args.top), "utf-8")
    print(f"{args.out}: {period.first} to {period.last}, {report.conversations} conversations, "
          f"deflection {percent(report.deflection_rate)}, {report.left_after_fallback} left after a fallback, "
          f"fallback {percent(report.fallback_rate)}, "
          f"{report.tickets} tickets, {len(report.unanswered)} groups of unanswered questions, "
          f"{report.review.awaiting if report.review else 0} wordings awaiting review")
    return 0


if __name__ == "__main__":
    sys.exit(main())
