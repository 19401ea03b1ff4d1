"""The status actions against the real backend with the demo data and a fake clock."""
import time

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.exc import OperationalError

from actions.status import (
    LOCK_SECONDS,
    ActionStatusFollowup,
    ActionTransferStatus,
    ValidateVerificationForm,
    parse_credentials,
)
from bot.backend.demo import BEIJING_BRANCH, COMPANY_BRANCH, COMPANY_COMMITTEE, STREET_BRANCH

EPOCH = 1_700_000_000.0


def tracker(text="", intent="inform", sender="member", **slots):
    latest = {"text": text, "intent": {"name": intent}, "intent_ranking": []}
    return Tracker(sender, slots, latest, [], False, None,
                   {"name": "verification_form"} if "requested_slot" in slots else {}, "action_listen")


def slots_of(events):
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}


async def validate(service, domain, text, now=EPOCH, **slots):
    dispatcher = CollectingDispatcher()
    action = ValidateVerificationForm(service, clock=lambda: now)
    events = await action.run(dispatcher, tracker(text, **slots), domain)
    return [m["response"] for m in dispatcher.messages], slots_of(events)


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
    assert parse_credentials(text) == expected


async def test_number_then_digits_verifies(service, demo, domain_dict):
    messages, slots = await validate(service, domain_dict, "2019001", requested_slot="member_number")
    assert messages == [] and slots == {"member_number": "2019001"}
    messages, slots = await validate(service, domain_dict, "1234", requested_slot="phone_last4",
                                     member_number="2019001")
    assert messages == []
    assert slots["is_verified"] is True and slots["verified_member"] == "2019001"
    assert slots["requested_slot"] is None  # nothing left to ask: the form ends


async def test_both_in_one_message_with_full_width_digits(service, demo, domain_dict):
    _, slots = await validate(service, domain_dict, "我的编号２０１９００４，手机尾号１３５７",
                              requested_slot="member_number")
    assert slots["verified_member"] == "2019004"


async def test_wrong_number_and_wrong_digits_read_the_same(service, demo, domain_dict):
    wrong_number = await validate(service, domain_dict, "2099999 1234", requested_slot="member_number")
    wrong_digits = await validate(service, domain_dict, "2019001 9999", requested_slot="member_number")
    assert wrong_number == wrong_digits
    assert wrong_number[0] == ["utter_verification_failed"]
    assert "is_verified" not in wrong_number[1]


@pytest.mark.parametrize("text", ["2019OO1", "'; DROP TABLE members; --", "x" * 1000, "1234"])
async def test_malformed_member_number_asks_again(service, demo, domain_dict, text):
    messages, slots = await validate(service, domain_dict, text, requested_slot="member_number")
    assert messages == ["utter_invalid_member_number"]
    assert slots == {"member_number": None}


async def test_malformed_digits_ask_again(service, demo, domain_dict):
    messages, slots = await validate(service, domain_dict, "12ab", requested_slot="phone_last4",
                                     member_number="2019001")
    assert messages == ["utter_invalid_phone_last4"]
    assert "is_verified" not in slots


async def test_a_question_during_verification_is_left_to_the_rules(service, demo, domain_dict):
    messages, slots = await validate(service, domain_dict, "忘记密码怎么办", intent="faq_forgot_password",
                                     requested_slot="member_number")
    assert messages == [] and slots == {}


async def test_fifth_failure_locks_for_fifteen_minutes(service, demo, domain_dict):
    failures = 0
    for attempt in range(1, 5):
        messages, slots = await validate(service, domain_dict, "2019001 0000",
                                         requested_slot="member_number", verification_failures=failures)
        failures = slots["verification_failures"]
        assert failures == attempt and messages == ["utter_verification_failed"]
    messages, slots = await validate(service, domain_dict, "2019001 0000",
                                     requested_slot="member_number", verification_failures=4)
    assert messages == []
    assert slots["verification_locked_until"] == EPOCH + LOCK_SECONDS
    assert slots["requested_slot"] is None


async def test_right_answer_after_four_failures_verifies(service, demo, domain_dict):
    _, slots = await validate(service, domain_dict, "2019001 1234",
                              requested_slot="member_number", verification_failures=4)
    assert slots["is_verified"] is True and slots["verification_failures"] == 0


async def test_locked_conversation_is_not_checked_even_with_right_answers(service, demo, domain_dict):
    messages, slots = await validate(service, domain_dict, "2019001 1234", requested_slot="member_number",
                                     verification_locked_until=EPOCH + 60)
    assert "is_verified" not in slots
    dispatcher = CollectingDispatcher()
    await ActionTransferStatus(service, clock=lambda: EPOCH).run(
        dispatcher, tracker(verification_locked_until=EPOCH + 600), domain_dict)
    assert dispatcher.messages[0]["response"] == "utter_verification_locked"
    assert dispatcher.messages[0]["minutes"] == 10


async def test_lock_expires(service, demo, domain_dict):
    _, slots = await validate(service, domain_dict, "2019001 1234", now=EPOCH + LOCK_SECONDS + 1,
                              requested_slot="member_number", verification_locked_until=EPOCH + LOCK_SECONDS)
    assert slots["is_verified"] is True


async def status_of(service, domain, member_no, action=ActionTransferStatus, intent="check_transfer_status"):
    dispatcher = CollectingDispatcher()
    events = await action(service).run(
        dispatcher, tracker(intent=intent, verified_member=member_no, is_verified=True), domain)
    return dispatcher.messages, events


def by_response(messages):
    return {m["response"]: m for m in messages}


async def test_zhang_pending_at_step_3_with_11_days(service, demo, domain_dict):
    messages, _ = await status_of(service, domain_dict, "2019001")
    pending = by_response(messages)["utter_status_pending"]
    assert (pending["step"], pending["step_count"], pending["days_left"]) == (3, 4, 11)
    assert pending["organisation"] == COMPANY_BRANCH
    assert pending["step_role"] == domain_dict["responses"]["utter_step_role_member_3"][0]["text"]
    assert pending["contact"]
    assert "utter_status_can_withdraw" in by_response(messages)


async def test_li_terminated_start_again_and_contact_receiver(service, demo, domain_dict):
    messages, _ = await status_of(service, domain_dict, "2019002")
    terminated = by_response(messages)["utter_status_terminated"]
    assert terminated["to_organisation"] == STREET_BRANCH and terminated["contact"]


async def test_wang_completed_in_beijing_reports_via_wechat(service, demo, domain_dict):
    responses = by_response((await status_of(service, domain_dict, "2019003"))[0])
    assert responses["utter_status_completed"]["organisation"] == BEIJING_BRANCH
    assert responses["utter_status_completed_special_province"]["province"] == "北京"


async def test_zhao_pending_at_step_1_can_withdraw(service, demo, domain_dict):
    responses = by_response((await status_of(service, domain_dict, "2019004"))[0])
    assert responses["utter_status_pending"]["step"] == 1
    assert responses["utter_status_pending"]["days_left"] == 13
    assert "utter_status_can_withdraw" in responses


async def test_chen_has_no_request(service, demo, domain_dict):
    messages, _ = await status_of(service, domain_dict, "2019005")
    assert [m["response"] for m in messages] == ["utter_status_no_request"]


async def test_liu_awaits_branch_assignment_by_the_committee(service, demo, domain_dict):
    responses = by_response((await status_of(service, domain_dict, "2019006"))[0])
    waiting = responses["utter_status_awaiting_assignment"]
    assert waiting["to_organisation"] == COMPANY_COMMITTEE and waiting["level"] == "团委"


async def test_sun_step_2_approved_by_default_now_at_step_3(service, demo, domain_dict):
    responses = by_response((await status_of(service, domain_dict, "2019007"))[0])
    assert responses["utter_status_pending"]["step"] == 3
    assert responses["utter_status_pending"]["days_left"] == 14
    assert responses["utter_status_default_approved_note"]["count"] == 1


async def test_masked_name_greets_a_freshly_verified_member(service, demo, domain_dict):
    dispatcher = CollectingDispatcher()
    await ActionTransferStatus(service).run(
        dispatcher, tracker(verified_member="2019001", is_verified=True, phone_last4="1234"), domain_dict)
    assert dispatcher.messages[0] == {**dispatcher.messages[0], "response": "utter_verified", "name": "张*"}


async def test_unverified_conversation_learns_nothing(service, demo, domain_dict):
    dispatcher = CollectingDispatcher()
    await ActionTransferStatus(service).run(dispatcher, tracker(sender="someone-else"), domain_dict)
    assert dispatcher.messages == []


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
async def test_followups_answer_for_the_request(service, demo, domain_dict, member_no, intent, response, key, value):
    messages, _ = await status_of(service, domain_dict, member_no, ActionStatusFollowup, intent)
    assert messages[0]["response"] == response
    if key:
        assert messages[0][key] == value


class BrokenService:
    def verify(self, *args):
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    member_status = verify


class SlowService:
    def verify(self, *args):
        time.sleep(2.5)

    member_status = verify


@pytest.mark.parametrize("service_down", [BrokenService(), SlowService()])
async def test_backend_down_offers_the_general_answer(domain_dict, service_down):
    messages, slots = await validate(service_down, domain_dict, "2019001 1234", requested_slot="member_number")
    assert slots["lookup_failed"] is True and messages == []
    dispatcher = CollectingDispatcher()
    events = await ActionTransferStatus(service_down).run(dispatcher, tracker(lookup_failed=True), domain_dict)
    assert [m["response"] for m in dispatcher.messages] == ["utter_status_unavailable", "utter_faq_approval_pending"]
    assert SlotSet("lookup_failed", False) in events
    status_messages, _ = await status_of(service_down, domain_dict, "2019001")
    assert [m["response"] for m in status_messages] == ["utter_status_unavailable", "utter_faq_approval_pending"]


async def test_other_credentials_in_a_verified_conversation_verify_anew(service, demo, domain_dict):
    _, slots = await validate(service, domain_dict, "2019004 1357",
                              is_verified=True, verified_member="2019001")
    assert slots["verified_member"] == "2019004" and slots["is_verified"] is True
    messages, slots = await validate(service, domain_dict, "2019004 0000",
                                     is_verified=True, verified_member="2019001")
    assert messages == ["utter_verification_failed"]
    assert slots["is_verified"] is False and slots["verified_member"] is None


def wechat_tracker(text="", intent="inform", sender="openid-1", **slots):
    latest = {"text": text, "intent": {"name": intent}, "intent_ranking": []}
    events = [{"event": "user", "text": text, "input_channel": "wechat"}]
    return Tracker(sender, slots, latest, events, False, None,
                   {"name": "verification_form"}, "action_listen")


async def test_wechat_verification_is_remembered_for_the_next_visit(service, demo, domain_dict):
    action = ValidateVerificationForm(service, clock=lambda: EPOCH)
    dispatcher = CollectingDispatcher()
    await action.run(dispatcher, wechat_tracker("2019001 1234", requested_slot="member_number"), domain_dict)
    assert service.bound_member("wechat", "openid-1") == "2019001"
    # Next visit: a new conversation of the same OpenID is verified at once.
    events = await action.run(CollectingDispatcher(), wechat_tracker("查一下我的进度", "check_transfer_status"),
                              domain_dict)
    assert slots_of(events)["verified_member"] == "2019001"
    # Another OpenID is not.
    events = await action.run(CollectingDispatcher(), wechat_tracker("查一下我的进度", "check_transfer_status",
                                                                      sender="openid-2"), domain_dict)
    assert "verified_member" not in slots_of(events)


async def test_web_and_rest_verifications_are_not_remembered(service, demo, domain_dict):
    await validate(service, domain_dict, "2019001 1234", requested_slot="member_number")
    assert service.bound_member("rest", "member") is None


async def test_unbind_forgets_the_binding(service, demo, domain_dict):
    from actions.status import ActionUnbind

    service.bind("wechat", "openid-1", "2019001")
    dispatcher = CollectingDispatcher()
    events = await ActionUnbind(service).run(dispatcher, wechat_tracker("解除绑定", "unbind",
                                                                        is_verified=True), domain_dict)
    assert service.bound_member("wechat", "openid-1") is None
    assert [m["response"] for m in dispatcher.messages] == ["utter_unbound"]
    assert slots_of(events) == {"is_verified": False, "verified_member": None}
