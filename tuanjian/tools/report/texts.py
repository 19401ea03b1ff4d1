"""The report's texts (labels, sentences, reason titles, question words), from texts.yml.

They live in tuanjian/tools/report/texts.yml, not in the code; `texts()` reads the file
once and returns the same dict every time (do not change it).
"""
from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

TEXTS_FILE = Path(__file__).with_name("texts.yml")


@cache
def texts() -> dict[str, Any]:
    import yaml

    return yaml.safe_load(TEXTS_FILE.read_text("utf-8"))
