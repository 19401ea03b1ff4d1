from pathlib import Path
from typing import Dict

import yaml

ROOT = Path(__file__).resolve().parent.parent
# The held-out NLU test set, one file per author (test_set.yml first).
TEST_FILES = sorted((ROOT / "tests" / "nlu").glob("test_set*.yml"))


def pipeline_entry(name: str) -> Dict[str, object]:
    """The settings config.yml gives the pipeline component `name` (full or last part)."""
    config = yaml.safe_load((ROOT / "config.yml").read_text("utf-8"))
    return next(c for c in config["pipeline"] if c["name"].split(".")[-1] == name)
