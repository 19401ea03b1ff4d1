"""Rasa's REST channel with its request body checked before Rasa reads it.

The stock channel answers a body without "message" with an empty list (the
member sees silence) and a non-JSON body with an HTML error page; this one
answers both with a JSON 400 that says what is wrong.
"""
import json
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput as RasaRestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

MAX_MESSAGE_CHARS = 10_000
MAX_SENDER_CHARS = 128


def body_problem(body: bytes) -> Optional[Text]:
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
    sender = payload.get("sender", "default")
    if not isinstance(sender, str) or not 0 < len(sender) <= MAX_SENDER_CHARS:
        return f"'sender' must be a string of 1 to {MAX_SENDER_CHARS} characters"
    if not isinstance(payload.get("metadata", {}), (dict, type(None))):
        return "'metadata' must be an object"
    return None


class RestInput(RasaRestInput):
    """POST /webhooks/rest/webhook {"sender": "...", "message": "..."}."""

    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> Blueprint:
        webhook = super().blueprint(on_new_message)

        @webhook.middleware("request")
        async def reject_bad_bodies(request: Request) -> Optional[HTTPResponse]:
            if request.method != "POST":
                return None
            problem = body_problem(request.body or b"")
            return response.json({"error": problem}, status=400) if problem else None

        return webhook

    def get_metadata(self, request: Request) -> Optional[Dict[Text, Any]]:
        return request.json.get("metadata") or None
