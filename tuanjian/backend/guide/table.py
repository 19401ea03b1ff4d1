
"""Reading the destination decision table (tuanjian/backend/guide/destinations.yml)."""
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, cast

import yaml

TABLE_FILE = Path(__file__).with_name("destinations.yml")
Facts = Mapping[str, Any]


@dataclass(frozen=True)
class Table:
    questions: tuple[dict[str, Any], ...]
    values: dict[str, list[Any]]
    rows: tuple[dict[str, Any], ...]
    answers: dict[str, dict[str, bool]]
    age_limit: int
    narrower: dict[str, list[str]]

    def answer(self, entity: str, value: Any) -> bool | None:
        """The yes/no an extracted entity value means, or None if it means neither."""
        return self.answers.get(entity, {}).get(value)

    def holds(self, condition: Mapping[str, list[Any]], facts: Facts) -> bool:
        return all(facts.get(fact) in allowed for fact, allowed in condition.items())

    def questions_needed(self, facts: Facts) -> list[str]:
        """The facts still to ask, in order, given what is known."""
        return [q["fact"] for q in self.questions
                if facts.get(q["fact"]) is None and self.holds(q.get("ask_if", {}), facts)]

    def all_questions(self, facts: Facts) -> list[str]:
        """Every fact the table asks about for these facts, known or not."""
        return [q["fact"] for q in self.questions if self.holds(q.get("ask_if", {}), facts)]

    def destination(self, facts: Facts) -> str | None:
        """The destination once nothing more is needed, else None."""
        if self.questions_needed(facts):
            return None
        return next((row["destination"] for row in self.rows if self.holds(row["when"], facts)), None)

    def first_asked(self, candidates: list[str], facts: Facts) -> str:
        """Of facts answered alike (has a league org?), the one these facts ask about."""
        asked = self.all_questions(facts)
        return next((c for c in candidates if c in asked), candidates[0])

    def names_an_organisation(self, destination: str) -> bool:
        row = next(row for row in self.rows if row["destination"] == destination)
        return cast("bool", row.get("organisation", True))

    def situations(self, said: list[str]) -> list[str]:
        """The situations a message states, less those a narrower one said with them covers."""
        covered = {broad for s in said for broad in self.narrower.get(s, [])}
        return [s for s in said if s not in covered]

    def is_valid(self, fact: str, value: Any) -> bool:
        return value in self.values.get(fact, [])

    def dependants(self, fact: str) -> list[str]:
        """Facts whose question depends on this one (to forget when it changes)."""
        return [q["fact"] for q in self.questions if fact in q.get("ask_if", {})]


@cache
def load_table(path: Path = TABLE_FILE) -> Table:
    data = yaml.safe_load(path.read_text("utf-8"))
    return Table(tuple(data["questions"]), data["facts"], tuple(data["rows"]), data["answers"],
                 data["age_limit"], data.get("narrower_situations", {}))
