"""What the actions share: the backend call with its time budget, and who the conversation is."""
import asyncio
import logging
import re
from typing import Any, Callable, Optional, Text

from rasa_sdk import Tracker

from bot.backend.rules import DomainError
from bot.backend.verification import Conversation
from bot.conversation_ids import split_conversation_id

logger = logging.getLogger(__name__)

BACKEND_TIMEOUT = 2.0
# Messages with these intents are questions, not an answer to what a form
# asked: the form lets other rules answer them.
NOT_AN_ANSWER = re.compile(
    r"^(faq_.*|request_human|goodbye|greet|bot_challenge|thank|stop|"
    r"start_destination_guide|check_transfer_status|ask_contact|ask_wait_time)$")


class BackendUnavailable(Exception):
    pass


async def call_backend(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a blocking backend call with the 2-second budget."""
    loop = asyncio.get_running_loop()
    try:
        return await asyncio.wait_for(loop.run_in_executor(None, fn, *args), BACKEND_TIMEOUT)
    except DomainError:
        raise
    except Exception as error:  # timeout, connection refused, driver errors
        logger.warning("backend unavailable: %r", error)
        raise BackendUnavailable from error


def intent_of(tracker: Tracker) -> Optional[Text]:
    return ((tracker.latest_message or {}).get("intent") or {}).get("name")


def session_key(tracker: Tracker) -> Text:
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


def client_of(tracker: Tracker) -> Optional[Text]:
    """The client key the channel put in the message's metadata (server-side), if any."""
    metadata = (tracker.latest_message or {}).get("metadata") or {}
    client = metadata.get("client")
    return client if isinstance(client, str) and client else None
