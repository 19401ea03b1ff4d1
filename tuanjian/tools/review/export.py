"""From the help desk's decisions to Rasa NLU training data (data/nlu/reviewed.yml).

Each wording the reviewers gave an intent becomes one example, written as the
assistant's normaliser reads it. A message is not written when
- it is in a test file (tests/nlu, tests/stories): refused, and said so, since a
  test file must never be trained on; an example already in reviewed.yml that a
  test file now holds is taken out again;
- the training data already has it (with the same intent: nothing to add; with
  another: the two disagree, and a person must settle it in data/nlu);
- it holds a run of four or more digits (a member number, phone digits): no
  member's number goes into the repository;
- its intent is not one a reviewer may give (tuanjian.backend.review.labels),
  or has left the domain.
The file is rewritten whole, sorted, so exporting twice changes nothing.
"""
from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tuanjian.backend.review import wording_of
from tuanjian.redaction import mask_digit_runs
from tuanjian.text import normalize

HEADER = """\
# Written by `python -m tuanjian.tools.review export` from the decisions of the
# help desk's review inbox (tuanjian/backend/review.py); change a decision there,
# not here: the next export rewrites this file.
"""
# Rasa would read "[text](entity)" or "{...}" in an example as an entity annotation.
_ANNOTATION = re.compile(r"\[[^\]]*\]\s*[({]")


@dataclass
class Export:
    examples: dict[str, list[str]]  # intent -> texts, as written
    added: list[tuple[str, str]] = field(default_factory=list)  # (text, intent) new in this export
    in_test_files: list[str] = field(default_factory=list)
    already_trained: list[tuple[str, str]] = field(default_factory=list)
    disagrees: list[tuple[str, str, str]] = field(default_factory=list)  # (text, labelled, trained)
    has_digits: list[str] = field(default_factory=list)
    unknown_intent: list[tuple[str, str]] = field(default_factory=list)
    unwritable: list[str] = field(default_factory=list)


def nlu_examples(paths: Iterable[Path]) -> list[tuple[str, str | None]]:
    """(text, intent) of every example in Rasa NLU YAML files, annotations removed."""
    from rasa.shared.nlu.training_data.loading import load_data

    examples: list[tuple[str, str | None]] = []
    for path in paths:
        for message in load_data(str(path)).intent_examples:
            examples.append((message.get("text"), message.get("intent")))
    return examples


def story_messages(paths: Iterable[Path]) -> list[str]:
    """The member messages of Rasa test stories, annotations removed."""
    from rasa.shared.nlu.training_data.entities_parser import replace_entities

    texts = []
    for path in paths:
        stories = (yaml.safe_load(path.read_text("utf-8")) or {}).get("stories") or []
        for story in stories:
            for step in story.get("steps") or []:
                if isinstance(step, dict) and isinstance(step.get("user"), str):
                    texts.append(replace_entities(step["user"].strip()))
    return texts


def messages_in_test_files(dirs: Iterable[Path]) -> set[str]:
    """The normalised texts of every test file's messages."""
    nlu, stories = [], []
    for directory in dirs:
        for path in sorted(Path(directory).rglob("*.yml")):
            content = yaml.safe_load(path.read_text("utf-8")) or {}
            if "nlu" in content:
                nlu.append(path)
            if "stories" in content:
                stories.append(path)
    texts = [text for text, _ in nlu_examples(nlu)] + story_messages(stories)
    return {wording_of(text) for text in texts} - {""}


def build_export(labelled: Iterable[dict[str, Any]], reviewed: Iterable[tuple[str, str | None]],
                 training: Iterable[tuple[str, str | None]], tests: set[str], intents: set[str]) -> Export:
    """What reviewed.yml holds after this export: its current examples, then the
    labelled messages, each checked as the module says."""
    trained: dict[str, set[str]] = defaultdict(set)
    for text, intent in training:
        if intent:
            trained[wording_of(text)].add(intent)
    export = Export(examples=defaultdict(list))
    kept: dict[str, str] = {}  # wording -> intent, in the new file
    candidates = [(text, intent, False) for text, intent in reviewed if intent]
    candidates += [(item["text"], item["intent"], True) for item in labelled]
    for text, intent, new in candidates:
        wording, written = wording_of(text), normalize(text)
        if not wording:
            continue
        if wording in tests:
            export.in_test_files.append(text)
        elif wording in kept:
            if kept[wording] != intent and new:
                export.disagrees.append((text, intent, kept[wording]))
        elif wording in trained:
            if intent in trained[wording]:
                export.already_trained.append((text, intent))
            else:
                export.disagrees.append((text, intent, ", ".join(sorted(trained[wording]))))
        elif mask_digit_runs(text) != text or mask_digit_runs(written) != written:
            export.has_digits.append(text)
        elif intent not in intents:
            export.unknown_intent.append((text, intent))
        elif _ANNOTATION.search(written) or written.startswith(("{", "/")):
            export.unwritable.append(text)
        else:
            kept[wording] = intent
            export.examples[intent].append(written)
            if new:
                export.added.append((written, intent))
    export.examples = {intent: sorted(texts) for intent, texts in sorted(export.examples.items())}
    return export


def render(export: Export) -> str:
    """The reviewed.yml text: Rasa NLU YAML, intents and examples sorted."""
    lines = [HEADER + 'version: "3.1"', "nlu:" if export.examples else "nlu: []"]
    for intent, texts in export.examples.items():
        lines += [f"- intent: {intent}", "  examples: |"] + [f"    - {text}" for text in texts]
    return "\n".join(lines) + "\n"
