"""The member's own transfer request: verify, then explain it.

Verification (member number + last four phone digits) belongs to one
conversation: it lives in that conversation's slots. Five failures lock it for
15 minutes. Every backend call has a 2-second budget; past that, or when the
database is unreachable, the member hears the lookup is unavailable.
"""
import asyncio
import logging
import re
import time
from typing import Any, Callable, Dict, List, Optional, Text, Tuple
from zoneinfo import ZoneInfo

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.domain_texts import DomainDict, response_text
from bot.backend.rules import SPECIAL_PROVINCES, DomainError
from bot.backend.service import MemberStatus, TransferService
from bot.nlu.text import normalize

logger = logging.getLogger(__name__)

MAX_FAILURES = 5
# Channels whose sender id is a lasting identity (the WeChat OpenID): a
# verification there is remembered in the backend. A web session is not.
BINDING_CHANNELS = ("wechat",)
LOCK_SECONDS = 15 * 60
BACKEND_TIMEOUT = 2.0
LOCAL_TIME = ZoneInfo("Asia/Shanghai")
# Messages with these intents are questions, not an attempt at the number or
# digits: the form lets other rules answer them.
NOT_AN_ANSWER = re.compile(
    r"^(faq_.*|request_human|goodbye|greet|bot_challenge|thank|stop|"
    r"start_destination_guide|check_transfer_status|ask_contact|ask_wait_time)$")
# Digits glued to letters ("2019oo1") are a typo, not a number.
_DIGIT_RUN = re.compile(r"(?<![0-9a-z])[0-9]+(?![0-9a-z])")


class BackendUnavailable(Exception):
    pass


def parse_credentials(text: Text) -> Tuple[Optional[Text], Optional[Text]]:
    """(member number, last four digits) found in a message; None where absent.

    A member number is a run of 5-20 digits, the phone digits a run of exactly
    four; anything else (letters inside the digits, no digits) finds nothing.
    """
    runs = _DIGIT_RUN.findall(normalize(text))
    number = next((r for r in runs if 5 <= len(r) <= 20), None)
    last4 = next((r for r in runs if len(r) == 4), None)
    return number, last4


async def call_backend(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a blocking backend call with the 2-second budget."""
    loop = asyncio.get_running_loop()
    try:
        return await asyncio.wait_for(loop.run_in_executor(None, fn, *args), BACKEND_TIMEOUT)
    except DomainError:
        raise
    except Exception as error:  # timeout, connection refused, driver errors
        logger.warning("transfer backend unavailable: %r", error)
        raise BackendUnavailable from error


def locked_minutes(tracker: Tracker, now: float) -> int:
    until = tracker.get_slot("verification_locked_until") or 0
    return max(0, -int(-(until - now) // 60))


class ValidateVerificationForm(FormValidationAction):
    def __init__(self, service: Optional[TransferService] = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.service = service or TransferService()
        self.clock = clock

    def name(self) -> Text:
        return "validate_verification_form"

    def nothing_to_ask(self, tracker: Tracker) -> bool:
        return bool(tracker.get_slot("is_verified") or tracker.get_slot("lookup_failed")
                    or locked_minutes(tracker, self.clock()) > 0)

    async def required_slots(self, domain_slots: List[Text], dispatcher: CollectingDispatcher,
                             tracker: Tracker, domain: DomainDict) -> List[Text]:
        return [] if self.nothing_to_ask(tracker) else domain_slots

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        events = await self.restore_binding(tracker)
        tracker.add_slots(events)
        events += await self.check_credentials(dispatcher, tracker)
        tracker.add_slots(events)
        next_slot = await self.next_requested_slot(dispatcher, tracker, domain)
        return events + ([next_slot] if next_slot else [])

    async def check_credentials(self, dispatcher: CollectingDispatcher,
                                tracker: Tracker) -> List[EventType]:
        message = tracker.latest_message or {}
        number, last4 = parse_credentials(message.get("text") or "")
        if number and last4 and tracker.get_slot("is_verified") \
                and number != tracker.get_slot("verified_member"):
            # Someone else's credentials: this conversation verifies anew.
            return [SlotSet("is_verified", False), SlotSet("verified_member", None),
                    *await self.verify(dispatcher, tracker, number, last4)]
        if self.nothing_to_ask(tracker):
            return []
        requested = tracker.get_slot("requested_slot")
        if not number and not last4:
            intent = (message.get("intent") or {}).get("name") or ""
            if intent == "check_transfer_status" and requested:
                return [SlotSet(requested, None)]  # asked again, no complaint
            if NOT_AN_ANSWER.match(intent) or requested is None:
                return []  # a digression: let the rules answer it
        number = number or tracker.get_slot("member_number")
        last4 = last4 if number else None
        if not number:
            dispatcher.utter_message(response="utter_invalid_member_number")
            return [SlotSet("member_number", None)]
        if not last4:
            if requested == "phone_last4":
                dispatcher.utter_message(response="utter_invalid_phone_last4")
            return [SlotSet("member_number", number)]
        return await self.verify(dispatcher, tracker, number, last4)

    async def restore_binding(self, tracker: Tracker) -> List[EventType]:
        """A WeChat member verified on an earlier visit is not asked again."""
        channel = tracker.get_latest_input_channel()
        if channel not in BINDING_CHANNELS or tracker.get_slot("is_verified"):
            return []
        try:
            member_no = await call_backend(self.service.bound_member, channel, tracker.sender_id)
        except BackendUnavailable:
            return []
        if member_no is None:
            return []
        return [SlotSet("verified_member", member_no), SlotSet("is_verified", True)]

    async def verify(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                     number: Text, last4: Text) -> List[EventType]:
        try:
            member_id = await call_backend(self.service.verify, number, last4)
        except BackendUnavailable:
            return [SlotSet("member_number", None), SlotSet("phone_last4", None),
                    SlotSet("lookup_failed", True)]
        channel = tracker.get_latest_input_channel()
        if member_id is not None and channel in BINDING_CHANNELS:
            try:
                await call_backend(self.service.bind, channel, tracker.sender_id, number)
            except BackendUnavailable:
                pass  # verified all the same; only the next visit asks again
        if member_id is not None:
            return [SlotSet("member_number", number), SlotSet("phone_last4", last4),
                    SlotSet("verified_member", number), SlotSet("is_verified", True),
                    SlotSet("verification_failures", 0)]
        failures = int(tracker.get_slot("verification_failures") or 0) + 1
        events: List[EventType] = [SlotSet("member_number", None), SlotSet("phone_last4", None)]
        if failures >= MAX_FAILURES:
            # action_transfer_status tells the member about the lock.
            return events + [SlotSet("verification_failures", 0),
                             SlotSet("verification_locked_until", self.clock() + LOCK_SECONDS)]
        # The same words whether the number or the digits were wrong.
        dispatcher.utter_message(response="utter_verification_failed")
        return events + [SlotSet("verification_failures", failures)]


def local_date(moment) -> Text:
    return moment.astimezone(LOCAL_TIME).strftime("%Y-%m-%d") if moment else ""


def status_messages(status: MemberStatus, domain: DomainDict) -> List[Dict[Text, Any]]:
    """The replies (response name and variables) that explain a member's request."""
    request = status.request
    if request is None:
        return [{"response": "utter_status_no_request", "organisation": status.organisation}]
    common = {"to_organisation": request.to_organisation, "contact": status.contact or ""}
    if request.status == "pending":
        step = status.steps[status.current_position - 1]
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

    def __init__(self, service: Optional[TransferService] = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.service = service or TransferService()
        self.clock = clock

    async def verified_status(self, dispatcher: CollectingDispatcher,
                              tracker: Tracker) -> Optional[MemberStatus]:
        try:
            return await call_backend(self.service.member_status, tracker.get_slot("verified_member"))
        except (BackendUnavailable, DomainError):
            dispatcher.utter_message(response="utter_status_unavailable")
            dispatcher.utter_message(response="utter_faq_approval_pending")
            return None


class ActionTransferStatus(StatusLookup, Action):
    def name(self) -> Text:
        return "action_transfer_status"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        minutes = locked_minutes(tracker, self.clock())
        if minutes:
            dispatcher.utter_message(response="utter_verification_locked", minutes=minutes)
            return []
        if tracker.get_slot("lookup_failed"):
            dispatcher.utter_message(response="utter_status_unavailable")
            dispatcher.utter_message(response="utter_faq_approval_pending")
            return [SlotSet("lookup_failed", False)]
        if not tracker.get_slot("is_verified"):
            return []
        status = await self.verified_status(dispatcher, tracker)
        if status is not None:
            if tracker.get_slot("phone_last4"):  # verified in this very turn
                dispatcher.utter_message(response="utter_verified", name=status.masked_name)
            for message in status_messages(status, domain):
                dispatcher.utter_message(**message)
        return [SlotSet("phone_last4", None)]


class ActionStatusFollowup(StatusLookup, Action):
    """"该找谁" / "还要等多久" / "那我能撤回吗" after the member was verified."""

    def name(self) -> Text:
        return "action_status_followup"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        status = await self.verified_status(dispatcher, tracker)
        if status is None:
            return []
        intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
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
            step = status.steps[status.current_position - 1]
            dispatcher.utter_message(response="utter_followup_wait",
                                     organisation=step.organisation, days_left=status.days_left)
        else:
            dispatcher.utter_message(response="utter_followup_no_wait")
            for message in status_messages(status, domain):
                dispatcher.utter_message(**message)
        return []


class ActionUnbind(Action):
    """"解除绑定": forget the OpenID <-> member binding and this verification."""

    def __init__(self, service: Optional[TransferService] = None) -> None:
        self.service = service or TransferService()

    def name(self) -> Text:
        return "action_unbind"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        channel = tracker.get_latest_input_channel()
        if channel in BINDING_CHANNELS:
            try:
                await call_backend(self.service.unbind, channel, tracker.sender_id)
            except BackendUnavailable:
                dispatcher.utter_message(response="utter_status_unavailable")
                return []
        dispatcher.utter_message(response="utter_unbound")
        return [SlotSet("is_verified", False), SlotSet("verified_member", None)]
