"""Building the tracker an action receives, as rasa-sdk's own tests do: an
inline rasa_sdk.Tracker with the latest message, the slots and the events."""
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType


def latest_message(text: str = "", intent: str = "inform", *, ranking: list[dict[str, Any]] | None = None,
                   metadata: dict[str, Any] | None = None, **entities: Any) -> dict[str, Any]:
    """The parse data of the member's latest message; keyword arguments are entities
    (a list of values gives that entity several times)."""
    found = [{"entity": name, "value": value} for name, values in entities.items()
             for value in (values if isinstance(values, list) else [values])]
    return {"text": text, "intent": {"name": intent}, "intent_ranking": ranking or [],
            "entities": found, "metadata": metadata or {}}


def build_tracker(latest: dict[str, Any], *, sender: str = "member", events: list[dict[str, Any]] | None = None,
                  active_loop: str | None = None, **slots: Any) -> Tracker:
    return Tracker(sender, slots, latest, events or [], False, None,
                   {"name": active_loop} if active_loop else {}, "action_listen")


def slots_of(events: list[EventType]) -> dict[str, Any]:
    """The slots the events set, by name."""
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}
