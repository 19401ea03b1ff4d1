"""The web chat page and its conversation: /webhooks/web/, served by the Rasa server.

GET  /webhooks/web/                 the page; its assets at /webhooks/web/static/<file>
POST /webhooks/web/session          a new signed session token {"session": ...}
POST /webhooks/web/webhook          {"session", "message"} -> [{"text", "buttons"}] (as REST)
POST /webhooks/web/restart          {"session"}: restart that conversation on the server,
                                    end its verification, revoke the token's session
                                    id and return a new token

The conversation is "web:<session id>" (bot.conversation_ids), and only a
token this server signed (bot.channels.web_session) names one, so a page
cannot write into a conversation it was not given. The servable files are
read from web_static when the blueprint is built and a request names one of
them by its bare file name, so no path can reach anything outside it. Without
WEB_SESSION_SECRET the conversation routes answer 503 (the page still loads).

Run as a module, it waits for a Rasa server, prints the page's address and
optionally opens a chat in the terminal over REST (scripts/run.sh):

    python -m bot.channels.web --server http://localhost:5005 [--chat]
"""
import argparse
import asyncio
import json
import logging
import sys
import time
import uuid
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.shared.core.domain import Domain
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy.exc import SQLAlchemyError

from bot import settings
from bot.backend.verification import VerificationService
from bot.channels.guard import MessageRateLimit, client_address, client_key, is_json, rate_limited_reply
from bot.channels.rest import body_problem
from bot.channels.web_session import WebSessions
from bot.conversation_ids import conversation_id

logger = logging.getLogger(__name__)
RESTART_PAYLOAD = "/restart"
MAX_CONTROL_BODY_BYTES = 4096
MAX_TOKEN_CHARS = 128
BACKEND_TIMEOUT = 2.0  # seconds the backend has to close a session or say whether it is closed
# What a backend call from this server may fail with when the database is away or slow.
BACKEND_ERRORS = (asyncio.TimeoutError, SQLAlchemyError, OSError)

STATIC_DIR = Path(__file__).resolve().parent / "web_static"
PAGE = "index.html"
PATH = "/webhooks/web/"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}

# Everything from this origin only: no inline script or style, no CDN, no
# external font, and the page cannot be framed by another site.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Small files: revalidate so an updated page is picked up at once.
    "Cache-Control": "no-cache",
}


def servable_files(folder: Path = STATIC_DIR) -> Dict[Text, Path]:
    """The files the channel may serve: regular files of the folder itself
    (no subfolders, no hidden files) with a known content type."""
    return {
        path.name: path
        for path in sorted(folder.iterdir())
        if path.is_file()
        and not path.is_symlink()
        and not path.name.startswith(".")
        and path.suffix in CONTENT_TYPES
    }


def add_page_routes(blueprint: Blueprint, folder: Path) -> None:
    """GET / → folder/index.html and GET /static/<name> → a file of that folder."""
    files = servable_files(folder)
    if PAGE not in files:
        raise FileNotFoundError(f"the page is missing: {folder / PAGE}")

    def serve(name: Text) -> HTTPResponse:
        path = files.get(name)
        if path is None:
            return response.text("not found", status=404, headers=SECURITY_HEADERS)
        try:
            body = path.read_bytes()
        except OSError:
            return response.text("not found", status=404, headers=SECURITY_HEADERS)
        return response.raw(body, content_type=CONTENT_TYPES[path.suffix], headers=SECURITY_HEADERS)

    @blueprint.route("/", methods=["GET", "HEAD"])
    async def page(request: Request) -> HTTPResponse:
        return serve(PAGE)

    @blueprint.route("/static/<name>", methods=["GET", "HEAD"])
    async def asset(request: Request, name: Text) -> HTTPResponse:
        return serve(name)


async def call_backend(fn: Callable[..., Any], *args: Any) -> Any:
    """A blocking backend call off the event loop, within BACKEND_TIMEOUT (raises BACKEND_ERRORS)."""
    return await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(None, fn, *args),
                                  BACKEND_TIMEOUT)


async def open_session_id(sessions: WebSessions, verifications: VerificationService,
                          token: object, unchecked_ok: bool = True) -> Optional[Text]:
    """The session id of a token this server signed, that has not expired and
    whose conversation was not closed by "重新开始"; None otherwise.

    Should the backend not answer within BACKEND_TIMEOUT, `unchecked_ok` decides:
    the chat goes on (its conversation is unverified then anyway, since
    verifying needs the backend), the staff inbox does not."""
    session_id = sessions.session_id(token)
    if session_id is None:
        return None
    try:
        closed = await call_backend(verifications.is_closed, WebChatInput.name(), session_id)
    except BACKEND_ERRORS as error:
        logger.warning("web session %s: closure not checked, backend unavailable: %r", session_id, error)
        closed = not unchecked_ok
    return None if closed else session_id


def _json_error(status: int, error: Text) -> HTTPResponse:
    return response.json({"error": error}, status=status, headers={"Cache-Control": "no-store"})


class WebChatInput(InputChannel):
    """The chat page and the conversation routes behind it (see the module's docstring)."""

    @classmethod
    def name(cls) -> Text:
        return "web"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        credentials = credentials or {}
        secret = settings.secret(settings.WEB_SESSION_SECRET)
        return cls(sessions=WebSessions(secret) if secret else None, domain=credentials.get("domain"),
                   per_minute=settings.messages_per_minute())

    def __init__(self, sessions: Optional[WebSessions] = None, domain: Any = None, per_minute: int = 0,
                 verifications: Optional[VerificationService] = None) -> None:
        if domain is not None and not isinstance(domain, Domain):
            domain = Domain.load(str(domain))
        self.sessions = sessions
        self.domain = domain
        self.rate_limit = MessageRateLimit(per_minute)
        # New sessions and restarts each write something (a tracker, a closure): per client.
        self.control_limit = MessageRateLimit(per_minute)
        self.verifications = verifications or VerificationService()
        self.trusted_proxies = settings.trusted_proxies()
        if sessions is None:
            logger.warning("web chat not configured (%s missing): its conversation routes answer 503",
                           settings.WEB_SESSION_SECRET)

    def _client(self, request: Request) -> Text:
        return client_key(client_address(request, self.trusted_proxies))

    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> Blueprint:
        web = Blueprint(f"custom_webhook_{type(self).__name__}", __name__)
        add_page_routes(web, STATIC_DIR)

        @web.route("/session", methods=["POST"])
        async def session(request: Request) -> HTTPResponse:
            if self.sessions is None:
                return _json_error(503, "web chat not configured")
            if not self.control_limit.allow(self._client(request)):
                return _json_error(429, "too many new sessions, try again in a minute")
            return response.json({"session": self.sessions.issue()}, status=201,
                                 headers={"Cache-Control": "no-store"})

        @web.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if self.sessions is None:
                return _json_error(503, "web chat not configured")
            if not is_json(request):
                return _json_error(415, "body must be application/json")
            problem = body_problem(request.body or b"", id_field="session", max_id_chars=MAX_TOKEN_CHARS)
            if problem:
                return _json_error(400, problem)
            payload = request.json
            session_id = await open_session_id(self.sessions, self.verifications, payload["session"])
            if session_id is None:
                return _json_error(401, "unknown or expired session")
            conversation = conversation_id(self.name(), session_id)
            if not self.rate_limit.allow(conversation):
                return response.json(rate_limited_reply(self.domain, conversation), status=429,
                                     headers={"Retry-After": "60"})
            collector = CollectingOutputChannel()
            await on_new_message(UserMessage(
                payload["message"], collector, conversation, input_channel=self.name(),
                metadata={"client": self._client(request)}))
            return response.json(collector.messages)

        @web.route("/restart", methods=["POST"])
        async def restart(request: Request) -> HTTPResponse:
            if self.sessions is None:
                return _json_error(503, "web chat not configured")
            if not is_json(request):
                return _json_error(415, "body must be application/json")
            if not self.control_limit.allow(self._client(request)):
                return _json_error(429, "too many restarts, try again in a minute")
            body = request.body or b""
            try:
                token = json.loads(body.decode("utf-8")).get("session") \
                    if len(body) <= MAX_CONTROL_BODY_BYTES else None
            except (UnicodeDecodeError, ValueError, AttributeError):
                token = None
            session_id = await open_session_id(self.sessions, self.verifications, token)
            if session_id is None:
                return _json_error(401, "unknown or expired session")
            try:
                await call_backend(self.verifications.close, self.name(), session_id)
            except BACKEND_ERRORS as error:
                # Not closed: the old token would stay valid, so no restart and no new token.
                logger.warning("web session %s: not closed, backend unavailable: %r", session_id, error)
                return _json_error(503, "restart unavailable, try again")
            await on_new_message(UserMessage(RESTART_PAYLOAD, CollectingOutputChannel(),
                                             conversation_id(self.name(), session_id),
                                             input_channel=self.name()))
            return response.json({"session": self.sessions.issue()}, status=201,
                                 headers={"Cache-Control": "no-store"})

        return web


def page_url(server: Text) -> Text:
    return server.rstrip("/") + PATH


def wait_for_page(server: Text, timeout: float = 300.0) -> bool:
    """True once the server answers the page, False after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(page_url(server), timeout=5) as reply:
                if reply.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    return False


def main(argv: Optional[list] = None) -> int:
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
