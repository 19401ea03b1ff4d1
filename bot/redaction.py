"""Keep the digits members type to verify out of everything that is stored.

A verification turn is a member message the verification form handled (the
form was active when it came, or it started the form), or an `inform` that
carries phone digits. In such a message every digit is masked except the
member number (the first run of 5-20 digits, which is not a secret: the
ticket and the staff need it). The tracker store (bot.tracker_store) and the
help-desk tickets store events through this module, so the digits are never
written anywhere; the action server still sees them in the live turn.

Events are the dicts Rasa and rasa-sdk exchange ({"event": "user", ...}).
"""
import copy
import itertools
import re
import unicodedata
from typing import Any, Dict, Iterable, List, Set

VERIFICATION_FORM = "verification_form"
MASK = "*"
# A mainland mobile number or a resident ID number typed whole is never kept
# (nor taken) as "the member number".
_PERSONAL_NUMBER = re.compile(
    r"^(1[3-9][0-9]{9}"
    r"|[1-9][0-9]{5}(19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9]?)$")
CREDENTIAL_SLOTS = ("phone_last4",)
CREDENTIAL_ENTITIES = ("phone_last4",)


def is_personal_number(digits: str) -> bool:
    """Whether a run of ASCII digits has the shape of a mobile or an ID number."""
    return bool(_PERSONAL_NUMBER.match(digits))


def _reads_as_digit(char: str) -> bool:
    """Anything that reads as a digit after NFKC (full-width, mathematical,
    circled, superscript …), as the normalizer and parse_credentials read it."""
    plain = unicodedata.normalize("NFKC", char)
    return plain.isascii() and plain.isdigit()


def mask_credentials(text: str) -> str:
    """The text with every digit masked but those of the first 5-20 digit run
    that is not a personal number."""
    kept = False
    parts = []
    for is_digit, chars in itertools.groupby(text, _reads_as_digit):
        run = "".join(chars)
        if is_digit:
            plain = unicodedata.normalize("NFKC", run)
            if not kept and 5 <= len(plain) <= 20 and not is_personal_number(plain):
                kept = True
            else:
                run = MASK * len(run)
        parts.append(run)
    return "".join(parts)


def verification_turns(events: Iterable[Dict[str, Any]]) -> Set[int]:
    """Indexes of the user events that were verification turns."""
    turns: Set[int] = set()
    loop = None
    last_user = None
    for index, event in enumerate(events):
        kind = event.get("event")
        if kind == "active_loop":
            loop = event.get("name")
        elif kind in ("restart", "session_started"):
            loop = None
        elif kind == "user":
            last_user = index
            parse = event.get("parse_data") or {}
            intent = (parse.get("intent") or {}).get("name")
            entities = {e.get("entity") for e in parse.get("entities") or []}
            if loop == VERIFICATION_FORM or (intent == "inform" and entities & set(CREDENTIAL_ENTITIES)):
                turns.add(index)
        elif kind == "action" and event.get("name") == VERIFICATION_FORM and last_user is not None:
            turns.add(last_user)
    return turns


def redact_event(event: Dict[str, Any]) -> Dict[str, Any]:
    """A copy of a verification turn's user event (or a credential slot) with the digits masked."""
    event = copy.deepcopy(event)
    if event.get("event") == "slot":
        if event.get("name") in CREDENTIAL_SLOTS and event.get("value") is not None:
            event["value"] = MASK * 4
        return event
    if isinstance(event.get("text"), str):
        event["text"] = mask_credentials(event["text"])
    parse = event.get("parse_data")
    if isinstance(parse, dict):
        if isinstance(parse.get("text"), str):
            parse["text"] = mask_credentials(parse["text"])
        for entity in parse.get("entities") or []:
            if isinstance(entity.get("value"), str):
                entity["value"] = mask_credentials(entity["value"])
    return event


def redact_events(events: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The events as they may be stored."""
    turns = verification_turns(events)
    return [redact_event(e) if i in turns or e.get("event") == "slot" and e.get("name") in CREDENTIAL_SLOTS
            else e for i, e in enumerate(events)]
