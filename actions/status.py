"""The member's own transfer request: verify, then explain it.

Whom a conversation may see is decided by the backend (tuanjian.backend.verification):
the actions ask it, never a slot; the slot `is_verified` only mirrors its
answer for the dialogue's rules. The digits a member types go to the backend
and into no slot. Every backend call has a 2-second budget; past that, or when
the database is unreachable, the member hears the lookup is unavailable.
"""
import logging
from typing import Any
from zoneinfo import ZoneInfo

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import (
    BackendUnavailable,
    call_backend,
    client_of,
    conversation_of,
    intent_of,
)
from actions.domain_texts import response_text
from tuanjian.backend.rules import SPECIAL_PROVINCES, DomainError
from tuanjian.backend.service import MemberStatus, TransferService
from tuanjian.backend.verification import VerificationService
from tuanjian.domain_names import is_question
from tuanjian.redaction import parse_credentials

logger = logging.getLogger(__name__)

# Channels whose user id is a lasting identity (the WeChat OpenID): a
# verification there is remembered as a binding. A web or REST session is not.
BINDING_CHANNELS = ("wechat",)
LOCAL_TIME = ZoneInfo("Asia/Shanghai")


async def verified_member(verifications: VerificationService, tracker: Tracker) -> str | None:
    """The member this conversation is verified as, by the backend's record (raises BackendUnavailable)."""
    conversation = conversation_of(tracker)
    return await call_backend(verifications.current, conversation,
                              conversation.channel in BINDING_CHANNELS)


class ValidateVerificationForm(FormValidationAction):
    def __init__(self, verifications: VerificationService | None = None) -> None:
        self.verifications = verifications or VerificationService()

    def name(self) -> str:
        return "validate_verification_form"

    @staticmethod
    def nothing_to_ask(tracker: Tracker) -> bool:
        return bool(tracker.get_slot("is_verified") or tracker.get_slot("lookup_failed")
                    or tracker.get_slot("verification_lock_minutes"))

    async def required_slots(self, domain_slots: list[str], dispatcher: CollectingDispatcher,
                             tracker: Tracker, domain: DomainDict) -> list[str]:
        return [] if self.nothing_to_ask(tracker) else domain_slots

    # run is overridden: the member number and the phone digits are checked
    # together against the backend (one attempt, one throttle count, the same
    # reply whichever was wrong), and before any slot the backend's own record
    # decides whether the conversation is verified at all; the SDK's
    # per-slot validate_<slot> methods cannot make that one decision.
    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        events = await self.check_credentials(dispatcher, tracker)
        tracker.add_slots(events)
        next_slot = await self.next_requested_slot(dispatcher, tracker, domain)
        return events + ([next_slot] if next_slot else [])

    async def check_credentials(self, dispatcher: CollectingDispatcher,
                                tracker: Tracker) -> list[EventType]:
        message = tracker.latest_message or {}
        number, last4, personal = parse_credentials(message.get("text") or "")
        try:
            member = await verified_member(self.verifications, tracker)
        except (BackendUnavailable, DomainError):
            return [SlotSet("member_number", None), SlotSet("lookup_failed", True)]
        if member is not None:
            if not (number and last4 and number != member):
                return [SlotSet("is_verified", True)]
            # Someone else's credentials: this conversation verifies anew.
            conversation = conversation_of(tracker)
            try:
                await call_backend(self.verifications.end, conversation.channel, conversation.external_id)
            except (BackendUnavailable, DomainError):
                return [SlotSet("member_number", None), SlotSet("lookup_failed", True)]
            return [SlotSet("is_verified", False), *await self.verify(dispatcher, tracker, number, last4)]
        events: list[EventType] = []
        if tracker.get_slot("is_verified"):
            # The mirror outlived the backend's record (idle time, new session).
            dispatcher.utter_message(response="utter_verification_expired")
            events.append(SlotSet("is_verified", False))
            tracker.add_slots(events)
        if self.nothing_to_ask(tracker):
            return events
        requested = tracker.get_slot("requested_slot")
        if not number and not last4 and not personal:
            intent = intent_of(tracker) or ""
            if intent == "check_transfer_status" and requested:
                return events + [SlotSet(requested, None)]  # asked again, no complaint
            if is_question(intent) or requested is None:
                return events  # a digression: let the rules answer it
        number = number or tracker.get_slot("member_number")
        last4 = last4 if number else None
        if not number:
            dispatcher.utter_message(response="utter_personal_number_refused" if personal
                                     else "utter_invalid_member_number")
            return events + [SlotSet("member_number", None)]
        if not last4:
            if personal:
                dispatcher.utter_message(response="utter_personal_number_refused")
            elif requested == "phone_last4":
                dispatcher.utter_message(response="utter_invalid_phone_last4")
            return events + [SlotSet("member_number", number)]
        return events + await self.verify(dispatcher, tracker, number, last4)

    async def verify(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                     number: str, last4: str) -> list[EventType]:
        conversation = conversation_of(tracker)
        try:
            attempt = await call_backend(self.verifications.attempt, conversation, number, last4,
                                         client_of(tracker), conversation.channel in BINDING_CHANNELS)
        except (BackendUnavailable, DomainError):
            return [SlotSet("member_number", None), SlotSet("lookup_failed", True)]
        if attempt.outcome == "verified":
            dispatcher.utter_message(response="utter_verified", name=attempt.masked_name)
            return [SlotSet("member_number", number), SlotSet("is_verified", True)]
        if attempt.outcome == "locked":
            # action_transfer_status tells the member about the lock.
            return [SlotSet("member_number", None),
                    SlotSet("verification_lock_minutes", attempt.locked_minutes)]
        # The same words whether the number or the digits were wrong.
        dispatcher.utter_message(response="utter_verification_failed")
        return [SlotSet("member_number", None)]


def local_date(moment) -> str:
    return moment.astimezone(LOCAL_TIME).strftime("%Y-%m-%d") if moment else ""


def status_messages(status: MemberStatus, domain: DomainDict) -> list[dict[str, Any]]:
    """The replies (response name and variables) that explain a member's request."""
    request = status.request
    if request is None:
        return [{"response": "utter_status_no_request", "organisation": status.organisation}]
    common = {"to_organisation": request.to_organisation, "contact": status.contact or ""}
    if request.status == "pending":
        step = status.current_step()
        role = response_text(domain, f"utter_step_role_{request.kind}_{step.position}") or ""
        replies = [{"response": "utter_status_pending", **common, "step": step.position,
                    "step_count": len(status.steps), "step_role": role,
                    "organisation": step.organisation, "since": local_date(step.received_at),
                    "days_left": status.days_left}]
        by_default = sum(s.decision == "default_approved" for s in status.steps)
        if by_default:
            replies.append({"response": "utter_status_default_approved_note", "count": by_default})
        withdrawable = "withdraw" in status.actions
        replies.append({"response": "utter_status_can_withdraw" if withdrawable
                        else "utter_status_cannot_withdraw"})
        return replies
    if request.status == "completed":
        replies = [{"response": "utter_status_completed", **common,
                    "organisation": request.to_organisation, "since": local_date(request.closed_at)}]
        if request.to_province in SPECIAL_PROVINCES:
            replies.append({"response": "utter_status_completed_special_province",
                            "province": request.to_province})
        return replies
    if request.status == "awaiting_assignment":
        return [{"response": "utter_status_awaiting_assignment", **common, "level": request.to_level}]
    return [{"response": f"utter_status_{request.status}", **common,
             "since": local_date(request.closed_at)}]


class StatusLookup:
    """Shared by the status reply and the follow-ups: the verified member's status.

    A mixin rather than an Action subclass: rasa-sdk registers every Action
    subclass it finds, and this one has no name of its own."""

    def __init__(self, service: TransferService | None = None,
                 verifications: VerificationService | None = None) -> None:
        self.service = service or TransferService()
        self.verifications = verifications or VerificationService()

    async def verified_status(self, dispatcher: CollectingDispatcher,
                              tracker: Tracker) -> tuple[MemberStatus | None, list[EventType]]:
        """The status of the member the backend has verified this conversation as.

        Without one, having told the member why: (None, the events to return) —
        when the verification is gone, the form asks for it again."""
        try:
            member = await verified_member(self.verifications, tracker)
            if member is not None:
                return await call_backend(self.service.member_status, member), []
        except (BackendUnavailable, DomainError):
            dispatcher.utter_message(response="utter_status_unavailable")
            dispatcher.utter_message(response="utter_faq_approval_pending")
            return None, []
        dispatcher.utter_message(response="utter_verification_expired")
        return None, [SlotSet("is_verified", False), FollowupAction("verification_form")]


class ActionTransferStatus(StatusLookup, Action):
    def name(self) -> str:
        return "action_transfer_status"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        minutes = int(tracker.get_slot("verification_lock_minutes") or 0)
        if minutes:
            dispatcher.utter_message(response="utter_verification_locked", minutes=minutes)
            return [SlotSet("verification_lock_minutes", None)]
        if tracker.get_slot("lookup_failed"):
            dispatcher.utter_message(response="utter_status_unavailable")
            dispatcher.utter_message(response="utter_faq_approval_pending")
            return [SlotSet("lookup_failed", False)]
        if not tracker.get_slot("is_verified"):
            return []
        status, events = await self.verified_status(dispatcher, tracker)
        if status is not None:
            for message in status_messages(status, domain):
                dispatcher.utter_message(**message)
        return events


class ActionStatusFollowup(StatusLookup, Action):
    """"该找谁" / "还要等多久" / "那我能撤回吗" after the member was verified."""

    def name(self) -> str:
        return "action_status_followup"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        status, events = await self.verified_status(dispatcher, tracker)
        if status is None:
            return events
        intent = intent_of(tracker)
        pending = status.request is not None and status.request.status == "pending"
        if intent == "ask_contact":
            if status.contact:
                dispatcher.utter_message(response="utter_followup_contact",
                                         organisation=status.contact_organisation,
                                         contact=status.contact)
            else:
                dispatcher.utter_message(response="utter_followup_contact_none",
                                         organisation=status.organisation,
                                         contact=status.organisation_contact)
        elif intent == "faq_wrong_info":
            dispatcher.utter_message(response="utter_status_can_withdraw"
                                     if "withdraw" in status.actions
                                     else "utter_status_cannot_withdraw")
        elif pending:
            step = status.current_step()
            dispatcher.utter_message(response="utter_followup_wait",
                                     organisation=step.organisation, days_left=status.days_left)
        else:
            dispatcher.utter_message(response="utter_followup_no_wait")
            for message in status_messages(status, domain):
                dispatcher.utter_message(**message)
        return []


class ActionUnbind(Action):
    """"解除绑定": forget the OpenID <-> member binding and this conversation's verification."""

    def __init__(self, verifications: VerificationService | None = None) -> None:
        self.verifications = verifications or VerificationService()

    def name(self) -> str:
        return "action_unbind"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        conversation = conversation_of(tracker)
        forget = self.verifications.unbind if conversation.channel in BINDING_CHANNELS \
            else self.verifications.end
        try:
            await call_backend(forget, conversation.channel, conversation.external_id)
        except BackendUnavailable:
            dispatcher.utter_message(response="utter_status_unavailable")
            return []
        dispatcher.utter_message(response="utter_unbound")
        return [SlotSet("is_verified", False)]
