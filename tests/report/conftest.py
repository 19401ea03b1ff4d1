"""A known set of conversations in a Rasa SQL tracker store, with its tickets and ratings.

The range is 2024-06-10 .. 2024-06-16 in UTC. The expected figures, worked out
by hand, are in EXPECTED; the comments on each conversation say what it adds.
"""
import asyncio
import warnings
from datetime import datetime, timezone

import pytest

from tuanjian.backend.models import Rating, Ticket

HOSTILE = "<script>alert(1)</script>怎么转团关系"


def at(day: int, hour: int, minute: int = 0) -> float:
    return datetime(2024, 6, day, hour, minute, tzinfo=timezone.utc).timestamp()


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 6, day, hour, minute, tzinfo=timezone.utc)


def session(t):
    from rasa.shared.core.events import ActionExecuted, SessionStarted

    return [ActionExecuted("action_session_start", timestamp=t), SessionStarted(timestamp=t),
            ActionExecuted("action_listen", timestamp=t)]


def turn(t, text, intent, *actions):
    """A member message at t and the actions that answered it, then listen."""
    from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered

    events = [UserUttered(text, intent={"name": intent, "confidence": 0.9}, timestamp=t)]
    for n, action in enumerate(actions, 1):
        events.append(ActionExecuted(action, timestamp=t + n))
        events.append(BotUttered("…", timestamp=t + n))
    events.append(ActionExecuted("action_listen", timestamp=t + len(actions) + 1))
    return events


def conversations():
    return {
        # FAQ answered, rated 👍: deflected.
        "web-a": session(at(11, 9)) + turn(at(11, 9, 0) + 5, "忘记密码怎么办", "faq_forgot_password",
                                           "utter_faq_forgot_password")
        + turn(at(11, 9, 1), '/rate_answer{"rating":"up"}', "rate_answer", "action_rate_answer"),
        # FAQ answered, rated 👎 -> ticket not_helpful.
        "web-b": session(at(11, 10)) + turn(at(11, 10) + 5, "密码忘了咋办", "faq_forgot_password",
                                            "utter_faq_forgot_password")
        + turn(at(11, 10, 1), '/rate_answer{"rating":"down"}', "rate_answer", "action_rate_answer"),
        # FAQ answered, thanks: deflected.
        "web-c": session(at(12, 8)) + turn(at(12, 8) + 5, "审批一直不通过", "faq_approval_pending",
                                           "utter_faq_approval_pending")
        + turn(at(12, 8, 1), "谢谢", "thank", "utter_thank"),
        # Two fallbacks in a row -> ticket fallbacks (its question repeats the 2nd).
        "web-d": session(at(12, 9)) + turn(at(12, 9) + 5, "我的团费怎么交", "nlu_fallback", "action_suggest_faqs")
        + turn(at(12, 9, 1), "团费在哪里交", "nlu_fallback", "action_suggest_faqs"),
        # A fallback, 转人工 -> ticket request_human; then a message to staff (not counted).
        "web-e": session(at(13, 14)) + turn(at(13, 14) + 5, "怎么开团员证明", "nlu_fallback", "action_suggest_faqs")
        + turn(at(13, 14, 1), "转人工", "request_human", "action_open_ticket")
        + turn(at(13, 14, 5), "在吗", "nlu_fallback", "action_handoff_pending"),
        # Out of scope on WeChat: deflected.
        "wx-f": session(at(14, 20)) + turn(at(14, 20) + 5, "今天天气怎么样", "out_of_scope", "utter_out_of_scope"),
        # Two sessions, two conversations: an FAQ (deflected); then a fallback and
        # an emoji-only fallback (left after a fallback).
        "web-g": session(at(11, 12)) + turn(at(11, 12) + 5, "忘记密码怎么办", "faq_forgot_password",
                                            "utter_faq_forgot_password")
        + session(at(13, 12)) + turn(at(13, 12) + 5, "团费怎么交呀", "nlu_fallback", "action_suggest_faqs")
        + turn(at(13, 12, 1), "🙂", "nlu_fallback", "action_suggest_faqs"),
        # Before the range (answer, ticket): not counted.
        "web-h": session(at(5, 9)) + turn(at(5, 9) + 5, "忘记密码怎么办", "faq_forgot_password",
                                          "utter_faq_forgot_password")
        + turn(at(5, 9, 1), "转人工", "request_human", "action_open_ticket"),
        # After the range: not counted.
        "web-i": session(at(17, 9)) + turn(at(17, 9) + 5, "团费交多少", "nlu_fallback", "action_suggest_faqs"),
        # Markup in a question, then "none of these": left after a fallback (the
        # "no" asks nothing; the last question fell to the fallback).
        "web-j": session(at(15, 23)) + turn(at(15, 23) + 5, HOSTILE, "nlu_fallback", "action_suggest_faqs")
        + turn(at(15, 23, 1), "/deny", "deny", "utter_deny_suggestions"),
        # Session began the evening before the range; only the second message
        # counts. Its last question fell to the fallback: left after a fallback.
        "web-k": session(at(9, 23, 50)) + turn(at(9, 23, 55), "你好", "greet", "utter_greet")
        + turn(at(10, 0, 10), "团组织关系怎么转", "nlu_fallback", "action_suggest_faqs"),
    }


TICKETS = [
    dict(channel="rest", sender_id="web-b", question="密码忘了咋办", reason="not_helpful", status="closed",
         created_at=utc(11, 10, 1), closed_at=utc(11, 11)),
    dict(channel="rest", sender_id="web-d", question="团费在哪里交", reason="fallbacks", status="open",
         created_at=utc(12, 9, 1)),
    dict(channel="rest", sender_id="web-e", question="怎么开团员证明", reason="request_human", status="open",
         created_at=utc(13, 14, 1)),
    dict(channel="rest", sender_id="web-h", question="忘记密码怎么办", reason="request_human", status="closed",
         created_at=utc(5, 9, 1), closed_at=utc(5, 10)),
    # A WeChat member with no conversation in the tracker store.
    dict(channel="wechat", sender_id="wx-z", question="团员证明在哪开", reason="request_human", status="open",
         created_at=utc(14, 10)),
]

RATINGS = [
    dict(channel="rest", sender_id="web-a", faq="faq_forgot_password", value="up", at=utc(11, 9, 1)),
    dict(channel="rest", sender_id="web-b", faq="faq_forgot_password", value="down", at=utc(11, 10, 1)),
    dict(channel="wechat", sender_id="wx-y", faq="faq_approval_pending", value="up", at=utc(12, 7)),
    dict(channel="rest", sender_id="web-x", faq="faq_forgot_password", value="down", at=utc(20, 7)),  # after
]

EXPECTED = dict(
    # a, b, c, d, e, wx-f, g (two sessions), j, k
    conversations=10,
    conversations_with_ticket=3,  # b, d, e
    # last question answered, no ticket: a, c, wx-f, g's first session
    deflected=4,
    deflection_rate=0.4,
    left_after_fallback=3,  # g's second session, j, k
    # a2 b2 c2 d2 e2 (its 3rd goes to staff) f1 g3 j2 k1 (its greeting is before the range)
    member_messages=17,
    fallback_messages=7,  # d2 e1 g2 j1 k1
    messages_to_staff=1,
    answers_per_faq={"faq_forgot_password": 3, "faq_approval_pending": 1},
    ratings_per_faq={"faq_forgot_password": {"up": 1, "down": 1}, "faq_approval_pending": {"up": 1, "down": 0}},
    handoff_reasons={"request_human": 2, "fallbacks": 1, "not_helpful": 1},
    tickets=4,
    # fallback texts d2 e1 g1 j1 k1, tickets b and wx-z (d's and e's repeat their fallbacks)
    unanswered_questions=8,
    groups=[
        (3, "我的团费怎么交", ["我的团费怎么交", "团费在哪里交", "团费怎么交呀"]),
        (2, "怎么开团员证明", ["怎么开团员证明", "团员证明在哪开"]),
        (1, "团组织关系怎么转", ["团组织关系怎么转"]),
        (1, "密码忘了咋办", ["密码忘了咋办"]),
        (1, HOSTILE, [HOSTILE]),
    ],
)


def write_tracker_store(path) -> str:
    """Save the conversations with Rasa's own SQLTrackerStore; return its URL."""
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.trackers import DialogueStateTracker

    with warnings.catch_warnings():  # Rasa 3.6 builds its URL the deprecated way
        warnings.simplefilter("ignore")
        store = SQLTrackerStore(dialect="sqlite", db=str(path))

    async def save_all():
        for sender, events in conversations().items():
            await store.save(DialogueStateTracker.from_events(sender, events))

    asyncio.run(save_all())
    store.engine.dispose()
    return f"sqlite:///{path}"


def write_backend(session) -> None:
    session.add_all([Ticket(transcript=[], **t) for t in TICKETS])
    session.add_all([Rating(**r) for r in RATINGS])


@pytest.fixture(scope="session")
def tracker_url(tmp_path_factory):
    return write_tracker_store(tmp_path_factory.mktemp("tracker") / "tracker.db")


@pytest.fixture
def helpdesk(sessions):
    with sessions() as session, session.begin():
        write_backend(session)
    return sessions


@pytest.fixture(scope="session")
def expected():
    return EXPECTED


@pytest.fixture(scope="session")
def hostile():
    return HOSTILE


@pytest.fixture
def backend_url(tmp_path):
    """A migrated SQLite backend file holding the tickets and ratings (for the command)."""
    from sqlalchemy.orm import Session

    from tuanjian.backend import db

    engine = db.make_engine(f"sqlite:///{tmp_path / 'backend.db'}")
    db.migrate(engine)
    with Session(engine, future=True) as session, session.begin():
        write_backend(session)
    engine.dispose()
    return f"sqlite:///{tmp_path / 'backend.db'}"
