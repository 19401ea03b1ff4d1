"""Handing over to a person: open a ticket, then stay silent until it is closed."""
from datetime import datetime, timezone
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import BackendUnavailable, call_backend, conversation_of, intent_of
from actions.status import BINDING_CHANNELS
from tuanjian.backend.rules import DomainError
from tuanjian.backend.tickets import TicketService
from tuanjian.backend.verification import VerificationService
from tuanjian.domain_names import ACTION_HANDOFF_PENDING, HANDOFF_TICKET, intent_name
from tuanjian.redaction import redact_events

TRANSCRIPT_EVENTS = 40
# Messages that ask for help rather than say what the problem is.
NOT_THE_QUESTION = ("request_human", "not_helpful", "rate_answer", "greet", "affirm", "deny")
REASONS = {"request_human": "request_human", "not_helpful": "not_helpful", "rate_answer": "not_helpful"}


def transcript(tracker: Tracker) -> list[dict[str, Any]]:
    """The conversation's last lines, with the digits of verification turns masked."""
    lines = []
    for event in redact_events(tracker.events)[-TRANSCRIPT_EVENTS:]:
        if event.get("event") in ("user", "bot") and event.get("text"):
            stamp = event.get("timestamp")
            at = datetime.fromtimestamp(stamp, timezone.utc).isoformat() if stamp else None
            lines.append({"who": "member" if event["event"] == "user" else "bot",
                          "text": event["text"], "at": at})
    return lines


def unanswered_question(tracker: Tracker) -> str:
    """The member's last message that states a problem (not "转人工" itself)."""
    for event in reversed(redact_events(tracker.events)):
        if event.get("event") != "user":
            continue
        text = event.get("text") or ""
        intent = intent_name(event.get("parse_data"))
        if text and not text.startswith("/") and intent not in NOT_THE_QUESTION:
            return text
    return ""


async def open_ticket(dispatcher: CollectingDispatcher, tracker: Tracker, service: TicketService,
                      verifications: VerificationService, reason: str) -> list[EventType]:
    """Open a ticket with the conversation's context: the member only when the backend
    has verified this conversation as them."""
    conversation = conversation_of(tracker)
    try:
        member = await call_backend(verifications.current, conversation,
                                    conversation.channel in BINDING_CHANNELS)
        ticket = await call_backend(
            service.open_ticket, conversation.channel, tracker.sender_id,
            member, unanswered_question(tracker), transcript(tracker), reason)
    except (BackendUnavailable, DomainError):
        dispatcher.utter_message(response="utter_handoff_unavailable")
        return []
    dispatcher.utter_message(response="utter_handoff_opened", ticket=ticket)
    return [SlotSet(HANDOFF_TICKET, ticket)]


class TicketServices:
    """The services of the handoff actions; a mixin, since rasa-sdk registers every Action subclass."""

    def __init__(self, service: TicketService | None = None,
                 verifications: VerificationService | None = None) -> None:
        self.service = service or TicketService()
        self.verifications = verifications or VerificationService()


class ActionOpenTicket(TicketServices, Action):
    def name(self) -> str:
        return "action_open_ticket"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        return await open_ticket(dispatcher, tracker, self.service, self.verifications,
                                 REASONS.get(intent_of(tracker) or "", "request_human"))


class ActionHandoffPending(TicketServices, Action):
    """Every message while the ticket is open: record it, say staff will reply."""

    def name(self) -> str:
        return ACTION_HANDOFF_PENDING

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        ticket = int(tracker.get_slot(HANDOFF_TICKET))
        text = (tracker.latest_message or {}).get("text") or ""
        try:
            still_open = await call_backend(self.service.open_ticket_of,
                                            conversation_of(tracker).channel, tracker.sender_id)
            if still_open == ticket:
                await call_backend(self.service.add_member_message, ticket, text)
        except (BackendUnavailable, DomainError):
            still_open = ticket  # cannot tell: stay quiet rather than answer over staff
        if still_open == ticket:
            dispatcher.utter_message(response="utter_handoff_waiting", ticket=ticket)
            return []
        dispatcher.utter_message(response="utter_handoff_resumed")
        return [SlotSet(HANDOFF_TICKET, None)]


class ActionRateAnswer(TicketServices, Action):
    """👍 / 👎 under an FAQ answer; 👎 also hands over to a person."""

    def name(self) -> str:
        return "action_rate_answer"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        rating = next(tracker.get_latest_entity_values("rating"), None)
        faq = last_faq(tracker)
        if rating in ("up", "down") and faq:
            try:
                await call_backend(self.service.record_rating, conversation_of(tracker).channel,
                                   tracker.sender_id, faq, rating)
            except (BackendUnavailable, DomainError):
                pass  # a lost rating must not cost the member an answer
        if rating == "down":
            return await open_ticket(dispatcher, tracker, self.service, self.verifications, "not_helpful")
        dispatcher.utter_message(response="utter_rating_thanks")
        return []


def last_faq(tracker: Tracker) -> str | None:
    """The FAQ intent whose answer was given last (an utter_faq_* answer gives its faq_* intent)."""
    for event in reversed(tracker.events):
        name = event.get("name") or ""
        if event.get("event") == "action" and name.startswith("utter_faq_"):
            return name[len("utter_"):]
    return None
