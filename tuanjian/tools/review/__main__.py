"""The review inbox's labelled messages as training data.

    python -m tuanjian.tools.review export [--out data/nlu/reviewed.yml]

Reads the decisions in the backend database (TUANJIAN_DATABASE_URL, else
var/tuanjian.db) and writes every wording labelled with an intent to
data/nlu/reviewed.yml (see tuanjian.tools.review.export for what is refused).
Then `rasa train` (scripts/run.sh trains when data changed) and
`scripts/bench.sh` show the change on the test files.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import sessionmaker

from tuanjian import settings
from tuanjian.backend import db
from tuanjian.backend.review import ReviewService, labels
from tuanjian.redaction import mask_digit_runs
from tuanjian.tools.review.export import build_export, messages_in_test_files, nlu_examples, render

SHOWN = 20  # messages listed per kind of refusal


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tuanjian.tools.review", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write the labelled messages as Rasa NLU training data")
    export.add_argument("--out", type=Path, default=settings.REVIEWED_NLU_FILE,
                        help="the file written (default: data/nlu/reviewed.yml)")
    export.add_argument("--data", type=Path, default=settings.NLU_DATA_DIR,
                        help="the training data checked for duplicates (default: data/nlu)")
    export.add_argument("--tests", type=Path, nargs="+", default=list(settings.TEST_DATA_DIRS),
                        help="directories of test files whose messages are refused (default: tests/nlu tests/stories)")
    export.add_argument("--domain", type=Path, default=settings.DOMAIN_DIR, help="the domain (default: domain/)")
    export.add_argument("--backend-db", default=None, metavar="URL",
                        help="SQLAlchemy URL of the backend (default: $TUANJIAN_DATABASE_URL, else var/tuanjian.db)")
    return parser.parse_args(argv)


def _list(title: str, items: list[str]) -> None:
    if not items:
        return
    print(f"{title}: {len(items)}")
    for item in items[:SHOWN]:
        print(f"  {item}")
    if len(items) > SHOWN:
        print(f"  ... and {len(items) - SHOWN} more")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from rasa.shared.core.domain import Domain

    engine = db.make_engine(args.backend_db) if args.backend_db else db.get_engine()
    try:
        service = ReviewService(sessionmaker(bind=engine, future=True))
        labelled, new_topics = service.labelled(), service.new_topics()
    except DBAPIError as exc:
        print(f"tuanjian.tools.review: cannot read the backend database: {exc.orig}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    out = args.out.resolve()
    training_files = [p for p in sorted(args.data.rglob("*.yml")) if p.resolve() != out]
    reviewed = nlu_examples([out]) if out.is_file() else []
    export = build_export(labelled, reviewed, nlu_examples(training_files), messages_in_test_files(args.tests),
                          set(labels(Domain.load(str(args.domain)).intents)))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(export), "utf-8")
    total = sum(len(texts) for texts in export.examples.values())
    print(f"{args.out}: {total} examples, {len(export.added)} new")
    _list("new", [f"{intent}: {text}" for text, intent in export.added])
    _list("refused, in a test file (never trained on)", export.in_test_files)
    _list("not written, already in the training data", [f"{i}: {t}" for t, i in export.already_trained])
    _list("not written, the training data or another decision says otherwise (settle it in data/nlu)",
          [f"{t} (labelled {i}, elsewhere {other})" for t, i, other in export.disagrees])
    _list("not written, four or more digits (a number) in the text", [mask_digit_runs(t) for t in export.has_digits])
    _list("not written, the intent is not one a reviewer may give (or left the domain)",
          [f"{i}: {t}" for t, i in export.unknown_intent])
    _list("not written, reads as an entity annotation or a button", export.unwritable)
    _list("new topics (add an intent and examples by hand)",
          [f"{t['note']} ({t['decided_by']}): {mask_digit_runs(t['text'])}" for t in new_topics])
    if export.added:
        print("next: retrain (scripts/run.sh trains when data changed, or `rasa train`), then "
              "scripts/bench.sh for the test files before and after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
