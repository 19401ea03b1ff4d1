"""Two reviewers, and two replicas, at once on PostgreSQL, each in its own
connection and committed transaction."""
import threading
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from tests.backend.test_backend_review import Tracker, said, started
from tests.conftest import NOW, FakeClock, committed_postgres
from tuanjian.backend.models import ReviewMessage
from tuanjian.backend.review import ReviewService
from tuanjian.backend.rules import DomainError

ROUNDS = 10


@pytest.fixture
def committed():
    with committed_postgres("tuanjian_review") as engine:
        yield sessionmaker(bind=engine, future=True)


def at_once(*calls):
    """Run the calls in threads started together; their results or errors."""
    results: list = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(index, call):
        start.wait()
        try:
            results[index] = call()
        except Exception as error:  # noqa: BLE001 - the test looks at every outcome
            results[index] = error
    threads = [threading.Thread(target=run, args=(n, call)) for n, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_two_reviewers_deciding_one_wording_at_once_one_wins_the_other_gets_409(committed):
    reviews = ReviewService(committed, FakeClock(NOW))
    now = datetime(2024, 6, 15, tzinfo=timezone.utc)
    for n in range(ROUNDS):
        with committed() as s, s.begin():
            rows = [ReviewMessage(store="test", event_id=2 * n + k, sender_id=f"rest:{k}", text=f"问题{n}",
                                  wording=f"问题{n}", reasons="fallback", suggestions=[], said_at=now)
                    for k in (0, 1)]
            s.add_all(rows)
            s.flush()
            ids = [row.id for row in rows]
        # Each reviewer holds another message of the same wording.
        first, second = ids
        results = at_once(lambda first=first: reviews.decide(first, "dismissed", "wang", set()),
                          lambda second=second: reviews.decide(second, "intent", "li", {"out_of_scope"},
                                                               label="out_of_scope"))
        won = [r for r in results if isinstance(r, dict)]
        lost = [r for r in results if isinstance(r, DomainError)]
        assert len(won) == 1 and won[0]["messages"] == 2, results
        assert len(lost) == 1 and lost[0].code == "already_decided", results
        with committed() as s:
            deciders = s.execute(select(ReviewMessage.decided_by).where(ReviewMessage.wording == f"问题{n}")).scalars()
            assert set(deciders) == {won[0]["decided_by"]}


def test_two_replicas_collecting_at_once_keep_each_message_once(committed, tmp_path):
    tracker = Tracker(tmp_path / "tracker.db")
    for n in range(30):
        tracker.add(f"rest:{n}", *started(n), *said(n + 0.5, f"没听懂的问题{n}", "nlu_fallback", 0.1,
                                                    "action_suggest_faqs"))
    replicas = [ReviewService(committed, FakeClock(NOW)) for _ in range(2)]
    results = at_once(*[lambda r=r: r.collect(tracker.engine, most=40) for r in replicas for _ in range(3)])
    assert not [r for r in results if isinstance(r, Exception)], results
    while replicas[0].collect(tracker.engine, most=40).unread:
        pass
    tracker.close()
    with committed() as s:
        assert s.execute(select(func.count()).select_from(ReviewMessage)).scalar() == 30
        assert s.execute(select(func.count(func.distinct(ReviewMessage.text)))).scalar() == 30
