"""Keep the digits members type to verify out of everything that is stored.

A verification turn is a member message the verification form handled (the
form was active when it came, or it started the form), or an `inform` that
carries phone digits. In such a message every digit is masked except the
member number (the first run of 5-20 digits, which is not a secret: the
ticket and the staff need it). The tracker store (tuanjian.rasa_server.tracker_store) and the
help-desk tickets store events through this module, so the digits are never
written anywhere; the action server still sees them in the live turn.

Events are the dicts Rasa and rasa-sdk exchange ({"event": "user", ...}).
"""
import copy
import itertools
import re
import unicodedata
from collections.abc import Iterable
from typing import Any, NamedTuple

from tuanjian.domain_names import VERIFICATION_FORM, intent_name
from tuanjian.text import normalize

MASK = "*"
# A mainland mobile number (with or without +86 / 0086) or a resident ID
# number (18 or the old 15 digits) typed whole is never kept, nor taken, as
# "the member number".
_PERSONAL_NUMBER = re.compile(
    r"^(?:(?:00)?86)?1[3-9][0-9]{9}$"
    r"|^[1-9][0-9]{5}(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9]?$"
    r"|^[1-9][0-9]{5}[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}$")
# Digits glued to letters ("2019oo1") are a typo, not a number.
_DIGIT_RUN = re.compile(r"(?<![0-9a-z])[0-9]+(?![0-9a-z])")
CREDENTIAL_SLOTS = ("phone_last4",)
CREDENTIAL_ENTITIES = ("phone_last4",)


class Credentials(NamedTuple):
    number: str | None  # the member number
    last4: str | None  # the phone's last four digits
    personal: bool  # a whole mobile or ID number was typed (and not taken as the member number)


def is_personal_number(digits: str) -> bool:
    """Whether a run of ASCII digits has the shape of a mobile or an ID number."""
    return bool(_PERSONAL_NUMBER.match(digits))


def parse_credentials(text: str) -> Credentials:
    """What a message holds of the credentials, read from its normalised text
    (as the classifier reads it); None where absent.

    A member number is a run of 5-20 digits that is not shaped like a mobile
    or ID number, the phone digits a run of exactly four; anything else
    (letters inside the digits, no digits) finds nothing.
    """
    runs = _DIGIT_RUN.findall(normalize(text))
    long_runs = [r for r in runs if 5 <= len(r) <= 20]
    number = next((r for r in long_runs if not is_personal_number(r)), None)
    last4 = next((r for r in runs if len(r) == 4), None)
    return Credentials(number, last4, any(is_personal_number(r) for r in long_runs))


def _reads_as_digit(char: str) -> bool:
    """Anything that reads as a digit after NFKC (full-width, mathematical,
    circled, superscript …)."""
    plain = unicodedata.normalize("NFKC", char)
    return plain.isascii() and plain.isdigit()


def mask_credentials(text: str) -> str:
    """The text with every digit masked but the member number's.

    The member number is what parse_credentials reads from the normalised text;
    only a run of the raw text that reads as exactly that number is kept, so
    digits split by invisible characters or written as HTML escapes, which the
    normaliser joins, are masked too."""
    number = parse_credentials(text).number
    parts = []
    for is_digit, chars in itertools.groupby(text, _reads_as_digit):
        run = "".join(chars)
        if is_digit:
            if number is not None and unicodedata.normalize("NFKC", run) == number:
                number = None  # kept once
            else:
                run = MASK * len(run)
        parts.append(run)
    return "".join(parts)


# Between two digits, one space, dash or one of these keeps them one number
# ("138 0013 8000", "138－0013－8000", "2019/06").
_DIGIT_JOINERS = frozenset("./,")


def _joins_digits(char: str) -> bool:
    plain = unicodedata.normalize("NFKC", char)
    return (plain in _DIGIT_JOINERS or unicodedata.category(char) in ("Zs", "Pd")
            or unicodedata.category(plain[:1] or char) in ("Zs", "Pd"))


def _next_is_digit(chars: list[str], index: int, joiners: int = 2) -> bool:
    """Whether a digit follows from `index`, after invisible characters and
    at most `joiners` more spaces or dashes ("138 - 0013")."""
    while index < len(chars) and not _reads_as_digit(chars[index]):
        if unicodedata.category(chars[index]) != "Cf":
            if joiners == 0 or not _joins_digits(chars[index]):
                return False
            joiners -= 1
        index += 1
    return index < len(chars)


def mask_digit_runs(text: str, shortest: int = 4) -> str:
    """The text with every number of `shortest` or more digits masked (a member
    number, phone digits, an ID number), for people who need the words, not
    the numbers. A single space, dash, dot, slash or comma between digits, or
    an invisible character, does not end a number."""
    chars = list(text)
    start = 0
    while start < len(chars):
        if not _reads_as_digit(chars[start]):
            start += 1
            continue
        end, digits = start, []
        while end < len(chars):
            char = chars[end]
            if _reads_as_digit(char):
                digits.append(end)
            elif not (unicodedata.category(char) == "Cf" or
                      (_joins_digits(char) and _next_is_digit(chars, end + 1))):
                break
            end += 1
        if len(digits) >= shortest:
            for index in digits:
                chars[index] = MASK
        start = end
    return "".join(chars)


def verification_turns(events: Iterable[dict[str, Any]]) -> set[int]:
    """Indexes of the user events that were verification turns."""
    turns: set[int] = set()
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
            intent = intent_name(parse)
            entities = {e.get("entity") for e in parse.get("entities") or []}
            if loop == VERIFICATION_FORM or (intent == "inform" and entities & set(CREDENTIAL_ENTITIES)):
                turns.add(index)
        elif kind == "action" and event.get("name") == VERIFICATION_FORM and last_user is not None:
            turns.add(last_user)
    return turns


def redact_event(event: dict[str, Any]) -> dict[str, Any]:
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


def redact_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events as they may be stored."""
    turns = verification_turns(events)
    return [redact_event(e) if i in turns or e.get("event") == "slot" and e.get("name") in CREDENTIAL_SLOTS
            else e for i, e in enumerate(events)]
