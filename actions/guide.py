"""The destination guide: the form asks what the decision table needs.

Answers come as buttons (entities in the payload), or as free text read for
the question asked (tuanjian.backend.guide.answers: its phrases, negations, ages and birth
years; never the intent of the whole message), which may carry several facts
at once ("我在深圳一家私企上班，公司没有团组织");
a later answer corrects an earlier one ("不对，我是劳务派遣"). An answer that
fits nothing is asked again with buttons at most twice; then the member is
offered a person rather than a guess.
"""
import datetime
from collections.abc import Callable
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import BackendUnavailable, call_backend, conversation_of
from tuanjian.backend.guide.answers import DONT_KNOW, load_answers, over_limit_by_birth_year
from tuanjian.backend.guide.table import Table, load_table
from tuanjian.backend.rules import SPECIAL_PROVINCES
from tuanjian.backend.service import TransferService
from tuanjian.backend.verification import VerificationService
from tuanjian.domain_names import DESTINATION_FORM, GUIDE_SLOTS, intent_name, is_question
from tuanjian.text import normalize

MAX_RETRIES = 2
# Facts answered by a league_org entity; the situation decides which one.
ORG_FACTS = ("employer_has_league_org", "user_unit_has_league_org")
# Entities that state a fact of the guide's decision table.
GUIDE_ENTITIES = ("graduate_situation", "league_org", "party_member")


def entity_values(message: dict[str, Any], entity: str) -> list[Any]:
    values = []
    for item in message.get("entities") or []:
        if item.get("entity") == entity and item.get("value") not in values:
            values.append(item.get("value"))
    return values


def facts_from_message(message: dict[str, Any], requested: str | None,
                       situation: str | None, table: Table, this_year: int) -> dict[str, Any]:
    """The facts one message states; {"graduate_situation": None} if it contradicts
    itself, and {requested: DONT_KNOW} when it says it does not know."""
    facts: dict[str, Any] = {}
    situations = table.situations([s for s in entity_values(message, "graduate_situation")
                                   if table.is_valid("graduate_situation", s)])
    if len(situations) > 1:
        return {"graduate_situation": None}
    if situations:
        facts["graduate_situation"] = situations[0]
        situation = situations[0]
    text = normalize(message.get("text") or "")
    answers = load_answers()
    # "不知道有没有团组织", "好像没有团委": no answer, asked again.
    unsure = answers.unsure(text)
    org = [table.answer("league_org", v) for v in entity_values(message, "league_org")]
    if len(org) == 1 and org[0] is not None and not unsure:
        org_fact = table.first_asked(list(ORG_FACTS), {"graduate_situation": situation})
        facts[org_fact] = org[0]
    party = [table.answer("party_member", v) for v in entity_values(message, "party_member")]
    if len(party) == 1 and party[0] is not None and not unsure:
        facts["party_member"] = party[0]
    # An age is a fact whatever was asked; "是" or "没有" answers only the question asked.
    over_limit = answers.read("over_28", text, this_year, table.age_limit, asked=requested == "over_28")
    if isinstance(over_limit, bool):
        facts["over_28"] = over_limit
    provinces = entity_values(message, "province")
    if provinces:
        facts["guide_province"] = provinces[-1]
    if requested and table.is_valid(requested, True):
        button = [table.answer("guide_answer", v) for v in entity_values(message, "guide_answer")]
        reading = button[0] if len(button) == 1 else answers.read(requested, text, this_year, table.age_limit)
        if reading is not None:
            facts[requested] = reading
    return facts


class ValidateDestinationForm(FormValidationAction):
    def __init__(self, service: TransferService | None = None,
                 verifications: VerificationService | None = None,
                 today: Callable[[], datetime.date] = datetime.date.today) -> None:
        self.service = service or TransferService()
        self.verifications = verifications or VerificationService()
        self.today = today
        self.table = load_table()

    def name(self) -> str:
        return "validate_destination_form"

    async def required_slots(self, domain_slots: list[str], dispatcher: CollectingDispatcher,
                             tracker: Tracker, domain: DomainDict) -> list[str]:
        if tracker.get_slot("guide_gave_up"):
            return []
        return self.table.questions_needed(tracker.slots)

    # run is overridden: the SDK's extract_<slot> / validate_<slot> see one slot
    # at a time, but one message is read as a whole here — a contradiction
    # between two facts, "不知道" or a corrected situation (which clears the
    # answers that depended on it) decide about several slots at once, and
    # the retry count is per message, not per slot.
    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        events = await self.known_facts(tracker) + await self.answer(dispatcher, tracker)
        tracker.add_slots(events)
        next_slot = await self.next_requested_slot(dispatcher, tracker, domain)
        return events + ([next_slot] if next_slot else [])

    async def known_facts(self, tracker: Tracker) -> list[EventType]:
        """Facts the backend holds for a verified member are not asked again."""
        if not tracker.get_slot("is_verified") or tracker.get_slot("over_28") is not None:
            return []
        try:
            member_no = await call_backend(self.verifications.current, conversation_of(tracker))
            if member_no is None:
                return []
            birth_year = await call_backend(self.service.birth_year, member_no)
        except BackendUnavailable:
            return []
        over_limit = None if birth_year is None else \
            over_limit_by_birth_year(birth_year, self.today().year, self.table.age_limit)
        return [] if over_limit is None else [SlotSet("over_28", over_limit)]

    async def answer(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
        message = tracker.latest_message or {}
        requested = tracker.get_slot("requested_slot")
        facts = facts_from_message(message, requested, tracker.get_slot("graduate_situation"), self.table,
                                   self.today().year)
        if facts.get("graduate_situation", "") is None:
            dispatcher.utter_message(response="utter_guide_contradiction")
            return self.retry(tracker)
        if requested and facts.get(requested) == DONT_KNOW:
            dispatcher.utter_message(response="utter_guide_dont_know")
            return self.retry(tracker)
        events: list[EventType] = []
        situation = facts.get("graduate_situation")
        if situation and situation != tracker.get_slot("graduate_situation"):
            # A corrected situation makes its follow-up answers meaningless.
            events += [SlotSet(fact, None) for fact in self.table.dependants("graduate_situation")
                       if fact not in facts]
        events += [SlotSet(fact, value) for fact, value in facts.items()]
        if requested is None or requested in facts:
            return events + ([SlotSet("guide_retries", 0)] if requested else [])
        intent = intent_name(message) or ""
        if any(f != "guide_province" for f in facts):
            return events  # other facts than the one asked
        if intent == "start_destination_guide":
            return events + [SlotSet(requested, None)]  # asked again, no complaint
        if is_question(intent):
            return events  # a question for the rules to answer
        dispatcher.utter_message(response="utter_guide_not_understood")
        return events + self.retry(tracker)

    @staticmethod
    def retry(tracker: Tracker) -> list[EventType]:
        retries = int(tracker.get_slot("guide_retries") or 0) + 1
        if retries > MAX_RETRIES:
            return [SlotSet("guide_gave_up", True), SlotSet("guide_retries", 0)]
        return [SlotSet("guide_retries", retries),
                SlotSet(tracker.get_slot("requested_slot") or "graduate_situation", None)]


class ActionInformWithoutContext(Action):
    """A value sent with nothing pending. Facts about a graduate's situation
    ("我是派遣制的，公司没有团支部") start the guide, which takes them from this
    message; anything else gets the menu. (A rule per combination of entities
    would be needed otherwise: Rasa's rules match a message's entities exactly.)"""

    def name(self) -> str:
        return "action_inform_without_context"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        stated = {e.get("entity") for e in (tracker.latest_message or {}).get("entities") or []}
        if stated & set(GUIDE_ENTITIES):
            return [FollowupAction(DESTINATION_FORM)]
        dispatcher.utter_message(response="utter_inform_no_context")
        return []


class ActionRecommendDestination(Action):
    def __init__(self) -> None:
        self.table = load_table()

    def name(self) -> str:
        return "action_recommend_destination"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        reset = [SlotSet(slot, None) for slot in GUIDE_SLOTS]
        if tracker.get_slot("guide_gave_up"):
            dispatcher.utter_message(response="utter_guide_handoff")
            return reset
        destination = self.table.destination(tracker.slots)
        if destination is None:
            return reset
        dispatcher.utter_message(response=f"utter_destination_{destination}")
        province = tracker.get_slot("guide_province")
        if province in SPECIAL_PROVINCES and self.table.names_an_organisation(destination):
            dispatcher.utter_message(response="utter_destination_special_province", province=province)
        return reset
