"""Names of the domain (domain/*.yml) that Python code refers to, in one place.

tests/test_domain_names.py fails when one of these, or any slot, action, form
or response named by a string in the actions or the plugins, is missing from
the domain, so a rename there cannot break Python silently.
"""
from typing import Any

# Intents
NLU_FALLBACK = "nlu_fallback"  # FallbackClassifier's intent, not declared in the domain
# Intents that ask something rather than answer what a form asked: the form
# lets the rules answer them (every faq_* intent counts too).
QUESTION_INTENTS = ("request_human", "goodbye", "greet", "bot_challenge", "thank", "stop",
                    "start_destination_guide", "check_transfer_status", "ask_contact", "ask_wait_time")
FAQ_PREFIX = "faq_"
# What a reviewer may label a missed message with besides the FAQs: the
# questions a member asks. Not the intents that steer a dialogue (inform,
# affirm, deny, stop, restart, unbind, rate_answer …): an example for them
# would make a phrase restart a conversation or unbind a member.
REVIEW_LABELS = ("out_of_scope", "check_transfer_status", "start_destination_guide", "request_human",
                 "ask_contact", "ask_wait_time", "bot_challenge", "greet", "goodbye", "thank")

# Slots
HANDOFF_TICKET = "handoff_ticket"  # set while a person has the conversation
# Everything the destination guide fills in; cleared when it starts again.
GUIDE_SLOTS = ("graduate_situation", "employer_has_league_org", "user_unit_has_league_org",
               "party_member", "over_28", "holds_league_post", "guide_province",
               "guide_retries", "guide_gave_up")

# Entities
MEMBER_NUMBER_ENTITY = "member_number"

# Actions and forms
ACTION_HANDOFF_PENDING = "action_handoff_pending"  # what HandoffPolicy predicts while a ticket is open
VERIFICATION_FORM = "verification_form"
DESTINATION_FORM = "destination_form"


def intent_name(parse_data: dict[str, Any] | None) -> str | None:
    """The intent of a message's parse data (a tracker's latest_message, or a
    user event's parse_data), or None."""
    return ((parse_data or {}).get("intent") or {}).get("name")


def is_question(intent: str) -> bool:
    """Whether a message with this intent asks something rather than answering a form."""
    return intent.startswith(FAQ_PREFIX) or intent in QUESTION_INTENTS
