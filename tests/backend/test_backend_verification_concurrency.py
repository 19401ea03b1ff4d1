"""Concurrent verification attempts on PostgreSQL, each in its own connection and
committed transaction (the other backend tests share one rolled-back connection)."""
import threading
import time

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from tests.conftest import NOW, FakeClock, committed_postgres
from tuanjian.backend.demo import load_demo
from tuanjian.backend.models import VerificationThrottle
from tuanjian.backend.verification import Conversation, VerificationService


@pytest.fixture
def committed():
    """A freshly migrated PostgreSQL schema with the demo data, committed."""
    with committed_postgres("tuanjian_concurrency") as engine:
        factory = sessionmaker(bind=engine, future=True)
        with factory() as session, session.begin():
            load_demo(session, NOW)
        yield factory


def test_a_success_while_a_guess_waits_for_the_same_number(committed):
    service = VerificationService(committed, FakeClock(NOW))
    conversation = Conversation("web", "race", "")
    assert service.attempt(conversation, "2019001", "0000").outcome == "failed"  # the row exists now
    key = service.member_key("2019001")
    outcomes, errors = {}, []

    def attempt(name, digits):
        try:
            outcomes[name] = service.attempt(Conversation("web", name, ""), "2019001", digits).outcome
        except Exception as error:  # noqa: BLE001 - the test reports any
            errors.append(error)

    with committed() as blocker, blocker.begin():
        blocker.execute(select(VerificationThrottle).where(VerificationThrottle.key == key).with_for_update())
        right = threading.Thread(target=attempt, args=("right", "1234"))
        wrong = threading.Thread(target=attempt, args=("wrong", "9999"))
        right.start()
        time.sleep(0.3)  # queued first for the row's lock
        wrong.start()
        time.sleep(0.3)
    right.join(10)
    wrong.join(10)
    assert errors == [] and outcomes == {"right": "verified", "wrong": "failed"}
    with committed() as session:
        assert session.execute(select(VerificationThrottle.failures)
                               .where(VerificationThrottle.key == key)).scalar_one() == 1


def test_parallel_guesses_on_a_fresh_number_stop_at_the_limit(committed):
    service = VerificationService(committed, FakeClock(NOW))
    outcomes = []
    lock = threading.Lock()

    def guess(n):
        outcome = service.attempt(Conversation("web", f"g{n}", ""), "2019002", f"{n:04d}").outcome
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    # Each attempt waited for the one before: exactly four failures, then locked.
    assert sorted(outcomes) == sorted(["failed"] * 4 + ["locked"] * 8)
    assert service.attempt(Conversation("web", "late", ""), "2019002", "5678").outcome == "locked"
