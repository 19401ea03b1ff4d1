"""Staff help desk: a JSON API on the tickets and a small page, under /webhooks/staff/.

Staff routes need `Authorization: Bearer <STAFF_API_TOKEN>` (or a token of
STAFF_API_TOKENS; compared in constant time); without either they answer 503, with a missing or wrong
token 401 and nothing else:

    GET  /webhooks/staff/tickets               open tickets, oldest first
    GET  /webhooks/staff/tickets/<id>          one ticket, transcript and messages
    POST /webhooks/staff/tickets/<id>/reply    {"text": "..."} (1-2000 characters)
    POST /webhooks/staff/tickets/<id>/close    the assistant answers that conversation again
    GET  /webhooks/staff/review                the review inbox: undecided messages the
                                               assistant may have missed, grouped, newest first
    GET  /webhooks/staff/review/<id>           one message and the conversation around it
    POST /webhooks/staff/review/<id>/decision  {"decision": "intent", "intent": "faq_x"},
                                               {"decision": "new_topic", "note": "..."} or
                                               {"decision": "dismissed"}

Each staff member may have a token of their own (STAFF_API_TOKENS, name:token):
the name of the token a request came with is who made a review decision.
The inbox reads the tracker store (TUANJIAN_TRACKER_STORE_URL, else
var/tracker.db, as the report does) and masks every run of four or more digits.

A reply reaches the member through the channel of the ticket: "wechat" through
the customer-service API (WECHAT_APP_ID / WECHAT_APP_SECRET, like the WeChat
channel); "web" is stored undelivered and fetched by the chat page from the
member-side route GET /webhooks/staff/inbox with its signed session token in
the X-Chat-Session header (no staff token; a bare conversation id is not
enough). A REST conversation's replies stay on the ticket. Closing a ticket
clears the tracker slot `handoff_ticket` of that conversation.

The page: GET /webhooks/staff/ and /webhooks/staff/static/<file> (staff_static/).
Refusals are JSON {"error": code, "reason": text}; a refused request stores nothing.
"""
import asyncio
import functools
import hmac
import inspect
import json
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SlotSet
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy.exc import SQLAlchemyError

from tuanjian import settings
from tuanjian.backend.review import PAGE_READ_EVENTS, ReviewService, labels
from tuanjian.backend.rules import DomainError
from tuanjian.backend.tickets import TicketService, reply_text
from tuanjian.backend.verification import VerificationService
from tuanjian.conversation_ids import conversation_id, split_conversation_id
from tuanjian.domain_names import HANDOFF_TICKET as HANDOFF_SLOT
from tuanjian.rasa_server.channels.guard import JSON_HEADERS, domain_text, json_error
from tuanjian.rasa_server.channels.static_pages import add_page_routes
from tuanjian.rasa_server.channels.web_session import HEADER as SESSION_HEADER
from tuanjian.rasa_server.channels.web_session import WebSessions, open_session_id
from tuanjian.rasa_server.channels.wechat_client import customer_service_client, refuse_moved_keys
from tuanjian.rasa_server.channels.wechat_render import MAX_TEXT_BYTES, split_text
from tuanjian.redaction import mask_digit_runs
from tuanjian.text import without_markup
from tuanjian.tracker_events import tracker_engine

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "staff_static"
PAGE = "index.html"
INBOX_CHANNEL = "web"
PREFIX_RESPONSE = "utter_staff_reply_prefix"  # optional: put right before a reply sent by WeChat
_ID = re.compile(r"^[1-9][0-9]{0,8}$")
STATUS = {
    "unknown_ticket": 404,
    "unknown_message": 404,
    "ticket_closed": 409,
    "bad_text": 400,
    "empty_text": 400,
    "text_too_long": 413,
    "note_too_long": 413,
    "already_decided": 409,
}
TOPIC_PREFIX = "utter_topic_"  # utter_topic_<intent>: an intent's short title, shown to reviewers

# resume(channel, sender_id): make the assistant answer the conversation again.
Resume = Callable[[str, str], bool | None | Awaitable[bool | None]]


def _json(body: Any, status: int = 200, **headers: str) -> HTTPResponse:
    return response.json(body, status=status, headers={**JSON_HEADERS, **headers})


class _Refused(Exception):
    def __init__(self, reply: HTTPResponse):
        super().__init__()
        self.reply = reply


async def resume_in_tracker(app: Any, channel: str, sender_id: str) -> bool:
    """Clear `handoff_ticket` in the conversation's tracker (Rasa 3.6: the agent
    is `app.ctx.agent`, set when the server has loaded the model)."""
    agent = getattr(app.ctx, "agent", None)
    if agent is None or getattr(agent, "tracker_store", None) is None:
        logger.info("no Rasa agent: %s conversation %s not resumed in its tracker", channel, sender_id)
        return False
    async with agent.lock_store.lock(sender_id):
        tracker = await agent.tracker_store.retrieve(sender_id)
        if tracker is None:
            logger.info("no tracker for %s conversation %s: nothing to resume", channel, sender_id)
            return False
        tracker.update(SlotSet(HANDOFF_SLOT, None))
        await agent.tracker_store.save(tracker)
    return True


class StaffInput(InputChannel):
    @classmethod
    def name(cls) -> str:
        return "staff"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> "StaffInput":
        credentials = credentials or {}
        refuse_moved_keys(credentials)
        session_secret = settings.secret(settings.WEB_SESSION_SECRET)
        wechat = settings.wechat_secrets()
        return cls(tokens=settings.staff_tokens(),
                   sessions=WebSessions(session_secret) if session_secret else None,
                   app_id=wechat["app_id"],
                   app_secret=wechat["app_secret"],
                   api_base_url=settings.wechat_api_base_url(),
                   domain=credentials.get("domain") or "domain")

    def __init__(
        self,
        token: str | None = None,
        service: TicketService | None = None,
        tokens: dict[str, str] | None = None,
        reviews: ReviewService | None = None,
        tracker: sa.engine.Engine | str | None = None,
        wechat_client: Any = None,
        app_id: str | None = None,
        app_secret: str | None = None,
        api_base_url: str | None = None,
        resume: Resume | None = None,
        domain: Domain | str | Path | None = None,
        sessions: WebSessions | None = None,
        verifications: VerificationService | None = None,
    ) -> None:
        """`wechat_client`: anything with `.message.send_text(openid, text)`, by
        default a CustomerServiceClient on `api_base_url` (WeChat's when None).
        `resume`: called with (channel, sender_id) after a close; by default
        `resume_in_tracker` on the running Rasa server. `token` is the shared
        token ("staff"), `tokens` staff members' own; `tracker` the tracker
        store (an engine or a URL) the review inbox reads."""
        self.tokens = dict(tokens or {})
        if token:
            self.tokens.setdefault(settings.SHARED_STAFF_NAME, token)
        self.reviews = reviews or ReviewService()
        self._tracker = tracker
        self.sessions = sessions
        self.verifications = verifications or VerificationService()
        self.service = service or TicketService()
        self.app_id = app_id
        self.app_secret = app_secret
        self.api_base_url = api_base_url
        self.resume = resume
        self._wechat_client = wechat_client
        if domain is not None and not isinstance(domain, Domain):
            domain = Domain.load(str(domain))
        self.reply_prefix: str | None = domain_text(domain, PREFIX_RESPONSE)
        self.intents = _labels(domain)
        self.label_names = frozenset(str(intent["name"]) for intent in self.intents)
        if not self.tokens:
            logger.warning("staff API not configured (%s missing): answering 503", settings.STAFF_API_TOKEN)

    # -- routes ----------------------------------------------------------------

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        staff = Blueprint(f"custom_webhook_{type(self).__name__}", __name__)
        add_page_routes(staff, STATIC_DIR)

        @staff.route("/inbox", methods=["GET"])
        async def inbox(request: Request) -> HTTPResponse:
            if self.sessions is None:
                return json_error(503, "not_configured", f"{settings.WEB_SESSION_SECRET} is not set")
            session_id = await open_session_id(self.sessions, self.verifications,
                                               request.headers.get(SESSION_HEADER), unchecked_ok=False)
            if session_id is None:
                return json_error(401, "bad_session", f"a valid {SESSION_HEADER} header is needed")
            return await self._guarded(self._inbox, conversation_id(INBOX_CHANNEL, session_id))

        @staff.route("/tickets", methods=["GET"])
        async def tickets(request: Request) -> HTTPResponse:
            return await self._guarded(self._list, request=request)

        @staff.route("/tickets/<ticket_id>", methods=["GET"])
        async def ticket(request: Request, ticket_id: str) -> HTTPResponse:
            return await self._guarded(self._get, ticket_id, request=request)

        @staff.route("/tickets/<ticket_id>/reply", methods=["POST"])
        async def reply(request: Request, ticket_id: str) -> HTTPResponse:
            return await self._guarded(self._reply, request, ticket_id, request=request)

        @staff.route("/tickets/<ticket_id>/close", methods=["POST"])
        async def close(request: Request, ticket_id: str) -> HTTPResponse:
            return await self._guarded(self._close, request, ticket_id, request=request)

        @staff.route("/review", methods=["GET"])
        async def review(request: Request) -> HTTPResponse:
            return await self._guarded(self._review, request=request)

        @staff.route("/review/<message_id>", methods=["GET"])
        async def review_message(request: Request, message_id: str) -> HTTPResponse:
            return await self._guarded(self._review_message, message_id, request=request)

        @staff.route("/review/<message_id>/decision", methods=["POST"])
        async def decide(request: Request, message_id: str) -> HTTPResponse:
            return await self._guarded(self._decide, request, message_id, request=request)

        return staff

    async def _guarded(self, handler: Callable[..., Awaitable[HTTPResponse]], *args: Any,
                       request: Request | None = None) -> HTTPResponse:
        """Authorise (when `request` is given: a staff route), then run the
        handler, turning refusals into JSON errors."""
        try:
            if request is not None:
                self._authorise(request)
            return await handler(*args)
        except _Refused as refused:
            return refused.reply
        except DomainError as error:
            return json_error(STATUS.get(error.code, 400), error.code, str(error))
        except SQLAlchemyError:
            logger.exception("ticket backend failed")
            return json_error(503, "backend_unavailable", "the ticket backend is unavailable, try again")

    def _authorise(self, request: Request) -> None:
        """Let a staff member in; `request.ctx.staff` is then their name."""
        if not self.tokens:
            raise _Refused(json_error(503, "not_configured", f"staff API not configured: "
                                      f"{settings.STAFF_API_TOKEN} or {settings.STAFF_API_TOKENS} is not set"))
        scheme, _, given = (request.headers.get("Authorization") or "").partition(" ")
        typed = given.strip().encode("utf-8")
        # Every token is compared, so the time taken says nothing about which one matched.
        matches = [name for name, token in self.tokens.items() if hmac.compare_digest(typed, token.encode("utf-8"))]
        if not (scheme.lower() == "bearer" and matches):
            raise _Refused(_json({"error": "unauthorized"}, 401, **{"WWW-Authenticate": "Bearer"}))
        request.ctx.staff = matches[0]

    async def _call(self, method: Callable[..., Any], *args: Any) -> Any:
        """A (blocking) service call, off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(None, functools.partial(method, *args))

    # -- handlers ----------------------------------------------------------------

    async def _inbox(self, conversation: str) -> HTTPResponse:
        return _json({"replies": await self._call(self.service.undelivered_replies, INBOX_CHANNEL,
                                                  conversation)})

    async def _list(self) -> HTTPResponse:
        return _json({"tickets": await self._call(self.service.list_open)})

    async def _get(self, ticket_id: str) -> HTTPResponse:
        return _json(await self._call(self.service.get, _ticket_id(ticket_id)))

    async def _reply(self, request: Request, ticket_id: str) -> HTTPResponse:
        number = _ticket_id(ticket_id)
        text = reply_text(_json_body(request).get("text"))
        ticket = await self._call(self.service.get, number)
        if ticket["status"] != "open":
            raise DomainError("ticket_closed", f"ticket {number} is closed")
        wechat = ticket["channel"] == "wechat"
        client = self._wechat() if wechat else None
        if wechat and client is None:
            return json_error(503, "wechat_not_configured",
                          f"cannot reach a WeChat member: {settings.WECHAT_APP_ID} and "
                          f"{settings.WECHAT_APP_SECRET} are not set; nothing was stored")
        message_id = await self._call(self.service.staff_reply, number, text)
        if client is None:  # not WeChat: the member reads it in the web page's inbox
            return _json({"message_id": message_id, "delivery": "inbox", "delivered": False}, 201)
        try:
            prefix = self.reply_prefix or ""
            parts = split_text(text, MAX_TEXT_BYTES - len(prefix.encode("utf-8")))
            parts[0] = prefix + parts[0]
            for part in parts:
                await self._call(client.message.send_text, split_conversation_id(ticket["sender_id"])[1], part)
        except Exception as exc:  # WeChat refused it (48-hour window, blocked) or unreachable
            logger.warning("staff reply %s to WeChat user of ticket %s not delivered: %s",
                           message_id, number, exc)
            return _json({"error": "delivery_failed", "message_id": message_id,
                          "reason": "stored on the ticket but WeChat did not take it; "
                                    "the member may not have written in the last 48 hours"}, 502)
        await self._call(self.service.mark_delivered, message_id)
        return _json({"message_id": message_id, "delivery": "wechat", "delivered": True}, 201)

    async def _close(self, request: Request, ticket_id: str) -> HTTPResponse:
        ticket = await self._call(self.service.close, _ticket_id(ticket_id))
        resumed = False
        resume = self.resume or functools.partial(resume_in_tracker, request.app)
        try:
            result = resume(ticket["channel"], ticket["sender_id"])
            if inspect.isawaitable(result):
                result = await result
            resumed = result is not False
        except Exception:
            logger.exception("ticket %s closed, but its conversation was not resumed", ticket["id"])
        return _json({**ticket, "resumed": resumed})

    async def _review(self) -> HTTPResponse:
        collected = await self._call(self.reviews.collect, self._tracker_engine(), PAGE_READ_EVENTS)
        inbox = await self._call(self.reviews.pending)
        for wording in inbox["wordings"]:
            wording["suggestions"] = self._offered(wording["suggestions"])
        return _json({"total": inbox["total"], "shown": len(inbox["wordings"]), "unread": collected.unread,
                      "groups": _grouped(inbox["wordings"]), "intents": self.intents})

    async def _review_message(self, message_id: str) -> HTTPResponse:
        message = await self._call(self.reviews.get, _id(message_id, "unknown_message"), self._tracker_engine())
        message["text"] = for_staff(message["text"])
        message["suggestions"] = self._offered(message["suggestions"])
        for line in message["conversation"]:
            line["text"] = for_staff(line["text"])
        return _json(message)

    async def _decide(self, request: Request, message_id: str) -> HTTPResponse:
        number = _id(message_id, "unknown_message")
        body = _json_body(request)
        decided = await self._call(functools.partial(
            self.reviews.decide, number, body.get("decision"), request.ctx.staff,
            self.label_names, label=body.get("intent"), note=body.get("note")))
        return _json(decided, 201)

    def _offered(self, suggestions: list[str]) -> list[str]:
        """The assistant's guesses a reviewer may give (not inform, restart …)."""
        return [name for name in suggestions if name in self.label_names]

    def _tracker_engine(self) -> sa.engine.Engine:
        if not isinstance(self._tracker, sa.engine.Engine):
            self._tracker = tracker_engine(self._tracker or settings.tracker_url())
        return self._tracker

    def _wechat(self) -> Any:
        if self._wechat_client is None:
            self._wechat_client = customer_service_client(self.app_id, self.app_secret, self.api_base_url)
        return self._wechat_client


def _ticket_id(raw: str) -> int:
    return _id(raw, "unknown_ticket")


def _id(raw: str, unknown: str) -> int:
    if not _ID.match(raw or ""):
        raise DomainError(unknown, f"no such id {raw[:20]!r}")
    return int(raw)


def for_staff(text: str) -> str:
    """A member's text as the inbox shows it: as the assistant read it (HTML
    escapes read, tags left out), numbers masked."""
    return mask_digit_runs(without_markup(text))


def _labels(domain: Domain | None) -> list[dict[str, str | None]]:
    """The intents a reviewer may give (review.labels), with their titles where the domain has one."""
    if domain is None:
        return []
    titles = {name[len(TOPIC_PREFIX):]: domain_text(domain, name) for name in domain.responses
              if name.startswith(TOPIC_PREFIX)}
    return [{"name": intent, "title": titles.get(intent)} for intent in labels(domain.intents)]


def _grouped(wordings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The report's grouping of similar wordings; groups and wordings newest first."""
    from tuanjian.tools.report.report import Question, group_questions

    by_text = {w["text"]: w for w in wordings}
    at = {text: datetime.fromisoformat(w["said_at"]).timestamp() for text, w in by_text.items()}
    groups = []
    for group in group_questions([Question(text, at[text]) for text in by_text]):
        members = sorted((by_text[text] for text, _ in group.variants), key=lambda w: w["said_at"], reverse=True)
        groups.append({"size": sum(w["count"] for w in members),
                       "wordings": [{**w, "text": for_staff(w["text"])} for w in members]})
    groups.sort(key=lambda g: g["wordings"][0]["said_at"], reverse=True)
    return groups


def _json_body(request: Request) -> dict[str, Any]:
    body = request.body or b""
    if len(body) > settings.MAX_BODY_BYTES:
        raise _Refused(json_error(413, "body_too_large", f"body over {settings.MAX_BODY_BYTES} bytes"))
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _Refused(json_error(400, "bad_json", "body must be UTF-8 encoded JSON")) from None
    if not isinstance(payload, dict):
        raise _Refused(json_error(400, "bad_json", "body must be a JSON object"))
    return payload
