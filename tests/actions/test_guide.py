"""The destination guide's form validation and recommendation."""
import datetime
from typing import Any

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.guide import ActionRecommendDestination, ValidateDestinationForm, facts_from_message
from tests.actions.trackers import build_tracker, latest_message, slots_of
from tuanjian.backend.guide.table import load_table
from tuanjian.backend.verification import Conversation, VerificationService

TABLE = load_table()


message = latest_message


def tracker(latest, sender="member", **slots):
    return build_tracker(latest, sender=sender, active_loop="destination_form", **slots)


class NoBackend:
    def birth_year(self, member_no):
        raise AssertionError("not verified: the backend must not be asked")

    def current(self, conversation):
        raise AssertionError("not verified: the backend must not be asked")


@pytest.fixture
def validate(domain_dict):
    async def run(latest, service=None, verifications=None, today=datetime.date(2026, 11, 27), **slots):
        dispatcher = CollectingDispatcher()
        no_backend: Any = NoBackend()
        action = ValidateDestinationForm(service or no_backend, verifications or no_backend,
                                         today=lambda: today)
        events = await action.run(dispatcher, tracker(latest, **slots), domain_dict)
        return [m["response"] for m in dispatcher.messages], slots_of(events)
    return run


async def test_several_facts_in_one_free_text_message(validate):
    text = "我在深圳一家私企上班，公司没有团组织"
    _, slots = await validate(message(text, graduate_situation="就业", league_org="无", province="广东"),
                              requested_slot="graduate_situation")
    assert slots["graduate_situation"] == "就业"
    assert slots["employer_has_league_org"] is False
    assert slots["guide_province"] == "广东"
    assert slots["requested_slot"] == "party_member"  # only what is still missing


async def test_org_answer_for_a_dispatch_worker_is_about_the_user_unit(validate):
    _, slots = await validate(message("用工单位没建团组织", league_org="无"),
                              requested_slot="user_unit_has_league_org", graduate_situation="劳务派遣")
    assert slots["user_unit_has_league_org"] is False and "employer_has_league_org" not in slots


async def test_correction_replaces_the_situation_and_forgets_its_follow_ups(validate):
    _, slots = await validate(message("不对，我是劳务派遣", graduate_situation="劳务派遣"),
                              requested_slot="party_member", graduate_situation="就业",
                              employer_has_league_org=True)
    assert slots["graduate_situation"] == "劳务派遣"
    assert slots["employer_has_league_org"] is None
    assert slots["requested_slot"] == "user_unit_has_league_org"


@pytest.mark.parametrize("answer, value", [("是", True), ("否", False)])
@pytest.mark.parametrize("question", ["over_28", "holds_league_post"])
async def test_a_button_answers_the_requested_question(validate, question, answer, value):
    _, slots = await validate(message(f'/inform{{"guide_answer":"{answer}"}}', guide_answer=answer),
                              requested_slot=question, graduate_situation="升学", party_member=False,
                              over_28=True if question == "holds_league_post" else None)
    assert slots[question] is value


@pytest.mark.parametrize("question, text, intent, value", [
    # The option titles typed out, whatever intent the classifier gave the message.
    ("over_28", "未满28周岁", "affirm", False),
    ("over_28", "已满28周岁", "deny", True),
    ("over_28", "我今年29岁", "inform", True),
    ("over_28", "27岁", "inform", False),
    ("over_28", "还没满", "deny", False),
    ("over_28", "二十九岁了", "inform", True),
    ("over_28", "2001年出生的", "inform", False),  # 25 in 2026
    ("over_28", "96年的", "inform", True),
    ("holds_league_post", "不担任", "affirm", False),
    ("holds_league_post", "担任", "deny", True),
    ("holds_league_post", "我是团支书", "inform", True),
    ("holds_league_post", "我不是团支书，就是普通团员", "inform", False),
    ("holds_league_post", "没有在团委担任职务", "affirm", False),
    ("party_member", "群众", "deny", False),
    ("party_member", "我是预备党员", "affirm", True),
    ("party_member", "入党积极分子", "affirm", False),
    ("party_member", "还在预备期", "inform", True),
    ("party_member", "是", "affirm", True),
    ("employer_has_league_org", "没有建立", "deny", False),
    ("employer_has_league_org", "已建立", "affirm", True),
    ("employer_has_league_org", "有", "affirm", True),
])
async def test_typed_answers_are_read_for_the_question_asked(validate, question, text, intent, value):
    _, slots = await validate(message(text, intent), requested_slot=question, graduate_situation="就业",
                              over_28=True if question == "holds_league_post" else None)
    assert slots[question] is value


@pytest.mark.parametrize("question, text", [
    ("over_28", "98年的"),  # turns 28 in 2026: the birthday may not have passed
    ("over_28", "我29岁，没满28"),  # both at once
    ("over_28", "对吧"),
    ("holds_league_post", "嗯嗯好的呀好"),
    ("party_member", "算是吧"),
])
async def test_an_unclear_typed_answer_is_asked_again(validate, question, text):
    messages, slots = await validate(message(text, "affirm"), requested_slot=question,
                                     graduate_situation="就业",
                                     over_28=True if question == "holds_league_post" else None)
    assert messages in (["utter_guide_not_understood"], ["utter_guide_dont_know"])  # a hedge: 对吧
    assert slots.get(question) is None and slots["guide_retries"] == 1


async def test_a_plain_yes_answers_only_the_question_asked(validate):
    _, slots = await validate(message("是", "affirm"), requested_slot="party_member", graduate_situation="升学")
    assert slots["party_member"] is True and "over_28" not in slots


async def test_contradictory_situations_are_asked_again_not_guessed(validate):
    messages, slots = await validate(message("我在读研也在上班", graduate_situation=["升学", "就业"]),
                                     requested_slot="graduate_situation")
    assert messages == ["utter_guide_contradiction"]
    assert slots["graduate_situation"] is None and slots["guide_retries"] == 1


@pytest.mark.parametrize("question, text", [
    ("employer_has_league_org", "不知道有没有团组织"), ("over_28", "不记得了"), ("party_member", "不清楚"),
    ("holds_league_post", "不太确定"),
])
async def test_not_knowing_is_no_answer(validate, question, text):
    messages, slots = await validate(message(text, league_org="未知"), requested_slot=question,
                                     graduate_situation="就业",
                                     over_28=True if question == "holds_league_post" else None)
    assert messages == ["utter_guide_dont_know"]
    assert slots.get(question) is None and slots["guide_retries"] == 1


async def test_nonsense_is_asked_again_twice_then_handed_over(validate):
    retries = 0
    for expected_retries in (1, 2):
        messages, slots = await validate(message("asdf", "out_of_scope"), requested_slot="graduate_situation",
                                         guide_retries=retries)
        assert messages == ["utter_guide_not_understood"]
        retries = slots["guide_retries"]
        assert retries == expected_retries
    messages, slots = await validate(message("asdf", "out_of_scope"), requested_slot="graduate_situation",
                                     guide_retries=retries)
    assert slots["guide_gave_up"] is True and slots["requested_slot"] is None


async def test_a_question_mid_way_is_left_to_the_rules(validate):
    messages, slots = await validate(message("忘记密码怎么办", "faq_forgot_password"),
                                     requested_slot="party_member", graduate_situation="升学")
    assert messages == [] and "party_member" not in slots


async def test_verified_member_is_not_asked_the_age(validate, service, sessions, clock, demo):
    # 2019001 was born in 2001: 25 in 2026. Verified in the backend, for this conversation.
    verifications = VerificationService(sessions, clock)
    verifications.attempt(Conversation("web", "guide", ""), "2019001", "1234")
    _, slots = await validate(message("帮我判断该转到哪", "start_destination_guide"), service=service,
                              verifications=verifications, sender="web:guide", is_verified=True)
    assert slots["over_28"] is False
    assert slots["requested_slot"] == "graduate_situation"


async def test_a_slot_claiming_verification_is_not_believed(validate, service, sessions, clock, demo):
    verifications = VerificationService(sessions, clock)
    _, slots = await validate(message("帮我判断该转到哪", "start_destination_guide"), service=service,
                              verifications=verifications, sender="web:forged", is_verified=True)
    assert "over_28" not in slots


async def recommend(**slots):
    dispatcher = CollectingDispatcher()
    events = await ActionRecommendDestination().run(dispatcher, tracker({}, **slots), {})
    return dispatcher.messages, slots_of(events)


async def test_recommendation_with_special_province_advice():
    messages, slots = await recommend(graduate_situation="就业", employer_has_league_org=False,
                                      party_member=False, over_28=False, guide_province="广东")
    assert [m["response"] for m in messages] == ["utter_destination_employer_town_branch",
                                                 "utter_destination_special_province"]
    assert messages[1]["province"] == "广东"
    assert all(value is None for value in slots.values())  # the next guide starts afresh


async def test_no_special_advice_elsewhere_or_without_an_organisation():
    messages, _ = await recommend(graduate_situation="升学", party_member=False, over_28=False,
                                  guide_province="江苏")
    assert [m["response"] for m in messages] == ["utter_destination_admitting_school"]
    messages, _ = await recommend(graduate_situation="出国留学", party_member=False, over_28=False,
                                  guide_province="北京")
    assert [m["response"] for m in messages] == ["utter_destination_written_application"]


async def test_gave_up_offers_a_person():
    messages, _ = await recommend(guide_gave_up=True, graduate_situation=None)
    assert [m["response"] for m in messages] == ["utter_guide_handoff"]


def test_facts_ignore_unknown_situations():
    assert facts_from_message(message("去火星", graduate_situation="去火星"), "graduate_situation",
                              None, TABLE, 2026) == {}


@pytest.mark.parametrize("text", ["我在私企上班，不太清楚有没有团组织", "我在私企上班，好像没有团委"])
async def test_an_unsure_organisation_is_not_taken_from_the_entity(validate, text):
    _, slots = await validate(message(text, graduate_situation="就业", league_org="无"),
                              requested_slot="graduate_situation")
    assert slots["graduate_situation"] == "就业" and slots.get("employer_has_league_org") is None
    assert slots["requested_slot"] == "employer_has_league_org"  # asked, not assumed


async def test_a_dispatch_worker_who_also_says_they_work_is_a_dispatch_worker(validate):
    messages, slots = await validate(message("我合同签在人力公司，在另一家公司上班，公司没有团组织",
                                             graduate_situation=["劳务派遣", "就业"], league_org="无"),
                                     requested_slot="graduate_situation")
    assert messages == [] and slots["graduate_situation"] == "劳务派遣"
    assert slots["user_unit_has_league_org"] is False


@pytest.mark.parametrize("entities, followup", [
    ({"graduate_situation": "劳务派遣", "league_org": "无"}, True),  # two facts: no single rule matches
    ({"graduate_situation": "升学"}, True),
    ({"party_member": "是", "province": "广东"}, True),
    ({"province": "广东"}, False),
    ({}, False),
])
async def test_facts_stated_with_nothing_pending_start_the_guide(entities, followup):
    from actions.guide import ActionInformWithoutContext

    dispatcher = CollectingDispatcher()
    latest = message("我是派遣制的，公司没有团支部", **entities)
    events = await ActionInformWithoutContext().run(dispatcher, build_tracker(latest, sender="web:x"), {})
    if followup:
        assert events == [{"event": "followup", "timestamp": None, "name": "destination_form"}]
        assert dispatcher.messages == []
    else:
        assert events == [] and [m["response"] for m in dispatcher.messages] == ["utter_inform_no_context"]
