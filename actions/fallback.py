"""What the assistant does when it is not sure what the member meant."""
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.domain_texts import topic_button, topic_title
from actions.handoff import TicketServices, open_ticket
from tuanjian.domain_names import MEMBER_NUMBER_ENTITY, NLU_FALLBACK, VERIFICATION_FORM, intent_name
from tuanjian.text import has_words

MAX_SUGGESTIONS = 3
FALLBACK_INTENT = NLU_FALLBACK
# Always offered after the suggestions: "none of these" and "a person".
ESCAPE_INTENTS = ("deny", "request_human")


def likely_topics(ranking: list[dict[str, Any]], domain: DomainDict) -> list[str]:
    """The most likely intents that have a topic to suggest, best first."""
    topics = [
        item["name"]
        for item in ranking
        if item["name"] not in ESCAPE_INTENTS and topic_title(domain, item["name"])
    ]
    return topics[:MAX_SUGGESTIONS]


def previous_intent(tracker: Tracker) -> str | None:
    """The intent of the member's message before the latest one."""
    users = [e for e in reversed(tracker.events) if e.get("event") == "user"]
    return intent_name(users[1].get("parse_data")) if len(users) > 1 else None


class ActionSuggestFaqs(TicketServices, Action):
    """Below the NLU threshold: "您是不是想问…" with the likeliest FAQs as buttons;
    the second time in a row, a person takes over."""

    def name(self) -> str:
        return "action_suggest_faqs"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        message = tracker.latest_message or {}
        if not has_words(message.get("text") or ""):
            dispatcher.utter_message(response="utter_empty_message")
            return []
        if any(e.get("entity") == MEMBER_NUMBER_ENTITY for e in message.get("entities") or []):
            # A member number, whatever the words around it: verify and answer.
            return [FollowupAction(VERIFICATION_FORM)]
        if previous_intent(tracker) == FALLBACK_INTENT:
            return await open_ticket(dispatcher, tracker, self.service, self.verifications, "fallbacks")
        intents = likely_topics(message.get("intent_ranking") or [], domain)
        buttons = [topic_button(domain, i) for i in (*intents, *ESCAPE_INTENTS)]
        dispatcher.utter_message(response="utter_did_you_mean", buttons=buttons)
        return []
