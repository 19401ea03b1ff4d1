"""What a conversation's last question came to, from its tracker rows: the
reply decides (not the message's intent), ratings and non-questions leave it
as it was, and a 👎 without a ticket is not deflection."""
import json
from collections import Counter
from datetime import date, datetime, timezone
from types import SimpleNamespace

import pytest

from tuanjian.tools.report.report import (
    ANSWERED,
    FELL_BACK,
    RATED_DOWN,
    Period,
    TrackerFigures,
    _read_sender,
)

PERIOD = Period(date(2024, 6, 10), date(2024, 6, 16), timezone.utc)
T0 = datetime(2024, 6, 11, 9, tzinfo=timezone.utc).timestamp()


def rows(*steps):
    """("user", intent[, rating]) and ("action", name) steps as tracker rows, after a session start."""
    out = [SimpleNamespace(type_name="session_started", intent_name=None, action_name=None, timestamp=T0, data="{}")]
    for n, step in enumerate(steps, 1):
        if step[0] == "user":
            entities = [{"entity": "rating", "value": step[2]}] if len(step) > 2 else []
            data = json.dumps({"text": step[1], "parse_data": {"entities": entities}})
            out.append(SimpleNamespace(type_name="user", intent_name=step[1], action_name=None,
                                       timestamp=T0 + n, data=data))
        else:
            out.append(SimpleNamespace(type_name="action", intent_name=None, action_name=step[1],
                                       timestamp=T0 + n, data="{}"))
    return out


def outcome(*steps):
    figures = TrackerFigures([], Counter(), [], set())
    _read_sender("web:x", rows(*steps), PERIOD, figures)
    [conversation] = figures.conversations
    return conversation


@pytest.mark.parametrize("steps, expected", [
    # An FAQ answered, then thanks: answered.
    ([("user", "faq_forgot_password"), ("action", "utter_faq_forgot_password"),
      ("user", "thank"), ("action", "utter_thank")], ANSWERED),
    # A fallback, then an image (no question): still fell back.
    ([("user", "nlu_fallback"), ("action", "action_suggest_faqs"),
      ("user", "non_text_message"), ("action", "utter_text_only")], FELL_BACK),
    # An intent no rule answered (Rasa's own fallback): fell back.
    ([("user", "inform"), ("action", "action_default_fallback")], FELL_BACK),
    # Answered, then rated 👎 (the ticket could not be opened): rated down.
    ([("user", "faq_forgot_password"), ("action", "utter_faq_forgot_password"),
      ("user", "rate_answer", "down"), ("action", "action_rate_answer")], RATED_DOWN),
    # Rated 👍: answered.
    ([("user", "faq_forgot_password"), ("action", "utter_faq_forgot_password"),
      ("user", "rate_answer", "up"), ("action", "action_rate_answer")], ANSWERED),
    # A rating with no question before it, and greetings only: no question.
    ([("user", "rate_answer", "down"), ("action", "action_rate_answer")], None),
    ([("user", "greet"), ("action", "utter_greet")], None),
])
def test_the_last_question(steps, expected):
    assert outcome(*steps).last_question == expected


def test_only_an_answered_last_question_without_a_ticket_is_deflection():
    answered = outcome(("user", "faq_forgot_password"), ("action", "utter_faq_forgot_password"))
    rated_down = outcome(("user", "faq_forgot_password"), ("action", "utter_faq_forgot_password"),
                         ("user", "rate_answer", "down"), ("action", "action_rate_answer"))
    fell_back = outcome(("user", "nlu_fallback"), ("action", "action_suggest_faqs"))
    assert answered.deflected and not answered.left_after_fallback
    assert not rated_down.deflected and not rated_down.left_after_fallback
    assert fell_back.left_after_fallback and not fell_back.deflected
    answered.tickets.append(1)
    fell_back.tickets.append(2)
    assert not answered.deflected and not fell_back.left_after_fallback
