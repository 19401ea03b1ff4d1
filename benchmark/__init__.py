from typing import Any

import yaml

from tuanjian.settings import CONFIG_FILE, ROOT

# The held-out NLU test set, one file per author (test_set.yml first).
TEST_FILES = sorted((ROOT / "tests" / "nlu").glob("test_set*.yml"))


def load_config() -> dict[str, Any]:
    """config.yml, as Rasa reads it."""
    return yaml.safe_load(CONFIG_FILE.read_text("utf-8"))


def pipeline_entry(name: str) -> dict[str, Any]:
    """The settings config.yml gives the pipeline component `name` (full or last part)."""
    config = load_config()
    return next(c for c in config["pipeline"] if c["name"].split(".")[-1] == name)


def fallback_settings() -> dict[str, float]:
    """The FallbackClassifier's threshold and ambiguity threshold in config.yml."""
    item = pipeline_entry("FallbackClassifier")
    return {"threshold": item["threshold"], "ambiguity": item.get("ambiguity_threshold", 0.1)}
