"""Help-desk tickets and FAQ ratings, on every test database."""
import pytest
from alembic import command
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import IntegrityError

from tuanjian.backend import db
from tuanjian.backend import tickets as tickets_module
from tuanjian.backend.models import Rating, Ticket, TicketMessage
from tuanjian.backend.rules import DomainError
from tuanjian.backend.tickets import MAX_REPLY_CHARS, TicketService

SENDER = "web-3f2a9c"
TRANSCRIPT = [
    {"who": "member", "text": "我的转接卡住了", "at": "2024-06-15T08:29:00+00:00"},
    {"who": "bot", "text": "您是不是想问…", "at": "2024-06-15T08:29:01+00:00"},
]


@pytest.fixture
def desk(sessions, clock):
    return TicketService(sessions, clock)


def open_one(desk, channel="rest", sender=SENDER, reason="request_human", member_no="2019001"):
    return desk.open_ticket(channel, sender, member_no, "怎么转到外省？", TRANSCRIPT, reason)


def counts(sessions):
    with sessions() as s:
        return tuple(s.execute(select(func.count()).select_from(model)).scalar_one()
                     for model in (Ticket, TicketMessage, Rating))


def test_ticket_lifecycle(desk, clock):
    ticket_id = open_one(desk)
    assert desk.open_ticket("rest", SENDER, None, "另一个问题", [], "fallbacks") == ticket_id  # no duplicate
    assert desk.open_ticket_of("rest", SENDER) == ticket_id

    clock.advance(minutes=1)
    desk.add_member_message(ticket_id, "  还在吗？ ")
    clock.advance(minutes=2)
    reply_id = desk.staff_reply(ticket_id, "您好，我是人工客服。")
    ticket = desk.get(ticket_id)
    assert {k: ticket[k] for k in ("id", "channel", "sender_id", "member_no", "question", "reason", "status")} == {
        "id": ticket_id, "channel": "rest", "sender_id": SENDER, "member_no": "2019001",
        "question": "怎么转到外省？", "reason": "request_human", "status": "open"}
    assert ticket["transcript"] == TRANSCRIPT
    assert [(m["author"], m["text"], m["delivered"]) for m in ticket["messages"]] == [
        ("member", "还在吗？", True), ("staff", "您好，我是人工客服。", False)]
    assert ticket["messages"][1]["id"] == reply_id
    assert ticket["messages"][1]["at"] == clock.now.isoformat()
    assert ticket["closed_at"] is None

    clock.advance(minutes=3)
    closed = desk.close(ticket_id)
    assert closed["status"] == "closed" and closed["closed_at"] == clock.now.isoformat()
    assert len(closed["messages"]) == 2
    assert desk.open_ticket_of("rest", SENDER) is None
    assert desk.list_open() == []
    for refused in (lambda: desk.add_member_message(ticket_id, "喂"),
                    lambda: desk.staff_reply(ticket_id, "补充一句"),
                    lambda: desk.close(ticket_id)):
        with pytest.raises(DomainError) as error:
            refused()
        assert error.value.code == "ticket_closed"
    assert len(desk.get(ticket_id)["messages"]) == 2

    # After the close, the next handoff is a new ticket.
    assert open_one(desk) != ticket_id


def test_tickets_are_per_conversation(desk):
    first = open_one(desk)
    assert open_one(desk, sender="web-other") != first
    assert open_one(desk, channel="wechat") != first
    assert desk.open_ticket_of("wechat", "web-other") is None


def test_list_open_oldest_first_with_message_counts(desk, clock):
    first = open_one(desk, sender="a")
    clock.advance(minutes=1)
    second = open_one(desk, sender="b", reason="not_helpful", member_no=None)
    clock.advance(minutes=1)
    closed = open_one(desk, sender="c")
    desk.close(closed)
    desk.add_member_message(second, "一")
    desk.add_member_message(second, "二")
    listed = desk.list_open()
    assert [(t["id"], t["messages"], t["reason"], t["member_no"]) for t in listed] == [
        (first, 0, "request_human", "2019001"), (second, 2, "not_helpful", None)]
    assert "transcript" not in listed[0]


def test_concurrent_open_falls_back_to_the_winner(desk, monkeypatch):
    """The unique index settles a race the read could not see."""
    winner = open_one(desk)
    real = tickets_module._open_ticket_id
    calls = []

    def blind_first_time(s, channel, sender_id):
        calls.append(1)
        return None if len(calls) == 1 else real(s, channel, sender_id)

    monkeypatch.setattr(tickets_module, "_open_ticket_id", blind_first_time)
    assert open_one(desk) == winner


@pytest.mark.parametrize("args, code", [
    (("", SENDER, None, "q", [], "fallbacks"), "bad_conversation"),
    (("rest", "", None, "q", [], "fallbacks"), "bad_conversation"),
    (("rest", "s" * 129, None, "q", [], "fallbacks"), "bad_conversation"),
    (("rest", SENDER, "", "q", [], "fallbacks"), "bad_member_no"),
    (("rest", SENDER, None, 7, [], "fallbacks"), "bad_question"),
    (("rest", SENDER, None, "q", [], "angry"), "bad_reason"),
    (("rest", SENDER, None, "q", "transcript", "fallbacks"), "bad_transcript"),
    (("rest", SENDER, None, "q", [{"who": "admin", "text": "x"}], "fallbacks"), "bad_transcript"),
    (("rest", SENDER, None, "q", [{"who": "bot", "text": None}], "fallbacks"), "bad_transcript"),
    (("rest", SENDER, None, "q", [{"who": "bot", "text": "x", "at": 5}], "fallbacks"), "bad_transcript"),
])
def test_refused_opens_write_nothing(desk, sessions, args, code):
    with pytest.raises(DomainError) as error:
        desk.open_ticket(*args)
    assert error.value.code == code
    assert counts(sessions) == (0, 0, 0)


def test_transcript_times_may_be_datetimes_and_question_none(desk, clock):
    ticket_id = desk.open_ticket("rest", SENDER, None, None, [{"who": "member", "text": "人工", "at": clock.now}],
                                 "request_human")
    ticket = desk.get(ticket_id)
    assert ticket["question"] == ""
    assert ticket["transcript"] == [{"who": "member", "text": "人工", "at": clock.now.isoformat()}]


@pytest.mark.parametrize("text, code", [
    ("", "empty_text"),
    (" \n\t ", "empty_text"),
    (None, "bad_text"),
    (["x"], "bad_text"),
    ("字" * (MAX_REPLY_CHARS + 1), "text_too_long"),
    ("您好\x00", "bad_text"),     # PostgreSQL refuses NUL
    ("您好\ud800", "bad_text"),   # a lone surrogate has no encoding
])
def test_refused_replies_write_nothing(desk, sessions, text, code):
    ticket_id = open_one(desk)
    with pytest.raises(DomainError) as error:
        desk.staff_reply(ticket_id, text)
    assert error.value.code == code
    assert counts(sessions) == (1, 0, 0)


def test_reply_limit_counts_the_stripped_text(desk):
    ticket_id = open_one(desk)
    desk.staff_reply(ticket_id, "  " + "字" * MAX_REPLY_CHARS + "\n")
    assert desk.get(ticket_id)["messages"][0]["text"] == "字" * MAX_REPLY_CHARS


@pytest.mark.parametrize("ticket_id", [987654, 0, -1, "1", None, True, 2**40])
def test_unknown_tickets_are_refused(desk, sessions, ticket_id):
    open_one(desk)
    for operation in (lambda: desk.get(ticket_id), lambda: desk.staff_reply(ticket_id, "你好"),
                      lambda: desk.add_member_message(ticket_id, "你好"), lambda: desk.close(ticket_id)):
        with pytest.raises(DomainError) as error:
            operation()
        assert error.value.code == "unknown_ticket"
    assert counts(sessions) == (1, 0, 0)


def test_a_member_message_is_kept_without_its_control_characters(desk):
    ticket_id = open_one(desk)
    desk.add_member_message(ticket_id, "在\x00吗\ud800\n还在等")
    assert desk.get(ticket_id)["messages"][0]["text"] == "在吗\n还在等"


def test_member_messages_need_text(desk, sessions):
    ticket_id = open_one(desk)
    with pytest.raises(DomainError) as error:
        desk.add_member_message(ticket_id, "   ")
    assert error.value.code == "empty_text"
    assert counts(sessions) == (1, 0, 0)


def test_undelivered_replies_are_handed_out_once_per_conversation(desk):
    mine = open_one(desk)
    theirs = open_one(desk, sender="web-other")
    wechat = open_one(desk, channel="wechat")
    desk.add_member_message(mine, "成员的话不算回复")
    desk.staff_reply(mine, "第一条")
    desk.staff_reply(theirs, "别人的")
    desk.staff_reply(wechat, "微信的")
    desk.staff_reply(mine, "第二条")
    desk.close(mine)  # a reply just before the close still reaches the member
    assert desk.undelivered_replies("rest", SENDER) == ["第一条", "第二条"]
    assert desk.undelivered_replies("rest", SENDER) == []
    assert [m["delivered"] for m in desk.get(mine)["messages"]] == [True, True, True]
    assert desk.undelivered_replies("rest", "web-other") == ["别人的"]
    assert [m["delivered"] for m in desk.get(wechat)["messages"]] == [False]


def test_mark_delivered(desk):
    ticket_id = open_one(desk, channel="wechat")
    message_id = desk.staff_reply(ticket_id, "你好")
    desk.mark_delivered(message_id)
    assert desk.get(ticket_id)["messages"][0]["delivered"] is True
    with pytest.raises(DomainError) as error:
        desk.mark_delivered(987654)
    assert error.value.code == "unknown_message"


def test_ratings_are_stored_with_faq_and_conversation(desk, sessions, clock):
    desk.record_rating("wechat", "oUser", "faq_transfer_out", "up")
    desk.record_rating("rest", SENDER, "faq_transfer_out", "down")
    with sessions() as s:
        rows = s.execute(select(Rating.channel, Rating.sender_id, Rating.faq, Rating.value, Rating.at)
                         .order_by(Rating.id)).all()
    assert [tuple(r) for r in rows] == [("wechat", "oUser", "faq_transfer_out", "up", clock.now),
                                        ("rest", SENDER, "faq_transfer_out", "down", clock.now)]
    assert rows[0].at.utcoffset().total_seconds() == 0


@pytest.mark.parametrize("args, code", [
    (("rest", SENDER, "faq_transfer_out", "meh"), "bad_rating"),
    (("rest", SENDER, "faq_transfer_out", None), "bad_rating"),
    (("rest", SENDER, "", "up"), "bad_faq"),
    (("rest", SENDER, "f" * 65, "up"), "bad_faq"),
    (("", SENDER, "faq_transfer_out", "up"), "bad_conversation"),
])
def test_refused_ratings_write_nothing(desk, sessions, args, code):
    with pytest.raises(DomainError) as error:
        desk.record_rating(*args)
    assert error.value.code == code
    assert counts(sessions) == (0, 0, 0)


def test_database_allows_one_open_ticket_per_conversation(sessions, clock):
    def ticket(status, sender=SENDER):
        return Ticket(channel="rest", sender_id=sender, question="q", transcript=[], reason="fallbacks",
                      status=status, created_at=clock.now)

    with sessions() as s, s.begin():
        s.add_all([ticket("open"), ticket("closed"), ticket("closed"), ticket("open", "other")])
    with pytest.raises(IntegrityError):
        with sessions() as s, s.begin():
            s.add(ticket("open"))
    with pytest.raises(IntegrityError):
        with sessions() as s, s.begin():
            s.add(ticket("done"))  # CHECK constraint
    assert counts(sessions) == (4, 0, 0)


def test_migration_0003_downgrades_and_upgrades(connection):
    assert MigrationContext.configure(connection).get_current_revision() == "0006"
    config = db._alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, "0002")
    names = inspect(connection).get_table_names()
    assert not {"tickets", "ticket_messages", "ratings"} & set(names) and "channel_bindings" in names
    command.upgrade(config, "head")
    assert {"tickets", "ticket_messages", "ratings"} <= set(inspect(connection).get_table_names())
