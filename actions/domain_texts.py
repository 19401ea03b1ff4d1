"""Read texts from the domain sent to the action server, so none live in Python."""

from rasa_sdk.types import DomainDict


def response_text(domain: DomainDict, response: str) -> str | None:
    """The text of a response's first variant, or None if the domain lacks it."""
    variants = domain.get("responses", {}).get(response)
    return variants[0].get("text") if variants else None


def topic_title(domain: DomainDict, intent: str) -> str | None:
    """The short button title of an intent (response ``utter_topic_<intent>``)."""
    return response_text(domain, f"utter_topic_{intent}")


def topic_button(domain: DomainDict, intent: str) -> dict[str, str | None]:
    return {"title": topic_title(domain, intent), "payload": f"/{intent}"}
