"""The report's review figures: the inbox (awaiting, labelled per intent) and
the deflection of the conversations each model served, before and after a retrain."""
from datetime import date, timezone

import pytest

from tests.backend.test_backend_review import Tracker, said, started
from tests.conftest import NOW
from tuanjian.backend.review import ReviewService
from tuanjian.tools.report.render import render_html
from tuanjian.tools.report.report import Period, build_report

PERIOD = Period(date(2024, 6, 10), date(2024, 6, 16), timezone.utc)
MISSED = ("nlu_fallback", 0.2, "action_suggest_faqs")


@pytest.fixture
def tracker(tmp_path):
    store = Tracker(tmp_path / "tracker.db")
    # The old model: one conversation answered, one left after a fallback.
    store.add("rest:a", *started(0), *said(1, "忘记密码怎么办", "faq_forgot_password", model="old-model-0001"))
    store.add("rest:b", *started(2), *said(3, "团员证明在哪开", *MISSED, model="old-model-0001"))
    # After the retrain: both answered.
    store.add("rest:c", *started(10), *said(11, "团员证明在哪开", "out_of_scope", model="new-model-0002"))
    store.add("rest:d", *started(12), *said(13, "密码忘了", "faq_forgot_password", model="new-model-0002"),
              *said(14, "团费标准是多少", *MISSED, model="new-model-0002"))
    yield store
    store.close()


def test_deflection_per_model_and_the_inbox(tracker, sessions, clock):
    reviews = ReviewService(sessions, clock)
    reviews.collect(tracker.engine)
    first = reviews.pending()["wordings"][-1]
    reviews.decide(first["id"], "intent", "wang", {"out_of_scope"}, label="out_of_scope")
    report = build_report(tracker.engine, sessions, PERIOD, now=NOW)
    assert [(m.model_id, m.conversations, m.deflected) for m in report.models] == [
        ("old-model-0001", 2, 1), ("new-model-0002", 2, 1)]
    assert report.models[0].first_seen < report.models[1].first_seen
    assert report.review is not None
    assert (report.review.awaiting, report.review.labelled) == (1, {"out_of_scope": 1})
    page = render_html(report, {"faq_forgot_password": "忘记密码"})
    assert "old-model-" in page and "new-model-" in page and "50.0%" in page
    assert "现有 1 种说法待复核" in page


def test_a_tracker_store_without_model_ids_shows_no_model_table(tracker, sessions):
    plain = Tracker(tracker.engine.url.database.replace("tracker.db", "plain.db"))
    plain.add("rest:x", *started(0), *said(1, "忘记密码怎么办", "faq_forgot_password"))
    report = build_report(plain.engine, sessions, PERIOD, now=NOW)
    plain.close()
    assert report.models == [] and "期间内的消息没有记录模型" in render_html(report)
