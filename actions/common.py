"""What the actions share: the backend call with its time budget, and who the conversation is."""
import logging
from collections.abc import Callable
from typing import Any

from rasa_sdk import Tracker

from tuanjian.backend.calls import call_in_thread
from tuanjian.backend.rules import DomainError
from tuanjian.backend.verification import Conversation
from tuanjian.conversation_ids import split_conversation_id
from tuanjian.domain_names import intent_name

logger = logging.getLogger(__name__)



class BackendUnavailable(Exception):
    pass


async def call_backend(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a blocking backend call within settings.BACKEND_TIMEOUT; any failure
    but a DomainError (the backend's own refusal) is BackendUnavailable."""
    try:
        return await call_in_thread(fn, *args)
    except DomainError:
        raise
    except Exception as error:  # timeout, connection refused, driver errors
        logger.warning("backend unavailable: %r", error)
        raise BackendUnavailable from error


def intent_of(tracker: Tracker) -> str | None:
    return intent_name(tracker.latest_message)


def session_key(tracker: Tracker) -> str:
    """Marks the conversation's current Rasa session: when it, or the latest restart, began.

    A new session (after idle time, /session_start) or a restart changes it,
    which ends a verification made before."""
    for event in reversed(tracker.events):
        if event.get("event") in ("session_started", "restart"):
            return f"{event['event'][0]}{float(event.get('timestamp') or 0):.6f}"
    return ""


def conversation_of(tracker: Tracker) -> Conversation:
    """The conversation as the backend keys it; the channel comes from the id the channel gave."""
    channel, external_id = split_conversation_id(tracker.sender_id)
    return Conversation(channel, external_id, session_key(tracker))


def client_of(tracker: Tracker) -> str | None:
    """The client key the channel put in the message's metadata (server-side), if any."""
    metadata = (tracker.latest_message or {}).get("metadata") or {}
    client = metadata.get("client")
    return client if isinstance(client, str) and client else None
