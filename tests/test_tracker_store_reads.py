"""The tracker store reads only the rows a conversation gained since it last
read it, and still returns exactly what Rasa's own SQL store would: with
another replica writing in between, across a new session, after a restart."""
import asyncio

import pytest
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    BotUttered,
    Restarted,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity

from tests.conftest import executed_statements, starts_with
from tests.test_kept_tracker import count_replays
from tuanjian.rasa_server import tracker_store
from tuanjian.rasa_server.tracker_store import RedactingSQLTrackerStore

DOMAIN = Domain.from_dict({"slots": {"handoff_ticket": {"type": "any", "mappings": [{"type": "custom"}]}}})


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "tracker.db")


def store(db):
    return RedactingSQLTrackerStore(domain=DOMAIN, dialect="sqlite", db=db)


def turn(number):
    return [ActionExecuted("action_listen"), UserUttered(f"第{number}条", {"name": "faq_forgot_password"}),
            ActionExecuted("utter_faq_forgot_password"), BotUttered(f"答{number}")]


def add(replica, sender, events):
    """A turn on `replica`: read the conversation, add the events, save."""
    tracker = asyncio.run(replica.retrieve(sender)) or DialogueStateTracker(sender, DOMAIN.slots)
    for event in events:
        tracker.update(event)
    asyncio.run(replica.save(tracker))


def as_rasa_reads(db, sender):
    rasa = SQLTrackerStore(domain=DOMAIN, dialect="sqlite", db=db)
    tracker = asyncio.run(rasa.retrieve(sender))
    return [e.as_dict() for e in tracker.events]


def read(replica, sender):
    return [e.as_dict() for e in asyncio.run(replica.retrieve(sender)).events]


def test_a_conversation_written_by_two_replicas_reads_as_rasas_store(db):
    first, second = store(db), store(db)
    for number in range(6):
        add(first if number % 2 else second, "web:a", turn(number))
        assert read(first, "web:a") == read(second, "web:a") == as_rasa_reads(db, "web:a")
    add(second, "web:a", [SlotSet("handoff_ticket", "T-1")])
    assert asyncio.run(first.retrieve("web:a")).get_slot("handoff_ticket") == "T-1"


def test_only_new_rows_are_read(db, monkeypatch):
    replica = store(db)
    for number in range(5):
        add(replica, "web:b", turn(number))
    deserialised: list[int] = []
    original = tracker_store.deserialise_events

    def counted(events):
        deserialised.append(len(events))
        return original(events)

    monkeypatch.setattr(tracker_store, "deserialise_events", counted)
    add(replica, "web:b", turn(5))
    read(replica, "web:b")
    # What this process wrote it kept as it wrote it: no row to read back.
    assert deserialised == [0, 0]
    # Another replica's turn: its four rows are read, never the whole conversation's 28.
    add(store(db), "web:b", turn(6))
    assert read(replica, "web:b") == as_rasa_reads(db, "web:b")
    assert deserialised[-1] == 4


def test_saving_a_kept_conversation_counts_no_rows(db, monkeypatch):
    replica = store(db)
    add(replica, "web:c", turn(0))
    counts: list[str] = []
    original = SQLTrackerStore._additional_events

    def counting(self, session, tracker):
        counts.append(tracker.sender_id)
        return original(self, session, tracker)

    monkeypatch.setattr(SQLTrackerStore, "_additional_events", counting)
    for number in range(1, 4):
        add(replica, "web:c", turn(number))
    assert counts == []  # Rasa's count of the session's rows, not run again
    assert read(replica, "web:c") == as_rasa_reads(db, "web:c")
    add(store(db), "web:new", turn(0))  # a conversation it has not read: Rasa's way
    assert counts == ["web:new"]


def test_a_new_session_is_read_alone(db):
    first, second = store(db), store(db)
    add(first, "web:c", turn(0))
    read(first, "web:c")
    add(second, "web:c", [ActionExecuted("action_session_start"), SessionStarted(),
                          ActionExecuted("action_listen")] + turn(1)[1:])
    assert read(first, "web:c") == as_rasa_reads(db, "web:c")
    assert "第0条" not in str(read(first, "web:c"))


def test_a_restart_and_an_unknown_conversation(db):
    replica = store(db)
    add(replica, "web:d", turn(0) + [Restarted()] + turn(1))
    assert read(replica, "web:d") == as_rasa_reads(db, "web:d")
    assert asyncio.run(replica.retrieve("web:nobody")) is None


def test_the_kept_conversations_are_bounded(db, monkeypatch):
    monkeypatch.setattr(tracker_store, "RECENT_CONVERSATIONS", 3)
    replica = store(db)
    for sender in ["web:1", "web:2", "web:3", "web:4"]:
        add(replica, sender, turn(0))
        read(replica, sender)
    assert list(replica._recent) == ["web:2", "web:3", "web:4"]
    assert read(replica, "web:1") == as_rasa_reads(db, "web:1")


def test_rows_deleted_behind_its_back_make_it_read_whole(db):
    import sqlite3

    replica = store(db)
    for number in range(3):
        add(replica, "web:e", turn(number))
    read(replica, "web:e")
    with sqlite3.connect(db) as connection:  # e.g. a retention job
        connection.execute("DELETE FROM events WHERE sender_id = 'web:e' AND data LIKE '%第0条%'")
    assert read(replica, "web:e") == as_rasa_reads(db, "web:e")


def rasa_state(db, sender):
    tracker = asyncio.run(SQLTrackerStore(domain=DOMAIN, dialect="sqlite", db=db).retrieve(sender))
    return tracker.current_state(EventVerbosity.ALL)


def test_a_kept_conversation_is_handed_out_without_a_replay(db, monkeypatch):
    replica, other = store(db), store(db)
    for number in range(5):
        add(replica, "web:f", turn(number))
    add(replica, "web:f", [SlotSet("handoff_ticket", "T-2")])
    replayed = count_replays(monkeypatch)
    handed = asyncio.run(replica.retrieve("web:f"))
    assert replayed == []  # Rasa's store replays the conversation's 21 events
    assert handed.current_state(EventVerbosity.ALL) == rasa_state(db, "web:f")
    # What a turn does to the copy it was handed stays out of what is kept,
    # until it is saved.
    handed.update(SlotSet("handoff_ticket", None))
    assert asyncio.run(replica.retrieve("web:f")).get_slot("handoff_ticket") == "T-2"
    add(other, "web:f", turn(9))  # another replica's turn: its rows only are applied
    replayed.clear()
    handed = asyncio.run(replica.retrieve("web:f"))
    assert len(replayed) == len(turn(9))
    assert handed.current_state(EventVerbosity.ALL) == rasa_state(db, "web:f")


def test_a_verification_turn_after_many_kept_turns_is_still_masked(db):
    replica = store(db)
    add(replica, "web:g", turn(0) + [ActionExecuted("verification_form"), ActiveLoop("verification_form")])
    for _ in range(3):
        add(replica, "web:g", [ActionExecuted("action_listen"), SlotSet("handoff_ticket", None)])
    add(replica, "web:g", [ActionExecuted("action_listen"), UserUttered("2019001 123456", {"name": "inform"})])
    stored = str(as_rasa_reads(db, "web:g"))
    # The form was made active three saved turns before: still a verification turn.
    assert "123456" not in stored and "2019001 ******" in stored
    # What the store kept of the turn it saved is what it wrote.
    assert str(read(replica, "web:g")) == stored


def test_a_new_model_drops_what_was_kept(db):
    replica = store(db)
    add(replica, "web:h", turn(0))
    read(replica, "web:h")
    slots = {"handoff_ticket": {"type": "any", "mappings": [{"type": "custom"}]},
             "guide_step": {"type": "text", "mappings": [{"type": "custom"}]}}
    replica.domain = Domain.from_dict({"slots": slots})  # what Agent.load_model does
    assert replica._recent == {}
    add(replica, "web:h", [SlotSet("guide_step", "graduated")])
    assert asyncio.run(replica.retrieve("web:h")).get_slot("guide_step") == "graduated"


def test_a_turn_is_written_in_one_statement_and_a_long_one_in_parts(db, monkeypatch):
    """Rasa's ORM save sent one INSERT a row; the turn's rows now go in one
    statement (a very long first save in parts of INSERT_AT_ONCE), in order."""
    replica = store(db)

    def inserted(executed):  # how many parameters each INSERT carried
        return [len(parameters) for _, parameters in starts_with(executed, "INSERT")]

    with executed_statements(replica.engine) as executed:
        add(replica, "web:one", turn(0))
    assert inserted(executed) == [4 * 6]  # four events, six columns each, one statement
    add(replica, "web:long", turn(0))
    monkeypatch.setattr(tracker_store, "INSERT_AT_ONCE", 10)
    with executed_statements(replica.engine) as executed:
        add(replica, "web:long", [e for number in range(1, 7) for e in turn(number)])  # a kept conversation
    assert inserted(executed) == [60, 60, 24]
    # What was kept ends at the last row written (a wrong id would make every
    # later turn read the conversation whole, which reads the same).
    with replica.session_scope() as session:
        last = max(row.id for row in session.query(replica.SQLEvent).filter_by(sender_id="web:long"))
    assert replica._recent["web:long"].last_id == last
    assert read(replica, "web:long") == as_rasa_reads(db, "web:long")
    add(store(db), "web:long", turn(7))
    assert read(replica, "web:long") == as_rasa_reads(db, "web:long")
