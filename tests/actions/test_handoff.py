"""Handing over to a person, against the real ticket backend."""
import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.fallback import ActionSuggestFaqs
from actions.handoff import ActionHandoffPending, ActionOpenTicket, ActionRateAnswer
from tests.actions.trackers import build_tracker, latest_message, slots_of
from tuanjian.backend.tickets import TicketService
from tuanjian.backend.verification import Conversation, VerificationService

SENDER = "web:1"


@pytest.fixture
def tickets(sessions, clock):
    return TicketService(sessions, clock)


@pytest.fixture
def verifications(sessions, clock):
    return VerificationService(sessions, clock)


def user(text, intent, **extra):
    return {"event": "user", "text": text, "input_channel": "web",
            "parse_data": {"intent": {"name": intent}}, **extra}


def bot(text):
    return {"event": "bot", "text": text}


def tracker(events, intent, text="", sender=SENDER, **slots):
    entities = slots.pop("entities", {})
    return build_tracker(latest_message(text, intent, **entities), sender=sender, events=events, **slots)


CONVERSATION = [user("团关系转到广东找不到组织", "faq_special_province"), bot("转入组织属于北京、广东、福建的…"),
                user("转人工", "request_human")]


async def test_request_human_opens_a_ticket_with_question_and_transcript(tickets, verifications, domain_dict,
                                                                         demo):
    # The member comes from the backend's verification of this conversation, not from a slot.
    assert verifications.attempt(Conversation("web", "1", ""), "2019001", "1234").outcome == "verified"
    dispatcher = CollectingDispatcher()
    events = await ActionOpenTicket(tickets, verifications).run(
        dispatcher, tracker(CONVERSATION, "request_human", "转人工", is_verified=True), domain_dict)
    ticket = slots_of(events)["handoff_ticket"]
    assert dispatcher.messages[0]["response"] == "utter_handoff_opened"
    assert dispatcher.messages[0]["ticket"] == ticket
    stored = tickets.get(ticket)
    assert stored["question"] == "团关系转到广东找不到组织"
    assert stored["member_no"] == "2019001" and stored["channel"] == "web"
    assert stored["reason"] == "request_human"
    assert [line["who"] for line in stored["transcript"]] == ["member", "bot", "member"]


async def test_while_open_messages_are_recorded_not_answered(tickets, verifications, domain_dict):
    ticket = tickets.open_ticket("web", SENDER, None, "问题", [], "request_human")
    dispatcher = CollectingDispatcher()
    events = await ActionHandoffPending(tickets, verifications).run(
        dispatcher, tracker(CONVERSATION, "faq_forgot_password", "补充一下：我是2019级的", handoff_ticket=ticket),
        domain_dict)
    assert events == [] and dispatcher.messages[0]["response"] == "utter_handoff_waiting"
    assert [m["text"] for m in tickets.get(ticket)["messages"]] == ["补充一下：我是2019级的"]


async def test_after_staff_closed_the_assistant_resumes(tickets, verifications, domain_dict):
    ticket = tickets.open_ticket("web", SENDER, None, "问题", [], "request_human")
    tickets.close(ticket)
    dispatcher = CollectingDispatcher()
    events = await ActionHandoffPending(tickets, verifications).run(
        dispatcher, tracker(CONVERSATION, "greet", "你好", handoff_ticket=ticket), domain_dict)
    assert slots_of(events) == {"handoff_ticket": None}
    assert dispatcher.messages[0]["response"] == "utter_handoff_resumed"


async def test_second_fallback_in_a_row_hands_over(tickets, verifications, domain_dict):
    events = [user("嗯那个啥", "nlu_fallback"), bot("您是不是想问："), user("就是那个东西", "nlu_fallback")]
    dispatcher = CollectingDispatcher()
    action = ActionSuggestFaqs(tickets, verifications)
    result = await action.run(dispatcher, tracker(events, "nlu_fallback", "就是那个东西"),
                                                 domain_dict)
    ticket = slots_of(result)["handoff_ticket"]
    assert tickets.get(ticket)["reason"] == "fallbacks"
    assert tickets.get(ticket)["question"] == "就是那个东西"


async def test_one_fallback_only_suggests(tickets, verifications, domain_dict):
    events = [user("你好", "greet"), bot("您好"), user("就是那个东西", "nlu_fallback")]
    dispatcher = CollectingDispatcher()
    action = ActionSuggestFaqs(tickets, verifications)
    result = await action.run(dispatcher, tracker(events, "nlu_fallback", "就是那个东西"),
                                                 domain_dict)
    assert result == [] and dispatcher.messages[0]["response"] == "utter_did_you_mean"
    assert tickets.open_ticket_of("web", SENDER) is None


@pytest.mark.parametrize("rating, response", [("up", "utter_rating_thanks"), ("down", "utter_handoff_opened")])
async def test_ratings_are_stored_with_the_faq(tickets, verifications, domain_dict, sessions, rating, response):
    from sqlalchemy import select

    from tuanjian.backend.models import Rating

    events = [user("15天没人审会自动通过吗", "faq_auto_approval"),
              {"event": "action", "name": "utter_faq_auto_approval"}, user("/rate_answer", "rate_answer")]
    dispatcher = CollectingDispatcher()
    await ActionRateAnswer(tickets, verifications).run(
        dispatcher, tracker(events, "rate_answer", entities={"rating": rating}), domain_dict)
    assert dispatcher.messages[0]["response"] == response
    with sessions() as s:
        stored = s.execute(select(Rating.faq, Rating.value, Rating.sender_id)).all()
    assert [tuple(r) for r in stored] == [("faq_auto_approval", rating, SENDER)]


async def test_a_member_number_in_an_unclear_message_starts_verification(tickets, verifications, domain_dict):
    from rasa_sdk.events import FollowupAction

    latest_events = [user("查询我的转接进度，编号2019001 尾号1234", "nlu_fallback")]
    t = tracker(latest_events, "nlu_fallback", "查询我的转接进度，编号2019001 尾号1234",
                entities={"member_number": "2019001"})
    result = await ActionSuggestFaqs(tickets, verifications).run(CollectingDispatcher(), t, domain_dict)
    assert result == [FollowupAction("verification_form")]


async def test_the_ticket_keeps_no_phone_digits_of_a_verification_turn(tickets, verifications, domain_dict):
    events = [user("查一下我的进度", "check_transfer_status"),
              {"event": "action", "name": "verification_form"},
              {"event": "active_loop", "name": "verification_form"},
              user("2019001 1234", "inform"), {"event": "active_loop", "name": None},
              bot("核实通过"), user("还是不行，转人工", "request_human")]
    events_out = await ActionOpenTicket(tickets, verifications).run(
        CollectingDispatcher(), tracker(events, "request_human", "还是不行，转人工"), domain_dict)
    stored = tickets.get(slots_of(events_out)["handoff_ticket"])
    texts = [line["text"] for line in stored["transcript"]]
    assert "2019001 ****" in texts and not any("1234" in t for t in texts)
    assert stored["member_no"] is None  # no backend verification of this conversation
