"""Rasa's REST channel with its request body checked and its identity fixed by the server.

The stock channel answers a body without "message" with an empty list (the
member sees silence) and a non-JSON body with an HTML error page; this one
answers both with a JSON 400 that says what is wrong, and a body not declared
as application/json with a 415 (so a page of another site cannot post here
from a visitor's browser without a CORS preflight, which it does not pass). It also takes nothing
of who is talking from the client but its own sender id: the conversation is
"rest:<sender>" (tuanjian.conversation_ids), the input channel is always "rest"
(Rasa's would take "input_channel" from the body) and the metadata is the
server's own (the client key the verification throttle counts by), never the
body's. A conversation writing faster than the limit gets a polite reply (429).
A message may carry "message_id" and, when sent again, "retry": true; a turn
the stores cannot take now is a 503 (tuanjian.rasa_server.channels.turns).
"""
import json
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.core.channels.rest import RestInput as RasaRestInput
from rasa.shared.core.domain import Domain
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from tuanjian import settings
from tuanjian.conversation_ids import conversation_id
from tuanjian.rasa_server.channels.guard import (
    client_address,
    client_key,
    is_json,
    json_error,
    message_rate_limit,
    rate_limited_reply,
)
from tuanjian.rasa_server.channels.turns import answer, message_id_problem, prepare_agent

MAX_MESSAGE_CHARS = 10_000
# Conversation ids (channel prefix included) fit the backend's 128 characters.


def body_problem(body: bytes, id_field: str = "sender", max_id_chars: int = settings.MAX_SENDER_CHARS) -> str | None:
    """What is wrong with a webhook request body, or None if it is usable."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return "body must be UTF-8 encoded JSON"
    if not isinstance(payload, dict):
        return "body must be a JSON object"
    message = payload.get("message")
    if not isinstance(message, str):
        return "'message' must be a string"
    if len(message) > MAX_MESSAGE_CHARS:
        return f"'message' must be at most {MAX_MESSAGE_CHARS} characters"
    sender = payload.get(id_field)
    if not isinstance(sender, str) or not 0 < len(sender) <= max_id_chars:
        return f"'{id_field}' must be a string of 1 to {max_id_chars} characters"
    if not isinstance(payload.get("metadata", {}), (dict, type(None))):
        return "'metadata' must be an object"
    return None


class RestInput(RasaRestInput):
    """POST /webhooks/rest/webhook {"sender": "...", "message": "..."}."""

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        credentials = credentials or {}
        return cls(domain=credentials.get("domain"), per_minute=settings.messages_per_minute())

    def __init__(self, domain: Any = None, per_minute: int = 0) -> None:
        if domain is not None and not isinstance(domain, Domain):
            domain = Domain.load(str(domain))
        self.domain = domain
        self.rate_limit = message_rate_limit(per_minute, "rest")
        self.trusted_proxies = settings.trusted_proxies()

    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> Blueprint:
        # Rasa's route answers [] with status 200 when the turn fails (Redis or
        # the tracker store away), and knows no message id: this one answers
        # through tuanjian.rasa_server.channels.turns.
        webhook = Blueprint(f"custom_webhook_{type(self).__name__}", __name__)
        webhook.listener("after_server_start")(prepare_agent)

        # The readiness probe: Rasa's GET / answers even when the model failed to
        # load, and such a replica would answer every member with an error.
        @webhook.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            agent = getattr(request.app.ctx, "agent", None)
            if agent is None or not agent.is_ready():
                return response.json({"status": "no model loaded"}, status=503)
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if not is_json(request):
                return json_error(415, "body must be application/json")
            if len(request.body or b"") > settings.MAX_BODY_BYTES:
                return json_error(413, f"body over {settings.MAX_BODY_BYTES} bytes")
            problem = body_problem(request.body or b"") or message_id_problem(request.json)
            if problem:
                return json_error(400, problem)
            payload = request.json
            sender = conversation_id(self.name(), payload["sender"])
            if not self.rate_limit.allow(sender):
                return response.json(rate_limited_reply(self.domain, sender), status=429,
                                     headers={"Retry-After": "60"})
            message = UserMessage(payload["message"], CollectingOutputChannel(), sender,
                                  input_channel=self.name(), metadata=self.get_metadata(request),
                                  message_id=payload.get("message_id"))
            return await answer(request, message, retry=payload.get("retry", False))

        return webhook

    def get_metadata(self, request: Request) -> dict[str, Any] | None:
        return {"client": client_key(client_address(request, self.trusted_proxies))}
