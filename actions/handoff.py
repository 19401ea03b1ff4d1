"""Handing over to a person: open a ticket, then stay silent until it is closed."""
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.domain_texts import DomainDict
from actions.status import BackendUnavailable, call_backend
from bot.backend.rules import DomainError
from bot.backend.tickets import TicketService

TRANSCRIPT_EVENTS = 40
# Messages that ask for help rather than say what the problem is.
NOT_THE_QUESTION = ("request_human", "not_helpful", "rate_answer", "greet", "affirm", "deny")
REASONS = {"request_human": "request_human", "not_helpful": "not_helpful", "rate_answer": "not_helpful"}


def transcript(tracker: Tracker) -> List[Dict[Text, Any]]:
    lines = []
    for event in tracker.events[-TRANSCRIPT_EVENTS:]:
        if event.get("event") in ("user", "bot") and event.get("text"):
            stamp = event.get("timestamp")
            at = datetime.fromtimestamp(stamp, timezone.utc).isoformat() if stamp else None
            lines.append({"who": "member" if event["event"] == "user" else "bot",
                          "text": event["text"], "at": at})
    return lines


def unanswered_question(tracker: Tracker) -> Text:
    """The member's last message that states a problem (not "转人工" itself)."""
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        text = event.get("text") or ""
        intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
        if text and not text.startswith("/") and intent not in NOT_THE_QUESTION:
            return text
    return ""


async def open_ticket(dispatcher: CollectingDispatcher, tracker: Tracker,
                      service: TicketService, reason: Text) -> List[EventType]:
    try:
        ticket = await call_backend(
            service.open_ticket, tracker.get_latest_input_channel() or "rest", tracker.sender_id,
            tracker.get_slot("verified_member"), unanswered_question(tracker), transcript(tracker), reason)
    except (BackendUnavailable, DomainError):
        dispatcher.utter_message(response="utter_handoff_unavailable")
        return []
    dispatcher.utter_message(response="utter_handoff_opened", ticket=ticket)
    return [SlotSet("handoff_ticket", ticket)]


class ActionOpenTicket(Action):
    def __init__(self, service: Optional[TicketService] = None) -> None:
        self.service = service or TicketService()

    def name(self) -> Text:
        return "action_open_ticket"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
        return await open_ticket(dispatcher, tracker, self.service, REASONS.get(intent, "request_human"))


class ActionHandoffPending(Action):
    """Every message while the ticket is open: record it, say staff will reply."""

    def __init__(self, service: Optional[TicketService] = None) -> None:
        self.service = service or TicketService()

    def name(self) -> Text:
        return "action_handoff_pending"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        ticket = int(tracker.get_slot("handoff_ticket"))
        text = (tracker.latest_message or {}).get("text") or ""
        try:
            still_open = await call_backend(self.service.open_ticket_of,
                                            tracker.get_latest_input_channel() or "rest", tracker.sender_id)
            if still_open == ticket:
                await call_backend(self.service.add_member_message, ticket, text)
        except (BackendUnavailable, DomainError):
            still_open = ticket  # cannot tell: stay quiet rather than answer over staff
        if still_open == ticket:
            dispatcher.utter_message(response="utter_handoff_waiting", ticket=ticket)
            return []
        dispatcher.utter_message(response="utter_handoff_resumed")
        return [SlotSet("handoff_ticket", None)]


class ActionRateAnswer(Action):
    """👍 / 👎 under an FAQ answer; 👎 also hands over to a person."""

    def __init__(self, service: Optional[TicketService] = None) -> None:
        self.service = service or TicketService()

    def name(self) -> Text:
        return "action_rate_answer"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        rating = next(tracker.get_latest_entity_values("rating"), None)
        faq = last_faq(tracker)
        if rating in ("up", "down") and faq:
            try:
                await call_backend(self.service.record_rating, tracker.get_latest_input_channel() or "rest",
                                   tracker.sender_id, faq, rating)
            except (BackendUnavailable, DomainError):
                pass  # a lost rating must not cost the member an answer
        if rating == "down":
            return await open_ticket(dispatcher, tracker, self.service, "not_helpful")
        dispatcher.utter_message(response="utter_rating_thanks")
        return []


def last_faq(tracker: Tracker) -> Optional[Text]:
    """The FAQ intent whose answer was given last (an utter_faq_* answer gives its faq_* intent)."""
    for event in reversed(tracker.events):
        name = event.get("name") or ""
        if event.get("event") == "action" and name.startswith("utter_faq_"):
            return name[len("utter_"):]
    return None
