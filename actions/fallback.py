"""What the assistant does when it is not sure what the member meant."""
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction
from rasa_sdk.executor import CollectingDispatcher

from actions.domain_texts import DomainDict, topic_button, topic_title
from actions.handoff import TicketServices, open_ticket
from bot.nlu.text import has_words

MAX_SUGGESTIONS = 3
FALLBACK_INTENT = "nlu_fallback"
# Always offered after the suggestions: "none of these" and "a person".
ESCAPE_INTENTS = ("deny", "request_human")


def likely_topics(ranking: List[Dict[Text, Any]], domain: DomainDict) -> List[Text]:
    """The most likely intents that have a topic to suggest, best first."""
    topics = [
        item["name"]
        for item in ranking
        if item["name"] not in ESCAPE_INTENTS and topic_title(domain, item["name"])
    ]
    return topics[:MAX_SUGGESTIONS]


def previous_intent(tracker: Tracker) -> Optional[Text]:
    """The intent of the member's message before the latest one."""
    users = [e for e in reversed(tracker.events) if e.get("event") == "user"]
    return ((users[1].get("parse_data") or {}).get("intent") or {}).get("name") if len(users) > 1 else None


class ActionSuggestFaqs(TicketServices, Action):
    """Below the NLU threshold: "您是不是想问…" with the likeliest FAQs as buttons;
    the second time in a row, a person takes over."""

    def name(self) -> Text:
        return "action_suggest_faqs"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[Dict[Text, Any]]:
        message = tracker.latest_message or {}
        if not has_words(message.get("text") or ""):
            dispatcher.utter_message(response="utter_empty_message")
            return []
        if any(e.get("entity") == "member_number" for e in message.get("entities") or []):
            # A member number, whatever the words around it: verify and answer.
            return [FollowupAction("verification_form")]
        if previous_intent(tracker) == FALLBACK_INTENT:
            return await open_ticket(dispatcher, tracker, self.service, self.verifications, "fallbacks")
        intents = likely_topics(message.get("intent_ranking") or [], domain)
        buttons = [topic_button(domain, i) for i in (*intents, *ESCAPE_INTENTS)]
        dispatcher.utter_message(response="utter_did_you_mean", buttons=buttons)
        return []
