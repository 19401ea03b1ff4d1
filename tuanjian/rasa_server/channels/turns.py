"""A member message as one turn, for the channels that answer in the HTTP
response (REST and the chat page).

- When the stores a turn needs cannot be reached (Redis for the lock, the
  tracker store's database) or the turn ahead of it does not finish
  (tuanjian.rasa_server.lock_store.STALL_SECONDS), the answer is a 503 with
  Retry-After, which the chat page retries; never a 500 or an empty 200.
- A turn that ends without a word (a custom action failed: the action server
  is away; Rasa logs it and goes on) is answered with utter_service_unavailable,
  which says so and where a person can help: every turn of ours says something.
  That reply is stored after the member's message, so the transcript a
  person reads (and a retry of the message) shows what the member was told.
- A message may carry the client's own id ("message_id"). A retry of it
  ("retry": true) whose turn is already stored — the first attempt was
  answered, or its replica died after storing the turn — is answered with the
  replies stored for it, not taken a second time. The check runs under the
  conversation's lock, so a first attempt still in progress is waited for.
- prepare_agent, a listener each channel that runs turns registers (REST,
  the chat page, WeChat), lets the tracker store's
  errors reach the turn (Rasa's wrapper would hide them) and has the action
  server's replies checked with a compiled schema (remote_actions).
"""
import logging
import re
import time
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.lock_store import LockError
from rasa.core.tracker_store import FailSafeTrackerStore
from rasa.shared.core.events import BotUttered, UserUttered
from redis.exceptions import RedisError
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy.exc import SQLAlchemyError

from tuanjian.rasa_server.channels.guard import (
    JSON_HEADERS,
    SERVICE_UNAVAILABLE_RESPONSE,
    domain_text,
    json_error,
)
from tuanjian.rasa_server.remote_actions import check_replies_with_compiled_schema

logger = logging.getLogger(__name__)
MESSAGE_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
RETRY_AFTER_SECONDS = 1
# A retry finds the turn it repeats only among the turns of the last few
# minutes (the page gives up after about 3): whoever knows a REST sender id
# and an old message id cannot replay older replies.
RETRY_WINDOW_SECONDS = 300
STORE_ERRORS = (LockError, RedisError, SQLAlchemyError)


def message_id_problem(payload: dict[str, Any]) -> str | None:
    """What is wrong with a body's optional "message_id" and "retry"."""
    given = payload.get("message_id")
    if given is not None and not (isinstance(given, str) and MESSAGE_ID.match(given)):
        return "'message_id' must be 8 to 64 letters, digits, '-' or '_'"
    if not isinstance(payload.get("retry", False), bool):
        return "'retry' must be true or false"
    if payload.get("retry") and given is None:
        return "a retry needs the 'message_id' of the message it repeats"
    return None


def unavailable_reply() -> HTTPResponse:
    reply = json_error(503, "the assistant cannot take this message now; send it again")
    reply.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return reply


async def answer(request: Request, message: UserMessage, retry: bool) -> HTTPResponse:
    """The replies to `message` (its output channel a CollectingOutputChannel)."""
    collector = message.output_channel
    if not isinstance(collector, CollectingOutputChannel):
        raise TypeError("a REST-style turn collects its replies")
    agent = request.app.ctx.agent
    if not agent.is_ready():
        return unavailable_reply()  # the model is still loading
    try:
        # Rasa's Agent.handle_message, with a retry's check and a silent
        # turn's reply under the same lock as the turn.
        async with agent.lock_store.lock(message.sender_id):
            replies = await _stored_turn(agent, message) if retry else None
            if replies is None:
                await agent.processor.handle_message(message)
                replies = collector.messages
            if not replies:
                await say_unavailable(agent, message)
                replies = collector.messages
    except STORE_ERRORS as error:
        logger.warning("turn of %s refused with 503: %r", message.sender_id, error)
        return unavailable_reply()
    return response.json(replies, headers=JSON_HEADERS)


async def say_unavailable(agent: Any, message: UserMessage) -> None:
    """Tell the member of a silent turn that the service is away (the
    conversation's lock held)."""
    logger.warning("turn of %s ended without a reply: a custom action failed?", message.sender_id)
    text = domain_text(getattr(agent, "domain", None), SERVICE_UNAVAILABLE_RESPONSE)
    if text:
        await message.output_channel.send_text_message(message.sender_id, text)
        await keep_reply(agent.tracker_store, message, text)


async def keep_reply(tracker_store: Any, message: UserMessage, text: str) -> None:
    """Store a reply the channel gave to `message` outside Rasa's turn (the
    conversation's lock held): a bot message, which the policies do not read,
    and only while `message` is the latest and still unanswered, so a reply
    is never stored twice or after a later message."""
    try:
        tracker = await tracker_store.retrieve(message.sender_id)
        if tracker is not None and _unanswered(tracker.events, message.message_id):
            tracker.update(BotUttered(text))
            await tracker_store.save(tracker)
    except STORE_ERRORS as error:  # the member has the reply; only the transcript lacks it
        logger.warning("reply to the silent turn of %s not stored: %r", message.sender_id, error)


def _unanswered(events: Any, message_id: str | None) -> bool:
    """Whether the latest member message is `message_id`, with no reply after it."""
    for event in reversed(events):
        if isinstance(event, BotUttered):
            return False
        if isinstance(event, UserUttered):
            return event.message_id == message_id
    return False


async def _stored_turn(agent: Any, message: UserMessage) -> list[dict[str, Any]] | None:
    """The stored replies of a turn taken before (within the retry window), or None."""
    tracker = await agent.tracker_store.retrieve(message.sender_id)
    if tracker is None:
        return None
    return stored_replies(tracker.events, message.sender_id, message.message_id,
                          since=time.time() - RETRY_WINDOW_SECONDS)


def prepare_agent(app: Sanic, _loop: Any = None) -> None:
    """What the server needs before member messages (a Sanic listener)."""
    make_tracker_store_strict(app)
    check_replies_with_compiled_schema()


def make_tracker_store_strict(app: Sanic, _loop: Any = None) -> None:
    """Let the tracker store's errors reach the turn (a Sanic listener).

    Rasa wraps the tracker store in a FailSafeTrackerStore, which answers a
    failed read with "no such conversation" and keeps a failed write in the
    process's memory: with its database away, a member would get a 200 from
    a blank conversation (verification, form and handoff forgotten) and the
    turn would be lost. Its error callback raising makes that a 503 instead.
    """
    store = getattr(getattr(app.ctx, "agent", None), "tracker_store", None)
    if isinstance(store, FailSafeTrackerStore):
        store._on_tracker_store_error = _raise


def _raise(error: Exception) -> None:
    raise error


def stored_replies(events: Any, recipient: str, message_id: str | None,
                   since: float = 0.0) -> list[dict[str, Any]] | None:
    """The bot messages that followed the member message `message_id` stored
    after `since` (a Unix time), as the channel sent them; None when there is
    no such message."""
    replies: list[dict[str, Any]] | None = None
    for event in events:
        if isinstance(event, UserUttered):
            if replies is not None:
                break
            if event.message_id == message_id and event.timestamp >= since:
                replies = []
        elif replies is not None and isinstance(event, BotUttered):
            extra = {key: value for key, value in (event.data or {}).items() if value}
            replies.append({"recipient_id": recipient, **({"text": event.text} if event.text else {}), **extra})
    return replies
