"""WeChat Official Account channel: GET/POST /webhooks/wechat/webhook.

WeChat waits 5 seconds for a passive reply and retries a message three times
within 15 seconds. So each message (MsgId; events: FromUserName+CreateTime)
runs one Rasa turn; retries wait for that turn's passive reply. A turn not
done within `reply_timeout` is answered 'success' and its reply goes out
later through the customer-service message API, as do the parts of a reply
beyond the first when it is too long for one message.
"""
import asyncio
import hmac
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError

import defusedxml.ElementTree
from defusedxml import DefusedXmlException
from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.shared.core.domain import Domain
from redis.exceptions import RedisError
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from wechatpy import parse_message
from wechatpy.crypto import PrpCrypto, WeChatCrypto, _get_signature
from wechatpy.messages import BaseMessage
from wechatpy.replies import TextReply
from wechatpy.utils import WeChatSigner

from tuanjian import settings
from tuanjian.conversation_ids import conversation_id
from tuanjian.rasa_server.channels.guard import (
    RATE_LIMITED_RESPONSE,
    SERVICE_BUSY_RESPONSE,
    SERVICE_UNAVAILABLE_RESPONSE,
    domain_text,
    json_error,
    message_rate_limit,
)
from tuanjian.rasa_server.channels.turns import STORE_ERRORS, keep_reply, prepare_agent
from tuanjian.rasa_server.channels.wechat_client import customer_service_client, refuse_moved_keys
from tuanjian.rasa_server.channels.wechat_render import chosen_payload, render, split_text, spoken_number
from tuanjian.rasa_server.channels.wechat_replies import LocalReplies, RedisReplies, reply_claims

logger = logging.getLogger(__name__)

MAX_CLOCK_SKEW = 5 * 60
REPLY_TIMEOUT = 4.5
OPTIONS_TTL = 30 * 60.0
OPTIONS_PREFIX = "tuanjian:wechat-options:"
HINT_RESPONSE = "utter_wechat_reply_with_number"
SUBSCRIBE_PAYLOAD = "/greet"
NON_TEXT_PAYLOAD = "/non_text_message"
SUCCESS = "success"  # tells WeChat "no passive reply", without showing anything


class TTLStore:
    """In-memory key → value; an entry expires `ttl` seconds after it was set."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._items: OrderedDict[Hashable, tuple] = OrderedDict()  # oldest first

    def get(self, key: Hashable) -> Any:
        item = self._items.get(key)
        return item[1] if item is not None and item[0] > self.clock() else None

    def set(self, key: Hashable, value: Any) -> None:
        now = self.clock()
        while self._items and next(iter(self._items.values()))[0] <= now:
            self._items.popitem(last=False)
        self._items.pop(key, None)
        self._items[key] = (now + self.ttl, value)

    def pop(self, key: Hashable) -> None:
        self._items.pop(key, None)


@dataclass(frozen=True)
class TurnInput:
    text: str
    voice: bool = False  # WeChat's transcript of a voice message


class RedisTTLStore:
    """TTLStore's interface on Redis, for values that are JSON: the numbered
    options a member was shown, readable by whichever replica gets the reply."""

    def __init__(self, url: str, ttl: float, prefix: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=2)
        self.ttl = ttl
        self.prefix = prefix

    # Redis away: the options are forgotten (a number is then read as text),
    # the turn still answers.
    def get(self, key: Hashable) -> Any:
        try:
            raw = self.client.get(f"{self.prefix}{key}")
        except RedisError:
            logger.warning("WeChat options of %s unreadable: Redis unavailable", key)
            return None
        return json.loads(raw) if raw is not None else None

    def set(self, key: Hashable, value: Any) -> None:
        try:
            self.client.set(f"{self.prefix}{key}", json.dumps(value, ensure_ascii=False), ex=int(self.ttl))
        except RedisError:
            logger.warning("WeChat options of %s not kept: Redis unavailable", key)

    def pop(self, key: Hashable) -> None:
        try:
            self.client.delete(f"{self.prefix}{key}")
        except RedisError:
            logger.warning("WeChat options of %s not cleared: Redis unavailable", key)


def option_store() -> TTLStore | RedisTTLStore:
    """Where the numbered options live: Redis in the production profile."""
    url = settings.redis_url()
    return RedisTTLStore(url, OPTIONS_TTL, OPTIONS_PREFIX) if url else TTLStore(OPTIONS_TTL)


def _same(given: str | None, expected: str) -> bool:
    return hmac.compare_digest((given or "").encode("utf-8"), expected.encode("utf-8"))


def _safe_xml(raw: bytes | str) -> Any:
    """Parse with entities, DTDs and external references refused."""
    return defusedxml.ElementTree.fromstring(
        raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)


class WeChatInput(InputChannel):
    @classmethod
    def name(cls) -> str:
        return "wechat"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> "WeChatInput":
        credentials = credentials or {}
        refuse_moved_keys(credentials)
        secrets = {key: credentials.get(key) or value for key, value in settings.wechat_secrets().items()}
        return cls(token=secrets["token"], app_id=secrets["app_id"], app_secret=secrets["app_secret"],
                   encoding_aes_key=secrets["encoding_aes_key"],
                   per_minute=settings.messages_per_minute(),
                   domain=credentials.get("domain") or "domain",
                   reply_timeout=float(credentials.get("reply_timeout") or REPLY_TIMEOUT),
                   api_base_url=settings.wechat_api_base_url())

    def __init__(
        self,
        token: str | None = None,
        app_id: str | None = None,
        app_secret: str | None = None,
        encoding_aes_key: str | None = None,
        domain: Domain | str | Path = "domain",
        reply_timeout: float = REPLY_TIMEOUT,
        client: Any = None,
        api_base_url: str | None = None,
        replies: LocalReplies | RedisReplies | None = None,
        options: TTLStore | RedisTTLStore | None = None,
        clock: Callable[[], float] = time.time,
        per_minute: int = 0,
    ) -> None:
        """`client` is anything with `.message.send_text(openid, text)`; by
        default a wechatpy client on `api_base_url` (WeChat's when None)."""
        self.token = token
        self.app_id = app_id
        self.app_secret = app_secret
        self.crypto = WeChatCrypto(token, encoding_aes_key, app_id) \
            if token and encoding_aes_key and app_id else None
        self.reply_timeout = reply_timeout
        self.api_base_url = api_base_url
        self.replies = replies if replies is not None else reply_claims()
        self.options = options if options is not None else option_store()
        self.clock = clock
        self.rate_limit = message_rate_limit(per_minute, "wechat")
        self._client = client
        self._tasks: set = set()  # running turns and replies being stored, referenced until done
        if not isinstance(domain, Domain):
            domain = Domain.load(str(domain))
        self.hint: str | None = domain_text(domain, HINT_RESPONSE)
        self.rate_limited_text = domain_text(domain, RATE_LIMITED_RESPONSE) or ""
        self.busy_text = domain_text(domain, SERVICE_BUSY_RESPONSE) or ""
        self.unavailable_text = domain_text(domain, SERVICE_UNAVAILABLE_RESPONSE) or ""
        if not self.hint:
            logger.warning("domain has no response %s: numbered options go without a hint", HINT_RESPONSE)
        if not token:
            logger.warning("WeChat channel not configured (%s missing): answering 503", settings.WECHAT_TOKEN)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint("wechat_webhook", __name__)
        webhook.listener("after_server_start")(prepare_agent)

        @webhook.route("/webhook", methods=["GET"])
        async def verify(request: Request) -> HTTPResponse:
            echostr = request.args.get("echostr", "")
            refused = self._refusal(request, echostr)
            if refused is not None:
                return refused
            if self._safe_mode(request):
                try:
                    echostr = PrpCrypto(self._crypto().key).decrypt(echostr, self.app_id)
                except Exception:
                    return json_error(400, "echostr does not decrypt")
            return response.text(echostr)

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if self.token and len(request.body or b"") > settings.MAX_BODY_BYTES:
                return json_error(413, f"body over {settings.MAX_BODY_BYTES} bytes")
            encrypted = None
            if self._safe_mode(request) and self.crypto is not None:
                try:
                    encrypted = _safe_xml(request.body).findtext("Encrypt") or ""
                except (ParseError, DefusedXmlException, ValueError):
                    return json_error(400, "body is not acceptable XML")
            refused = self._refusal(request, encrypted)
            if refused is not None:
                return refused
            try:
                inner = request.body
                if encrypted is not None:
                    inner = PrpCrypto(self._crypto().key).decrypt(encrypted, self.app_id)
                is_event = (_safe_xml(inner).findtext("MsgType") or "").lower() == "event"
                message = parse_message(inner)
                openid = message.source
            except Exception:  # XML refused or malformed, wrong key or app id, no MsgType
                return json_error(400, "body is not an acceptable WeChat message")
            if not openid:
                return json_error(400, "message has no FromUserName")
            said = _turn_input(message, is_event)
            if said is None:
                return response.text(SUCCESS)
            key = f"msg:{message.id}" if not is_event and message.id else f"event:{openid}:{message.time}"
            agent = getattr(request.app.ctx, "agent", None)
            reply = await self._passive_reply(key, openid, said, on_new_message, agent)
            return self._render_reply(request, message, reply, encrypted is not None)

        return webhook

    # -- checks --------------------------------------------------------------

    def _safe_mode(self, request: Request) -> bool:
        return request.args.get("encrypt_type") == "aes"

    def _refusal(self, request: Request, signed_data: str | None) -> HTTPResponse | None:
        """503, 403 or None. Safe mode signs token, timestamp, nonce and the
        encrypted data (msg_signature); plain mode the first three (signature)."""
        if not self.token:
            return json_error(503, f"WeChat channel not configured: {settings.WECHAT_TOKEN} is not set")
        timestamp, nonce = request.args.get("timestamp", ""), request.args.get("nonce", "")
        if self._safe_mode(request):
            if self.crypto is None:
                return json_error(503, f"safe mode needs {settings.WECHAT_ENCODING_AES_KEY} "
                                       f"and {settings.WECHAT_APP_ID}")
            expected = _get_signature(self.token, timestamp, nonce, signed_data or "")
            given = request.args.get("msg_signature")
        else:
            signer = WeChatSigner()
            signer.add_data(self.token, timestamp, nonce)
            expected, given = signer.signature, request.args.get("signature")
        if not _same(given, expected):
            return json_error(403, "bad signature")
        try:
            skew = abs(self.clock() - int(timestamp))
        except ValueError:
            return json_error(403, "bad timestamp")
        if skew > MAX_CLOCK_SKEW:
            return json_error(403, "timestamp too old or in the future")
        return None

    # -- turns ---------------------------------------------------------------

    async def _passive_reply(self, key: str, openid: str, said: TurnInput,
                             on_new_message: Callable[[UserMessage], Awaitable[Any]], agent: Any) -> str:
        """The passive reply for a message; a retry gets the first one's."""
        if not await self.replies.claim(key):
            # _run settles the first copy's reply within reply_timeout.
            return await self.replies.wait(key, self.reply_timeout + 1.0) or SUCCESS
        passive = asyncio.get_running_loop().create_future()
        # Its own task: a request WeChat gave up on must not cancel the turn.
        self._keep(self._run(key, passive, openid, said, on_new_message, agent))
        return await asyncio.shield(passive)

    async def _run(self, key: str, passive: asyncio.Future, openid: str, said: TurnInput,
                   on_new_message: Callable[[UserMessage], Awaitable[Any]], agent: Any) -> None:
        """Resolve `passive` (and the claim retries wait on) within reply_timeout;
        send what it could not hold."""
        turn = asyncio.ensure_future(self._turn(openid, said, on_new_message, agent))
        try:
            done, _ = await asyncio.wait({turn}, timeout=self.reply_timeout)
            if done:
                parts = turn.result()
                await self._settle(key, passive, parts[0] if parts else SUCCESS)
                parts = parts[1:]
            else:
                await self._settle(key, passive, SUCCESS)
                parts = await turn
            for part in parts:
                await self._send(openid, part)
        except Exception:
            logger.exception("WeChat turn or customer-service reply for %s failed", openid)
        finally:
            if not passive.done():
                passive.set_result(SUCCESS)

    async def _settle(self, key: str, passive: asyncio.Future, reply: str) -> None:
        passive.set_result(reply)
        try:
            await self.replies.resolve(key, reply)
        except Exception:  # Redis away: retries on other replicas answer "success"
            logger.warning("WeChat reply of %s not shared with other replicas", key, exc_info=True)

    async def _turn(self, openid: str, said: TurnInput,
                    on_new_message: Callable[[UserMessage], Awaitable[Any]], agent: Any) -> list[str]:
        if not self.rate_limit.allow(openid):
            return [self.rate_limited_text]
        typed = spoken_number(said.text) if said.voice else said.text
        text = chosen_payload(typed, self.options.get(openid) or []) or said.text
        collector = CollectingOutputChannel()
        # The OpenID is the client too: a new one costs a new WeChat account.
        message = UserMessage(text, collector, conversation_id(self.name(), openid), input_channel=self.name(),
                              metadata={"wechat_openid": openid, "client": f"wechat-{openid}",
                                        **({"wechat_voice": True} if said.voice else {})})
        try:
            await on_new_message(message)
        except STORE_ERRORS as error:
            # WeChat has no retry the member would see: say so, politely.
            logger.warning("WeChat turn of %s not taken: %r", openid, error)
            return [self.busy_text]
        if not collector.messages:  # a custom action failed (tuanjian.rasa_server.channels.turns)
            logger.warning("WeChat turn of %s ended without a reply", openid)
            if agent is not None and self.unavailable_text:
                self._keep(self._keep_reply(agent, message, self.unavailable_text))
            return [self.unavailable_text]
        reply, payloads = render(collector.messages, self.hint)
        if payloads:
            self.options.set(openid, payloads)
        else:
            self.options.pop(openid)
        return split_text(reply)

    async def _keep_reply(self, agent: Any, message: UserMessage, text: str) -> None:
        """Store a silent turn's reply, once the conversation's lock is free
        again; the member does not wait for it."""
        try:
            async with agent.lock_store.lock(message.sender_id):
                await keep_reply(agent.tracker_store, message, text)
        except STORE_ERRORS as error:
            logger.warning("reply to the silent turn of %s not stored: %r", message.sender_id, error)

    def _keep(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, openid: str, text: str) -> None:
        if self._client is None:
            self._client = customer_service_client(self.app_id, self.app_secret, self.api_base_url)
            if self._client is None:
                logger.warning("reply to %s dropped: %s/%s not set", openid,
                               settings.WECHAT_APP_ID, settings.WECHAT_APP_SECRET)
                return
        await asyncio.get_running_loop().run_in_executor(None, self._client.message.send_text, openid, text)

    def _crypto(self) -> WeChatCrypto:
        if self.crypto is None:  # the safe-mode check refuses such a request first
            raise RuntimeError("safe mode without an encoding key")
        return self.crypto

    def _render_reply(self, request: Request, message: BaseMessage, content: str,
                      encrypt: bool) -> HTTPResponse:
        if content == SUCCESS:
            return response.text(SUCCESS)
        now = str(int(self.clock()))
        xml = TextReply(message=message, content=content, time=int(now)).render()
        if encrypt:
            xml = self._crypto().encrypt_message(xml, request.args.get("nonce", ""), now)
        return response.text(xml, content_type="application/xml; charset=utf-8")


def _turn_input(message: BaseMessage, is_event: bool) -> TurnInput | None:
    """What the message says to Rasa; None when it starts no turn. A voice
    message says what WeChat recognised in it (the Official Account's speech
    recognition adds `Recognition`); without a recognition, or an empty one,
    it is a message the assistant cannot read."""
    if is_event:
        # wechatpy types an unknown event "unknown", so the raw MsgType decides
        subscribed = getattr(message, "event", None) in ("subscribe", "subscribe_scan")
        return TurnInput(SUBSCRIBE_PAYLOAD) if subscribed else None
    if message.type == "text":
        return TurnInput(message.content or "")
    recognition = (getattr(message, "recognition", None) or "").strip() if message.type == "voice" else ""
    return TurnInput(recognition, voice=True) if recognition else TurnInput(NON_TEXT_PAYLOAD)
