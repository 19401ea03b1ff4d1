"""The destination guide's form validation and recommendation."""
import datetime

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.backend.verification import Conversation, VerificationService
from actions.guide import ActionRecommendDestination, ValidateDestinationForm, facts_from_message
from bot.guide.table import load_table

TABLE = load_table()


def message(text="", intent="inform", **entities):
    ents = [{"entity": k, "value": v} for k, vs in entities.items() for v in ([vs] if isinstance(vs, str) else vs)]
    return {"text": text, "intent": {"name": intent}, "entities": ents}


def tracker(latest, sender="member", **slots):
    return Tracker(sender, slots, latest, [], False, None, {"name": "destination_form"}, "action_listen")


def slots_of(events):
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}


class NoBackend:
    def birth_year(self, member_no):
        raise AssertionError("not verified: the backend must not be asked")

    def current(self, conversation):
        raise AssertionError("not verified: the backend must not be asked")


@pytest.fixture
def validate(domain_dict):
    async def run(latest, service=None, verifications=None, today=datetime.date(2026, 11, 27), **slots):
        dispatcher = CollectingDispatcher()
        action = ValidateDestinationForm(service or NoBackend(), verifications or NoBackend(),
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


@pytest.mark.parametrize("intent, value", [("affirm", True), ("deny", False)])
async def test_yes_no_answers_the_requested_question(validate, intent, value):
    _, slots = await validate(message("", intent), requested_slot="over_28", graduate_situation="升学",
                              party_member=False)
    assert slots["over_28"] is value


async def test_age_in_words(validate):
    _, slots = await validate(message("我今年29岁"), requested_slot="over_28")
    assert slots["over_28"] is True


async def test_contradictory_situations_are_asked_again_not_guessed(validate):
    messages, slots = await validate(message("我在读研也在上班", graduate_situation=["升学", "就业"]),
                                     requested_slot="graduate_situation")
    assert messages == ["utter_guide_contradiction"]
    assert slots["graduate_situation"] is None and slots["guide_retries"] == 1


@pytest.mark.parametrize("league_org", ["未知"])
async def test_not_knowing_is_no_answer(validate, league_org):
    messages, slots = await validate(message("不知道有没有团组织", league_org=league_org),
                                     requested_slot="employer_has_league_org", graduate_situation="就业")
    assert messages == ["utter_guide_not_understood"]
    assert "employer_has_league_org" not in slots or slots["employer_has_league_org"] is None


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
                              None, TABLE) == {}
