"""The report's figures and HTML on the known set of conversations (conftest.py)."""
from datetime import date, datetime, timezone

import pytest
import sqlalchemy as sa

from tuanjian.tools.report.render import faq_titles, render_html
from tuanjian.tools.report.report import Period, Question, build_report, group_questions, period_from_args

PERIOD = Period(date(2024, 6, 10), date(2024, 6, 16), timezone.utc)
NOW = datetime(2024, 6, 17, 8, tzinfo=timezone.utc)


@pytest.fixture
def report(tracker_url, helpdesk):
    engine = sa.create_engine(tracker_url, future=True)
    try:
        yield build_report(engine, helpdesk, PERIOD, now=NOW)
    finally:
        engine.dispose()


def test_conversations_and_deflection(report, expected):
    assert report.conversations == expected["conversations"]
    assert report.conversations_with_ticket == expected["conversations_with_ticket"]
    assert report.deflected == expected["deflected"]
    assert report.left_after_fallback == expected["left_after_fallback"]
    assert report.deflection_rate == pytest.approx(expected["deflection_rate"])


def test_fallback_rate_leaves_out_messages_to_staff(report, expected):
    assert report.member_messages == expected["member_messages"]
    assert report.fallback_messages == expected["fallback_messages"]
    assert report.messages_to_staff == expected["messages_to_staff"]
    assert report.fallback_rate == pytest.approx(7 / 17)


def test_answers_ratings_and_reasons(report, expected):
    assert report.answers_per_faq == expected["answers_per_faq"]
    assert list(report.answers_per_faq) == ["faq_forgot_password", "faq_approval_pending"]
    assert report.ratings_per_faq == expected["ratings_per_faq"]
    assert (report.ratings_up, report.ratings_down) == (2, 1)
    assert report.handoff_reasons == expected["handoff_reasons"]
    assert report.tickets == expected["tickets"]


def test_unanswered_questions_grouped(report, expected):
    assert report.unanswered_questions == expected["unanswered_questions"]
    got = [(g.size, g.representative, [text for text, _ in g.variants]) for g in report.unanswered]
    assert got == expected["groups"]


def test_daily_figures(report):
    daily = {d.day.isoformat(): (d.conversations, d.with_ticket) for d in report.daily}
    assert len(daily) == 7
    assert daily == {"2024-06-10": (1, 0), "2024-06-11": (3, 1), "2024-06-12": (2, 1),
                     "2024-06-13": (2, 1), "2024-06-14": (1, 0), "2024-06-15": (1, 0),
                     "2024-06-16": (0, 0)}


def test_days_are_counted_in_the_time_zone(tracker_url, helpdesk):
    # In Beijing, web-j's message (15 June 23:00 UTC) is on the 16th and web-k's
    # (10 June 00:10 UTC) is 08:10 on the 10th, its greeting (23:55 UTC) 07:55.
    engine = sa.create_engine(tracker_url, future=True)
    try:
        beijing = period_from_args("2024-06-16", "2024-06-16", "Asia/Shanghai")
        report = build_report(engine, helpdesk, beijing, now=NOW)
        assert report.conversations == 1
        assert report.unanswered[0].representative.startswith("<script>")
        tenth = build_report(engine, helpdesk, period_from_args("2024-06-10", "2024-06-10", "Asia/Shanghai"))
        assert (tenth.conversations, tenth.member_messages, tenth.fallback_messages) == (1, 2, 1)
    finally:
        engine.dispose()


def test_an_empty_range(tracker_url, helpdesk):
    engine = sa.create_engine(tracker_url, future=True)
    try:
        report = build_report(engine, helpdesk, Period(date(2023, 1, 1), date(2023, 1, 31)), now=NOW)
    finally:
        engine.dispose()
    assert (report.conversations, report.member_messages, report.tickets) == (0, 0, 0)
    assert report.deflection_rate is None and report.fallback_rate is None
    assert report.unanswered == [] and report.answers_per_faq == {} and report.handoff_reasons == {}
    html = render_html(report)
    assert "期间没有会话" in html and "—" in html


def test_html_shows_the_figures(report, root):
    html = render_html(report, faq_titles(root / "domain" / "responses.yml"))
    assert "2024-06-10 至 2024-06-16" in html
    assert "40.0%" in html and "4 / 10 个会话的最后一问得到回答，且未转人工" in html
    assert "兜底后离开" in html
    assert "41.2%" in html and "7 / 17 条消息未识别" in html
    assert "忘记密码怎么办" in html and "<code>faq_forgot_password</code>" in html
    assert "<td class=n>3</td><td class=n>1</td><td class=n>1</td><td class=n>50.0%</td>" in html
    assert "我的团费怎么交" in html and "团费在哪里交（1）" in html
    assert "主动要求转人工" in html and "连续两次没听懂" in html
    assert html.count("<svg") == 5  # daily, answers, ratings, unanswered questions, reasons
    for forbidden in ("<script", "http://", "https://", "<img", "<link"):
        assert forbidden not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_html_escapes_markup_from_questions(report, hostile):
    html = render_html(report)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;怎么转团关系" in html


def test_similar_questions_are_grouped_and_others_are_not():
    texts = ["忘记密码怎么办", "密码忘了怎么办", "忘记密码了咋办", "怎么退团", "我想退团", "天气怎么样"]
    groups = group_questions([Question(t, n) for n, t in enumerate(texts)])
    assert [(g.size, g.representative) for g in groups] == [
        (3, "忘记密码怎么办"), (2, "怎么退团"), (1, "天气怎么样")]
    # The same wording counts in one group, and the most frequent one represents it.
    groups = group_questions([Question(t, n) for n, t in enumerate(["怎么退团", "我想退团", "我想退团"])])
    assert [(g.size, g.representative, g.variants) for g in groups] == [
        (3, "我想退团", [("我想退团", 2), ("怎么退团", 1)])]
    assert group_questions([Question("🙂", 0), Question("？？", 1)]) == []


def test_a_higher_threshold_splits_groups():
    texts = ["怎么开团员证明", "团员证明在哪开"]
    questions = [Question(t, n) for n, t in enumerate(texts)]
    assert len(group_questions(questions, threshold=0.4)) == 1
    assert len(group_questions(questions, threshold=0.99)) == 2


def test_period_defaults_to_the_last_30_days():
    period = period_from_args(None, None, "UTC", today=date(2024, 6, 30))
    assert (period.first, period.last) == (date(2024, 6, 1), date(2024, 6, 30))
    assert period.end - period.start == (date(2024, 7, 1) - date(2024, 6, 1))
    with pytest.raises(ValueError):
        period_from_args("2024-06-30", "2024-06-01", "UTC")
