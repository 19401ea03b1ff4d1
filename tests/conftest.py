import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def domain_dict():
    """The domain as the action server receives it from Rasa."""
    from rasa.shared.core.domain import Domain

    return Domain.load(str(ROOT / "domain")).as_dict()


@pytest.fixture(scope="session")
def seed_text() -> str:
    return (ROOT.parent / "shared" / "seed" / "000_b81276723549ac76.txt").read_text("utf-8")
