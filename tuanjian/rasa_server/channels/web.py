"""The web chat page and its conversation: /webhooks/web/, served by the Rasa server.

GET  /webhooks/web/                 the page; its assets at /webhooks/web/static/<file>
POST /webhooks/web/session          a new signed session token {"session": ...}
POST /webhooks/web/webhook          {"session", "message", "message_id", "retry"}
                                    -> [{"text", "buttons"}] (as REST; 503 to retry)
POST /webhooks/web/restart          {"session"}: restart that conversation on the server,
                                    end its verification, revoke the token's session
                                    id and return a new token

The conversation is "web:<session id>" (tuanjian.conversation_ids), and only a
token this server signed (tuanjian.rasa_server.channels.web_session) names one, so a page
cannot write into a conversation it was not given. The servable files are
read from web_static when the blueprint is built and a request names one of
them by its bare file name, so no path can reach anything outside it. Without
WEB_SESSION_SECRET the conversation routes answer 503 (the page still loads).

Run as a module, it waits for a Rasa server, prints the page's address and
optionally opens a chat in the terminal over REST (scripts/run.sh):

    python -m tuanjian.rasa_server.channels.web --server http://localhost:5005 [--chat]
"""
import argparse
import asyncio
import json
import logging
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.shared.core.domain import Domain
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from tuanjian import settings
from tuanjian.backend.calls import BACKEND_ERRORS, call_in_thread
from tuanjian.backend.verification import VerificationService
from tuanjian.conversation_ids import conversation_id
from tuanjian.polling import answers_ok, wait_until
from tuanjian.rasa_server.channels.guard import (
    MessageRateLimit,
    client_address,
    client_key,
    is_json,
    json_error,
    message_rate_limit,
    rate_limited_reply,
)
from tuanjian.rasa_server.channels.rest import body_problem
from tuanjian.rasa_server.channels.static_pages import add_page_routes
from tuanjian.rasa_server.channels.turns import answer, message_id_problem, prepare_agent
from tuanjian.rasa_server.channels.web_session import WEB_CHANNEL, WebSessions, open_session_id

logger = logging.getLogger(__name__)
RESTART_PAYLOAD = "/restart"
MAX_CONTROL_BODY_BYTES = 4096
MAX_TOKEN_CHARS = 128

STATIC_DIR = Path(__file__).resolve().parent / "web_static"
PATH = "/webhooks/web/"

class WebChatInput(InputChannel):
    """The chat page and the conversation routes behind it (see the module's docstring)."""

    @classmethod
    def name(cls) -> str:
        return WEB_CHANNEL

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        credentials = credentials or {}
        secret = settings.secret(settings.WEB_SESSION_SECRET)
        return cls(sessions=WebSessions(secret) if secret else None, domain=credentials.get("domain"),
                   per_minute=settings.messages_per_minute())

    def __init__(self, sessions: WebSessions | None = None, domain: Any = None, per_minute: int = 0,
                 verifications: VerificationService | None = None) -> None:
        if domain is not None and not isinstance(domain, Domain):
            domain = Domain.load(str(domain))
        self.sessions = sessions
        self.domain = domain
        self.rate_limit = message_rate_limit(per_minute, "web")
        # New sessions and restarts each write something (a tracker, a closure): per client.
        # Counted by client address and kept per process: shared by the
        # replicas, one university behind one NAT address could be refused.
        self.control_limit = MessageRateLimit(per_minute)
        self.verifications = verifications or VerificationService()
        self.trusted_proxies = settings.trusted_proxies()
        if sessions is None:
            logger.warning("web chat not configured (%s missing): its conversation routes answer 503",
                           settings.WEB_SESSION_SECRET)

    def _client(self, request: Request) -> str:
        return client_key(client_address(request, self.trusted_proxies))

    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> Blueprint:
        web = Blueprint(f"custom_webhook_{type(self).__name__}", __name__)
        web.listener("after_server_start")(prepare_agent)
        add_page_routes(web, STATIC_DIR)

        @web.route("/session", methods=["POST"])
        async def session(request: Request) -> HTTPResponse:
            if self.sessions is None:
                return json_error(503, "web chat not configured")
            if not self.control_limit.allow(self._client(request)):
                return json_error(429, "too many new sessions, try again in a minute")
            return response.json({"session": self.sessions.issue()}, status=201,
                                 headers={"Cache-Control": "no-store"})

        @web.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if self.sessions is None:
                return json_error(503, "web chat not configured")
            if not is_json(request):
                return json_error(415, "body must be application/json")
            if len(request.body or b"") > settings.MAX_BODY_BYTES:
                return json_error(413, f"body over {settings.MAX_BODY_BYTES} bytes")
            problem = body_problem(request.body or b"", id_field="session", max_id_chars=MAX_TOKEN_CHARS) \
                or message_id_problem(request.json)
            if problem:
                return json_error(400, problem)
            payload = request.json
            session_id = await open_session_id(self.sessions, self.verifications, payload["session"])
            if session_id is None:
                return json_error(401, "unknown or expired session")
            conversation = conversation_id(self.name(), session_id)
            if not self.rate_limit.allow(conversation):
                return response.json(rate_limited_reply(self.domain, conversation), status=429,
                                     headers={"Retry-After": "60"})
            return await answer(request, UserMessage(
                payload["message"], CollectingOutputChannel(), conversation, input_channel=self.name(),
                metadata={"client": self._client(request)}, message_id=payload.get("message_id")),
                retry=payload.get("retry", False))

        @web.route("/restart", methods=["POST"])
        async def restart(request: Request) -> HTTPResponse:
            if self.sessions is None:
                return json_error(503, "web chat not configured")
            if not is_json(request):
                return json_error(415, "body must be application/json")
            if not self.control_limit.allow(self._client(request)):
                return json_error(429, "too many restarts, try again in a minute")
            body = request.body or b""
            try:
                token = json.loads(body.decode("utf-8")).get("session") \
                    if len(body) <= MAX_CONTROL_BODY_BYTES else None
            except (UnicodeDecodeError, ValueError, AttributeError):
                token = None
            session_id = await open_session_id(self.sessions, self.verifications, token)
            if session_id is None:
                return json_error(401, "unknown or expired session")
            try:
                await call_in_thread(self.verifications.close, self.name(), session_id)
            except BACKEND_ERRORS as error:
                # Not closed: the old token would stay valid, so no restart and no new token.
                logger.warning("web session %s: not closed, backend unavailable: %r", session_id, error)
                return json_error(503, "restart unavailable, try again")
            await on_new_message(UserMessage(RESTART_PAYLOAD, CollectingOutputChannel(),
                                             conversation_id(self.name(), session_id),
                                             input_channel=self.name()))
            return response.json({"session": self.sessions.issue()}, status=201,
                                 headers={"Cache-Control": "no-store"})

        return web


def page_url(server: str) -> str:
    return server.rstrip("/") + PATH


def wait_for_page(server: str, timeout: float = 300.0) -> bool:
    """True once the server answers the page, False after timeout seconds."""
    return wait_until(lambda: answers_ok(page_url(server)), timeout)


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="http://localhost:5005")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--chat", action="store_true", help="then chat in this terminal over REST")
    args = parser.parse_args(argv)
    if not wait_for_page(args.server, args.timeout):
        print(f"The Rasa server did not answer at {args.server} within {args.timeout:.0f} s.",
              file=sys.stderr)
        return 1
    print(f"Chat page: {page_url(args.server)}  "
          f"(REST API: {args.server.rstrip('/')}/webhooks/rest/webhook)", flush=True)
    if args.chat:
        from rasa.core.channels.console import record_messages

        asyncio.run(record_messages(sender_id=f"shell-{uuid.uuid4().hex}",
                                    server_url=args.server.rstrip("/"),
                                    use_response_stream=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
