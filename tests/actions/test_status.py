"""The status actions against the real backend with the demo data and a fake clock.

Whom a conversation may see comes from the backend's verification record of
that conversation; slots that claim otherwise are not believed."""
import time

import pytest
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.exc import OperationalError

from actions.status import ActionStatusFollowup, ActionTransferStatus, ActionUnbind, ValidateVerificationForm
from tests.actions.trackers import build_tracker, latest_message, slots_of
from tuanjian.backend.demo import BEIJING_BRANCH, COMPANY_BRANCH, COMPANY_COMMITTEE, STREET_BRANCH
from tuanjian.backend.verification import Conversation, VerificationService
from tuanjian.redaction import parse_credentials

DIGITS = {"2019001": "1234", "2019002": "5678", "2019003": "2468", "2019004": "1357",
          "2019005": "9753", "2019006": "8642", "2019007": "1122"}
SENDER = "web:member"


@pytest.fixture
def verifications(sessions, clock):
    return VerificationService(sessions, clock)


def tracker(text="", intent="inform", sender=SENDER, metadata=None, **slots):
    return build_tracker(latest_message(text, intent, metadata=metadata), sender=sender,
                         active_loop="verification_form" if "requested_slot" in slots else None, **slots)


async def validate(verifications, domain, text, **slots):
    dispatcher = CollectingDispatcher()
    events = await ValidateVerificationForm(verifications).run(dispatcher, tracker(text, **slots), domain)
    return [m["response"] for m in dispatcher.messages], slots_of(events)


def verify_in_backend(verifications, member_no, sender=SENDER):
    channel, external_id = sender.split(":", 1)
    attempt = verifications.attempt(Conversation(channel, external_id, ""), member_no, DIGITS[member_no])
    assert attempt.outcome == "verified"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2019001", ("2019001", None)),
        ("２０１９００１", ("2019001", None)),
        ("编号2019001，尾号1234", ("2019001", "1234")),
        ("2019001 1234", ("2019001", "1234")),
        ("1234", (None, "1234")),
        ("2019OO1", (None, None)),
        ("abc", (None, None)),
        ("2019001' OR '1'='1", ("2019001", None)),
        ("x" * 1000, (None, None)),
        ("123", (None, None)),
    ],
)
def test_parse_credentials(text, expected):
    assert parse_credentials(text) == (*expected, False)


@pytest.mark.parametrize("text, expected", [
    ("13812345678", (None, None)),
    ("手机13812345678 尾号5678", (None, "5678")),
    ("110105199001011234", (None, None)),
    ("身份证11010519900101123 1234", (None, "1234")),  # 17 digits: the ID's last character was an X
    ("2019001 13812345678", ("2019001", None)),
    ("+8613812345678", (None, None)),
    ("008613812345678 1234", (None, "1234")),
    ("110105900101123", (None, None)),  # a 15-digit ID number
])
def test_a_whole_phone_or_id_number_is_never_the_member_number(text, expected):
    assert parse_credentials(text) == (*expected, True)


@pytest.mark.parametrize("text, slots", [
    ("13812345678", {"requested_slot": "member_number"}),
    ("我手机号是13812345678", {"requested_slot": "phone_last4", "member_number": "2019001"}),
])
async def test_a_whole_phone_number_is_refused_and_kept_nowhere(verifications, demo, domain_dict,
                                                                 sessions, text, slots):
    messages, set_slots = await validate(verifications, domain_dict, text, **slots)
    assert messages == ["utter_personal_number_refused"]
    assert set_slots["member_number"] == slots.get("member_number")
    assert "13812345678" not in str(set_slots)
    assert verifications.current(Conversation("web", "member", "")) is None


async def test_number_then_digits_verifies_in_the_backend(verifications, demo, domain_dict):
    messages, slots = await validate(verifications, domain_dict, "2019001", requested_slot="member_number")
    assert messages == [] and slots == {"member_number": "2019001"}
    messages, slots = await validate(verifications, domain_dict, "1234", requested_slot="phone_last4",
                                     member_number="2019001")
    assert messages == ["utter_verified"]
    assert slots["is_verified"] is True and "phone_last4" not in slots  # the digits go into no slot
    assert slots["requested_slot"] is None  # nothing left to ask: the form ends
    assert verifications.current(Conversation("web", "member", "")) == "2019001"


async def test_both_in_one_message_with_full_width_digits(verifications, demo, domain_dict):
    _, slots = await validate(verifications, domain_dict, "我的编号２０１９００４，手机尾号１３５７",
                              requested_slot="member_number")
    assert slots["is_verified"] is True
    assert verifications.current(Conversation("web", "member", "")) == "2019004"


async def test_wrong_number_and_wrong_digits_read_the_same(verifications, demo, domain_dict):
    wrong_number = await validate(verifications, domain_dict, "2099999 1234", requested_slot="member_number")
    wrong_digits = await validate(verifications, domain_dict, "2019001 9999", requested_slot="member_number")
    assert wrong_number == wrong_digits
    assert wrong_number[0] == ["utter_verification_failed"]
    assert "is_verified" not in wrong_number[1]


@pytest.mark.parametrize("text", ["abc", "2019OO1", "123"])
async def test_malformed_member_number_asks_again(verifications, demo, domain_dict, text):
    messages, slots = await validate(verifications, domain_dict, text, requested_slot="member_number")
    assert messages == ["utter_invalid_member_number"] and slots["member_number"] is None


async def test_malformed_digits_ask_again(verifications, demo, domain_dict):
    messages, slots = await validate(verifications, domain_dict, "12", requested_slot="phone_last4",
                                     member_number="2019001")
    assert messages == ["utter_invalid_phone_last4"] and slots["member_number"] == "2019001"


async def test_a_question_during_verification_is_left_to_the_rules(verifications, demo, domain_dict):
    messages, slots = await validate(verifications, domain_dict, "忘记密码怎么办", intent="faq_forgot_password",
                                     requested_slot="member_number")
    assert messages == [] and "member_number" not in slots


async def test_fifth_failure_locks_the_number_for_every_conversation(verifications, demo, domain_dict):
    for attempt in range(4):
        messages, _ = await validate(verifications, domain_dict, "2019001 0000", sender=f"web:guess{attempt}",
                                     requested_slot="member_number")
        assert messages == ["utter_verification_failed"]
    messages, slots = await validate(verifications, domain_dict, "2019001 0000", sender="web:guess5",
                                     requested_slot="member_number")
    assert messages == [] and slots["verification_lock_minutes"] == 15
    # A new conversation with the right digits is refused too.
    _, slots = await validate(verifications, domain_dict, "2019001 1234", sender="web:fresh",
                              requested_slot="member_number")
    assert slots["verification_lock_minutes"] == 15 and "is_verified" not in slots
    dispatcher = CollectingDispatcher()
    events = await ActionTransferStatus(verifications=verifications).run(
        dispatcher, tracker(verification_lock_minutes=15), domain_dict)
    assert dispatcher.messages[0]["response"] == "utter_verification_locked"
    assert dispatcher.messages[0]["minutes"] == 15 and SlotSet("verification_lock_minutes", None) in events


async def test_one_client_is_throttled_across_member_numbers(verifications, demo, domain_dict):
    for n in range(19):
        await validate(verifications, domain_dict, f"20{n:05d} 0000", sender=f"web:c{n}",
                       requested_slot="member_number", metadata={"client": "ip-attacker"})
    _, slots = await validate(verifications, domain_dict, "2099999 0000", sender="web:c20",
                              requested_slot="member_number", metadata={"client": "ip-attacker"})
    assert slots["verification_lock_minutes"] == 15


async def status_of(service, verifications, domain, member_no, action=ActionTransferStatus,
                    intent="check_transfer_status"):
    verify_in_backend(verifications, member_no)
    dispatcher = CollectingDispatcher()
    events = await action(service, verifications).run(dispatcher, tracker(intent=intent, is_verified=True), domain)
    return dispatcher.messages, events


def by_response(messages):
    return {m["response"]: m for m in messages}


async def test_zhang_pending_at_step_3_with_11_days(service, verifications, demo, domain_dict):
    messages, _ = await status_of(service, verifications, domain_dict, "2019001")
    pending = by_response(messages)["utter_status_pending"]
    assert (pending["step"], pending["step_count"], pending["days_left"]) == (3, 4, 11)
    assert pending["organisation"] == COMPANY_BRANCH
    assert pending["step_role"] == domain_dict["responses"]["utter_step_role_member_3"][0]["text"]
    assert pending["contact"]
    assert "utter_status_can_withdraw" in by_response(messages)


async def test_li_terminated_start_again_and_contact_receiver(service, verifications, demo, domain_dict):
    messages, _ = await status_of(service, verifications, domain_dict, "2019002")
    terminated = by_response(messages)["utter_status_terminated"]
    assert terminated["to_organisation"] == STREET_BRANCH and terminated["contact"]


async def test_wang_completed_in_beijing_reports_via_wechat(service, verifications, demo, domain_dict):
    responses = by_response((await status_of(service, verifications, domain_dict, "2019003"))[0])
    assert responses["utter_status_completed"]["organisation"] == BEIJING_BRANCH
    assert responses["utter_status_completed_special_province"]["province"] == "北京"


async def test_zhao_pending_at_step_1_can_withdraw(service, verifications, demo, domain_dict):
    responses = by_response((await status_of(service, verifications, domain_dict, "2019004"))[0])
    assert responses["utter_status_pending"]["step"] == 1
    assert responses["utter_status_pending"]["days_left"] == 13
    assert "utter_status_can_withdraw" in responses


async def test_chen_has_no_request(service, verifications, demo, domain_dict):
    messages, _ = await status_of(service, verifications, domain_dict, "2019005")
    assert [m["response"] for m in messages] == ["utter_status_no_request"]


async def test_liu_awaits_branch_assignment_by_the_committee(service, verifications, demo, domain_dict):
    responses = by_response((await status_of(service, verifications, domain_dict, "2019006"))[0])
    waiting = responses["utter_status_awaiting_assignment"]
    assert waiting["to_organisation"] == COMPANY_COMMITTEE and waiting["level"] == "团委"


async def test_sun_step_2_approved_by_default_now_at_step_3(service, verifications, demo, domain_dict):
    responses = by_response((await status_of(service, verifications, domain_dict, "2019007"))[0])
    assert responses["utter_status_pending"]["step"] == 3
    assert responses["utter_status_pending"]["days_left"] == 14
    assert responses["utter_status_default_approved_note"]["count"] == 1


@pytest.mark.parametrize("action", [ActionTransferStatus, ActionStatusFollowup])
async def test_slots_claiming_verification_learn_nothing(service, verifications, demo, domain_dict, action):
    # Forged mirror slots, as a tracker-events attack would set them.
    dispatcher = CollectingDispatcher()
    events = await action(service, verifications).run(
        dispatcher, tracker(intent="ask_contact", sender="web:attacker", is_verified=True,
                            verified_member="2019001"), domain_dict)
    assert [m["response"] for m in dispatcher.messages] == ["utter_verification_expired"]
    assert SlotSet("is_verified", False) in events
    assert FollowupAction("verification_form") in events


async def test_another_conversation_is_not_verified_by_mine(service, verifications, demo, domain_dict):
    verify_in_backend(verifications, "2019001", sender="web:mine")
    dispatcher = CollectingDispatcher()
    await ActionTransferStatus(service, verifications).run(
        dispatcher, tracker(sender="rest:mine", is_verified=True), domain_dict)
    assert all(m["response"] == "utter_verification_expired" for m in dispatcher.messages)


@pytest.mark.parametrize(
    "member_no, intent, response, key, value",
    [
        ("2019001", "ask_contact", "utter_followup_contact", "organisation", COMPANY_BRANCH),
        ("2019001", "faq_approval_pending", "utter_followup_wait", "days_left", 11),
        ("2019007", "ask_wait_time", "utter_followup_wait", "days_left", 14),
        ("2019003", "ask_wait_time", "utter_followup_no_wait", None, None),
        ("2019001", "faq_wrong_info", "utter_status_can_withdraw", None, None),
        ("2019003", "faq_wrong_info", "utter_status_cannot_withdraw", None, None),
        ("2019005", "ask_contact", "utter_followup_contact_none", "organisation", "计算机学院2019级2班团支部"),
    ],
)
async def test_followups_answer_for_the_request(service, verifications, demo, domain_dict, member_no, intent,
                                                response, key, value):
    messages, _ = await status_of(service, verifications, domain_dict, member_no, ActionStatusFollowup, intent)
    assert messages[0]["response"] == response
    if key:
        assert messages[0][key] == value


class BrokenService:
    def attempt(self, *args):
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    current = member_status = attempt


class SlowService:
    def attempt(self, *args):
        time.sleep(2.5)

    current = member_status = attempt


@pytest.mark.parametrize("service_down", [BrokenService(), SlowService()])
async def test_backend_down_offers_the_general_answer(domain_dict, service_down):
    messages, slots = await validate(service_down, domain_dict, "2019001 1234", requested_slot="member_number")
    assert slots["lookup_failed"] is True and messages == []
    dispatcher = CollectingDispatcher()
    events = await ActionTransferStatus(service_down, service_down).run(
        dispatcher, tracker(lookup_failed=True), domain_dict)
    assert [m["response"] for m in dispatcher.messages] == ["utter_status_unavailable", "utter_faq_approval_pending"]
    assert SlotSet("lookup_failed", False) in events
    dispatcher = CollectingDispatcher()
    await ActionTransferStatus(service_down, service_down).run(dispatcher, tracker(is_verified=True), domain_dict)
    assert [m["response"] for m in dispatcher.messages] == ["utter_status_unavailable", "utter_faq_approval_pending"]


async def test_other_credentials_in_a_verified_conversation_verify_anew(verifications, demo, domain_dict):
    verify_in_backend(verifications, "2019001")
    _, slots = await validate(verifications, domain_dict, "2019004 1357", is_verified=True)
    assert slots["is_verified"] is True
    assert verifications.current(Conversation("web", "member", "")) == "2019004"
    messages, slots = await validate(verifications, domain_dict, "2019001 0000", is_verified=True)
    assert messages == ["utter_verification_failed"] and slots["is_verified"] is False
    assert verifications.current(Conversation("web", "member", "")) is None


async def test_wechat_verification_is_remembered_for_the_next_visit(verifications, demo, domain_dict):
    await validate(verifications, domain_dict, "2019001 1234", sender="wechat:openid-1",
                   requested_slot="member_number")
    assert verifications.bound_member("wechat", "openid-1") == "2019001"
    # A later visit (a new session): verified from the binding, nothing asked.
    messages, slots = await validate(verifications, domain_dict, "查进度", intent="check_transfer_status",
                                     sender="wechat:openid-1")
    assert slots["is_verified"] is True and messages == []


async def test_web_and_rest_verifications_are_not_remembered(verifications, demo, domain_dict):
    await validate(verifications, domain_dict, "2019001 1234", requested_slot="member_number")
    assert verifications.bound_member("web", "member") is None


async def test_unbind_forgets_the_binding(verifications, demo, domain_dict):
    verifications.bind("wechat", "openid-1", "2019001")
    dispatcher = CollectingDispatcher()
    events = await ActionUnbind(verifications).run(dispatcher, tracker(sender="wechat:openid-1"), domain_dict)
    assert dispatcher.messages[0]["response"] == "utter_unbound"
    assert SlotSet("is_verified", False) in events
    assert verifications.bound_member("wechat", "openid-1") is None
