"""The review inbox's backend: candidates collected from a Rasa SQL tracker
store (written by Rasa's own SQLTrackerStore), decisions and what they refuse,
on every test database."""
import asyncio
import json
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import sqlalchemy as sa
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import NOW
from tuanjian.backend import db, review
from tuanjian.backend.models import ReviewMessage
from tuanjian.backend.review import FIRST_READ_DAYS, MAX_NOTE_CHARS, Collected, ReviewService
from tuanjian.backend.rules import DomainError
from tuanjian.tracker_events import EVENTS

INTENTS = {"faq_forgot_password", "faq_quit_league", "out_of_scope", "check_transfer_status"}
T0 = NOW.timestamp() - 3600


class Tracker:
    """A tracker store on SQLite, written by Rasa's SQLTrackerStore."""

    def __init__(self, path):
        from rasa.core.tracker_store import SQLTrackerStore

        with warnings.catch_warnings():  # Rasa 3.6 builds its URL the deprecated way
            warnings.simplefilter("ignore")
            self.store = SQLTrackerStore(dialect="sqlite", db=str(path))
        self.engine = sa.create_engine(f"sqlite:///{path}", future=True)
        self.events: dict[str, list] = {}

    def add(self, sender, *events):
        self.events.setdefault(sender, []).extend(events)
        tracker = DialogueStateTracker.from_events(sender, self.events[sender])
        # In a thread of its own: async tests have an event loop running already.
        with ThreadPoolExecutor(1) as thread:
            thread.submit(asyncio.run, self.store.save(tracker)).result()

    def close(self):
        self.store.engine.dispose()
        self.engine.dispose()


def said(t, text, intent, confidence=0.95, reply="utter_answer", ranking=(), entities=(), then=(), model=None):
    """A member message at T0 + t, the action that answered it (and any more events), then listen."""
    parse = {"intent": {"name": intent, "confidence": confidence},
             "intent_ranking": [{"name": n, "confidence": c} for n, c in ranking],
             "entities": [{"entity": e, "value": v} for e, v in entities]}
    metadata = {"model_id": model} if model else None
    return [UserUttered(text, intent=parse["intent"], parse_data={**parse, "text": text}, timestamp=T0 + t,
                        metadata=metadata),
            ActionExecuted(reply, timestamp=T0 + t + 0.1), BotUttered("回答", timestamp=T0 + t + 0.2),
            *then, ActionExecuted("action_listen", timestamp=T0 + t + 0.3)]


def started(t):
    return [ActionExecuted("action_session_start", timestamp=T0 + t), SessionStarted(timestamp=T0 + t),
            ActionExecuted("action_listen", timestamp=T0 + t)]


@pytest.fixture
def tracker(tmp_path):
    store = Tracker(tmp_path / "tracker.db")
    yield store
    store.close()


@pytest.fixture
def reviews(sessions, clock):
    return ReviewService(sessions, clock)


def stored(sessions):
    with sessions() as s:
        return {m.text: m.reasons.split(",") for m in s.execute(select(ReviewMessage)).scalars()}


def test_collects_what_the_assistant_missed_and_nothing_else(tracker, reviews, sessions):
    ranking = [("faq_quit_league", 0.4), ("out_of_scope", 0.3), ("faq_forgot_password", 0.2)]
    tracker.add("rest:a", *started(0),
                *said(1, "你好", "greet", 0.3),
                *said(2, "团费一个月交多少", "nlu_fallback", 0.3, "action_suggest_faqs", ranking),
                *said(3, "我不想当团员了咋整", "faq_quit_league", 0.6, ranking=ranking),
                *said(4, "密码忘了", "faq_forgot_password", 0.99),
                *said(5, '/rate_answer{"rating":"down"}', "rate_answer", entities=[("rating", "down")]),
                *said(6, "/affirm", "affirm", 0.2),
                *said(7, "没有规则回答我", "faq_quit_league", 0.9, reply="action_default_fallback"))
    tracker.add("rest:b", *started(10),
                *said(11, "查进度", "check_transfer_status", 0.99),
                *said(12, "12345678", "inform", 0.4, reply="verification_form"),     # answers the form
                *said(13, "我的转接到底卡在哪", "check_transfer_status", 0.99),
                *said(14, "转人工", "request_human", 0.99, reply="action_open_ticket",
                      then=[SlotSet("handoff_ticket", 7)]),
                *said(15, "在吗在吗", "nlu_fallback", 0.2, reply="action_handoff_pending"))  # to staff
    tracker.add("rest:c", *started(20), *said(21, "长" * 501, "nlu_fallback", 0.1, "action_suggest_faqs"),
                *said(22, "🙂", "nlu_fallback", 0.1, "action_suggest_faqs"))

    assert reviews.collect(tracker.engine).added == 5
    assert stored(sessions) == {
        "团费一个月交多少": ["fallback"],
        "我不想当团员了咋整": ["low_confidence"],
        "密码忘了": ["rated_down"],
        "没有规则回答我": ["fallback"],
        "我的转接到底卡在哪": ["ticket"],
    }
    assert reviews.collect(tracker.engine).added == 0  # read once


def test_reads_on_from_where_it_stopped_and_adds_reasons(tracker, reviews, sessions):
    tracker.add("rest:a", *started(0), *said(1, "我入党了团关系咋办", "faq_quit_league", 0.55))
    assert reviews.collect(tracker.engine).added == 1
    # The rating and the ticket come in a later read: the question is in the earlier one.
    tracker.add("rest:a", *said(2, "/rate_answer", "rate_answer", entities=[("rating", "down")]),
                *said(3, "转人工", "request_human", reply="action_open_ticket", then=[SlotSet("handoff_ticket", 3)]))
    tracker.add("rest:b", *started(4), *said(5, "团费咋交", "nlu_fallback", 0.2, "action_suggest_faqs"))
    assert reviews.collect(tracker.engine).added == 1
    assert stored(sessions) == {"我入党了团关系咋办": ["low_confidence", "rated_down", "ticket"],
                                "团费咋交": ["fallback"]}


def test_the_first_read_goes_back_a_month_only(tracker, sessions, clock):
    old = -(FIRST_READ_DAYS + 1) * 86400
    tracker.add("rest:old", *started(old), *said(old + 1, "很久以前的问题", "nlu_fallback", 0.1, "action_suggest_faqs"))
    tracker.add("rest:new", *started(0), *said(1, "最近的问题", "nlu_fallback", 0.1, "action_suggest_faqs"))
    assert ReviewService(sessions, clock).collect(tracker.engine).added == 1
    assert list(stored(sessions)) == ["最近的问题"]


def test_an_empty_or_missing_tracker_store_gives_nothing(tmp_path, reviews, sessions):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'none.db'}", future=True)
    assert reviews.collect(engine).added == 0
    engine.dispose()
    assert reviews.pending() == {"total": 0, "wordings": []}


@pytest.fixture
def inbox(tracker, reviews):
    ranking = [("faq_forgot_password", 0.4), ("out_of_scope", 0.3)]
    tracker.add("rest:a", *started(0), *said(1, "密码找不回来了", "nlu_fallback", 0.3, "action_suggest_faqs", ranking))
    tracker.add("rest:b", *started(2), *said(3, "密码找不回来了！", "nlu_fallback", 0.3, "action_suggest_faqs"))
    tracker.add("rest:c", *started(4), *said(5, "團費交多少", "nlu_fallback", 0.2, "action_suggest_faqs"))
    tracker.add("rest:d", *started(6), *said(7, "我想查一下团员证明", "out_of_scope", 0.6))
    reviews.collect(tracker.engine)
    return {w["text"]: w for w in reviews.pending()["wordings"]}


def test_the_inbox_is_newest_first_one_line_per_wording(reviews, inbox):
    pending = reviews.pending()
    # "密码找不回来了" and "密码找不回来了！" are one wording, shown by its newest message.
    assert [w["text"] for w in pending["wordings"]] == ["我想查一下团员证明", "團費交多少", "密码找不回来了！"]
    assert pending["total"] == 3
    assert inbox["密码找不回来了！"]["count"] == 2
    assert inbox["我想查一下团员证明"]["reasons"] == ["low_confidence"]
    assert inbox["我想查一下团员证明"]["intent"] == "out_of_scope"


def test_a_decision_is_stored_with_who_and_when_for_the_whole_wording(reviews, inbox, sessions, clock):
    decided = reviews.decide(inbox["密码找不回来了！"]["id"], "intent", "wang", INTENTS, label="faq_forgot_password")
    assert decided["messages"] == 2 and decided["decided_by"] == "wang"
    assert decided["decided_at"] == clock().isoformat()
    with sessions() as s:
        rows = s.execute(select(ReviewMessage).where(ReviewMessage.decision.is_not(None))).scalars().all()
    assert {(r.text, r.label, r.decided_by, r.decided_at) for r in rows} == {
        ("密码找不回来了", "faq_forgot_password", "wang", clock()),
        ("密码找不回来了！", "faq_forgot_password", "wang", clock())}
    assert [w["text"] for w in reviews.pending()["wordings"]] == ["我想查一下团员证明", "團費交多少"]
    assert reviews.labelled() == [{"text": "密码找不回来了", "intent": "faq_forgot_password", "decided_at": clock()}]


def test_a_decided_wording_is_never_shown_again(tracker, reviews, inbox, sessions):
    reviews.decide(inbox["團費交多少"]["id"], "dismissed", "li", INTENTS)
    # Another member asks the same, later: it is collected but not shown.
    tracker.add("rest:e", *started(9), *said(10, "团费交多少", "nlu_fallback", 0.2, "action_suggest_faqs"))
    assert reviews.collect(tracker.engine).added == 1
    assert "团费交多少" not in [w["text"] for w in reviews.pending()["wordings"]]
    with sessions() as s:
        later = s.execute(select(ReviewMessage.id).where(ReviewMessage.text == "团费交多少")).scalar_one()
    with pytest.raises(DomainError) as error:
        reviews.decide(later, "intent", "li", INTENTS, label="out_of_scope")
    assert error.value.code == "already_decided"


@pytest.mark.parametrize("decision, label, note, code", [
    ("intent", "faq_no_such_thing", None, "unknown_intent"),
    ("intent", None, None, "unknown_intent"),
    ("intent", ["faq_forgot_password"], None, "unknown_intent"),
    ("labelled", None, None, "bad_decision"),
    (None, None, None, "bad_decision"),
    ("dismissed", "faq_forgot_password", None, "bad_decision"),
    ("new_topic", None, None, "note_required"),
    ("new_topic", None, "   ", "note_required"),
    ("new_topic", None, "长" * (MAX_NOTE_CHARS + 1), "note_too_long"),
    ("dismissed", None, {"x": 1}, "bad_note"),
])
def test_bad_decisions_are_refused_and_store_nothing(reviews, inbox, sessions, decision, label, note, code):
    with pytest.raises(DomainError) as error:
        reviews.decide(inbox["團費交多少"]["id"], decision, "wang", INTENTS, label=label, note=note)
    assert error.value.code == code
    with sessions() as s:
        assert s.execute(select(func.count()).where(ReviewMessage.decision.is_not(None))).scalar() == 0


def test_deciding_twice_or_an_unknown_message_is_refused(reviews, inbox):
    number = inbox["團費交多少"]["id"]
    reviews.decide(number, "new_topic", "wang", INTENTS, note="团费标准，需要新的 FAQ")
    with pytest.raises(DomainError) as error:
        reviews.decide(number, "dismissed", "li", INTENTS)
    assert error.value.code == "already_decided"
    assert reviews.get(number)["decided_by"] == "wang" and reviews.get(number)["decision"] == "new_topic"
    with pytest.raises(DomainError) as error:
        reviews.decide(10 ** 8, "dismissed", "li", INTENTS)
    assert error.value.code == "unknown_message"
    assert reviews.new_topics() == [{"text": "團費交多少", "note": "团费标准，需要新的 FAQ", "decided_by": "wang"}]


def test_a_message_comes_with_the_conversation_around_it(tracker, reviews, inbox):
    tracker.add("rest:d", *said(20, "谢谢", "thank"))
    message = reviews.get(inbox["我想查一下团员证明"]["id"], tracker.engine)
    assert [(line["who"], line["text"], line["this"]) for line in message["conversation"]] == [
        ("member", "我想查一下团员证明", True), ("bot", "回答", False),
        ("member", "谢谢", False), ("bot", "回答", False)]


def test_figures_count_wordings_awaiting_and_decided_in_the_range(reviews, inbox, clock):
    reviews.decide(inbox["密码找不回来了！"]["id"], "intent", "wang", INTENTS, label="faq_forgot_password")
    reviews.decide(inbox["團費交多少"]["id"], "dismissed", "wang", INTENTS)
    figures = reviews.figures(clock() - timedelta(days=1), clock() + timedelta(days=1))
    assert figures == {"awaiting": 1, "labelled": {"faq_forgot_password": 1}, "new_topics": 0, "dismissed": 1}
    assert reviews.figures(clock() + timedelta(days=1), clock() + timedelta(days=2))["labelled"] == {}


def test_a_tracker_store_emptied_since_is_read_from_its_start(tmp_path, sessions, clock, monkeypatch):
    monkeypatch.setattr(review, "REREAD_EVENTS", 0)  # only the reset reads them
    first = Tracker(tmp_path / "first.db")
    first.add("rest:a", *started(0), *[e for n in range(5) for e in said(1 + n, f"问题{n}", "faq_quit_league", 0.99)])
    reviews = ReviewService(sessions, clock)
    reviews.collect(first.engine)
    first.close()
    # The same file emptied and written again: its ids start over, below the cursor.
    (tmp_path / "first.db").unlink()
    emptied = Tracker(tmp_path / "first.db")
    emptied.add("rest:z", *started(0), *said(1, "新库里的问题", "nlu_fallback", 0.1, "action_suggest_faqs"))
    assert reviews.collect(emptied.engine).added == 1
    # Later messages, with ids past where the old store's cursor stood, are read too.
    for n in range(8):
        emptied.add(f"rest:y{n}", *started(10 + n), *said(10.5 + n, f"后来的问题{n}", "nlu_fallback", 0.1,
                                                          "action_suggest_faqs"))
    assert reviews.collect(emptied.engine).added == 8
    emptied.close()


def test_a_turn_committed_after_a_later_one_was_read_is_read_on_the_next_look(tracker, reviews, sessions):
    tracker.add("rest:a", *started(0), *said(1, "先到的问题", "nlu_fallback", 0.1, "action_suggest_faqs"))
    with tracker.engine.begin() as connection:
        first = connection.execute(select(func.max(EVENTS.c.id))).scalar()
        # Another conversation's turn took ids first+1 .. first+4 but commits late; first+5 is in.
        connection.execute(EVENTS.insert().values(id=first + 5, sender_id="rest:c", type_name="action",
                                                  timestamp=T0 + 3, action_name="action_listen", data="{}"))
    assert reviews.collect(tracker.engine).added == 1
    late = said(2, "晚到的问题", "nlu_fallback", 0.1, "action_suggest_faqs")
    with tracker.engine.begin() as connection:
        for offset, event in zip((1, 2), late[:2], strict=True):
            connection.execute(EVENTS.insert().values(
                id=first + offset, sender_id="rest:b", type_name=event.type_name, timestamp=event.timestamp,
                intent_name=getattr(event, "intent_name", None), action_name=getattr(event, "action_name", None),
                data=json.dumps(event.as_dict())))
    assert reviews.collect(tracker.engine).added == 1
    assert set(stored(sessions)) == {"先到的问题", "晚到的问题"}


def test_each_tracker_store_has_its_own_cursor(tmp_path, reviews, sessions):
    stores = [Tracker(tmp_path / f"{name}.db") for name in ("a", "b")]
    for n, store in enumerate(stores):
        store.add("rest:x", *started(0), *said(1, f"库{n}的问题", "nlu_fallback", 0.1, "action_suggest_faqs"))
    assert [reviews.collect(store.engine).added for store in stores] == [1, 1]
    assert [reviews.collect(store.engine).added for store in stores] == [0, 0]
    for store in stores:
        store.close()


def test_migration_0006_is_the_head_and_downgrades_and_upgrades(connection):
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    assert MigrationContext.configure(connection).get_current_revision() == "0006"
    config = db._alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, "0005")
    assert not {"review_messages", "review_cursors"} & set(sa.inspect(connection).get_table_names())
    command.upgrade(config, "head")
    with Session(bind=connection, future=True) as s:
        assert s.execute(select(func.count()).select_from(ReviewMessage)).scalar() == 0


def test_a_look_reads_at_most_so_many_events_and_the_next_reads_on(tracker, reviews, sessions):
    tracker.add("rest:a", *started(0), *said(1, "第一个没听懂的问题", "nlu_fallback", 0.1, "action_suggest_faqs"))
    tracker.add("rest:b", *started(2), *said(3, "第二个没听懂的问题", "nlu_fallback", 0.1, "action_suggest_faqs"))
    looks: list[Collected] = []
    while not looks or looks[-1].unread:
        looks.append(reviews.collect(tracker.engine, most=4))
    assert len(looks) > 2 and sum(look.added for look in looks) == 2
    assert set(stored(sessions)) == {"第一个没听懂的问题", "第二个没听懂的问题"}


def test_nul_characters_and_lone_surrogates_are_left_out(tracker, reviews, sessions):
    # REST takes both in JSON ("\u0000", "\ud800"); PostgreSQL refuses NUL, and no encoder a lone surrogate.
    tracker.add("rest:a", *started(0), *said(1, "团费\x00怎么交", "nlu_fallback", 0.1, "action_suggest_faqs"),
                *said(2, "\ud800团员证明", "nlu_fallback", 0.1, "action_suggest_faqs"))
    assert reviews.collect(tracker.engine).added == 2
    assert set(stored(sessions)) == {"团费怎么交", "团员证明"}


def test_slots_a_new_session_carries_over_are_no_ticket(tracker, reviews, sessions):
    tracker.add("rest:a", *started(0), *said(1, "密码忘了", "faq_forgot_password", 0.99),
                ActionExecuted("action_session_start", timestamp=T0 + 5), SessionStarted(timestamp=T0 + 5),
                SlotSet("handoff_ticket", 7, timestamp=T0 + 5), ActionExecuted("action_listen", timestamp=T0 + 5))
    assert reviews.collect(tracker.engine).added == 0


def test_whatever_the_look_size_a_message_to_staff_or_a_form_answer_is_no_candidate(tracker, tmp_path, clock):
    tracker.add("rest:a", *started(0),
                *said(1, "在吗在吗", "nlu_fallback", 0.2, reply="action_handoff_pending"),
                *said(2, "12345678", "nlu_fallback", 0.3, reply="verification_form"),
                *said(3, "团费怎么交", "nlu_fallback", 0.2, "action_suggest_faqs"))
    with tracker.engine.connect() as connection:
        events = connection.execute(select(func.count()).select_from(sa.table("events"))).scalar()
    for most in range(1, events + 1):
        engine = db.make_engine(f"sqlite:///{tmp_path / f'backend{most}.db'}")
        db.migrate(engine)
        factory = sessionmaker(bind=engine, future=True)
        reviews = ReviewService(factory, clock)
        while reviews.collect(tracker.engine, most=most).unread:
            pass
        assert list(stored(factory)) == ["团费怎么交"], most
        engine.dispose()


def test_two_reviewers_at_once_on_sqlite_one_wins_the_other_gets_409(tmp_path, clock):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'backend.db'}")
    db.migrate(engine)
    factory = sessionmaker(bind=engine, future=True)
    reviews = ReviewService(factory, clock)
    with factory() as s, s.begin():
        rows = [ReviewMessage(store="test", event_id=k, sender_id=f"rest:{k}", text="同一个问题", wording="同一个问题",
                              reasons="fallback", suggestions=[], said_at=clock()) for k in range(2)]
        s.add_all(rows)
        s.flush()
        ids = [row.id for row in rows]
    start, results = threading.Barrier(2), list[object]()

    def decide(number):
        start.wait()
        try:
            results.append(reviews.decide(number, "dismissed", f"staff{number}", INTENTS))
        except DomainError as error:
            results.append(error.code)
    threads = [threading.Thread(target=decide, args=(number,)) for number in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    engine.dispose()
    assert sorted(map(str, results))[0] == "already_decided" and len(results) == 2
    assert sum(isinstance(r, dict) and r["messages"] == 2 for r in results) == 1
