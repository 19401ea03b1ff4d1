"""The WeChat channel behind a real Sanic server, with requests built by wechatpy
and the customer-service API faked at the HTTP boundary (a local aiohttp server)."""
import asyncio
import re
import time
import uuid
from types import SimpleNamespace

import pytest
import xmltodict
from rasa.core.lock_store import InMemoryLockStore, LockError
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered, UserUttered
from redis.exceptions import ConnectionError as RedisConnectionError
from sanic import Sanic
from wechatpy import parse_message
from wechatpy.crypto import PrpCrypto, WeChatCrypto, _get_signature
from wechatpy.utils import WeChatSigner

from tuanjian.conversation_ids import conversation_id
from tuanjian.rasa_server.channels.wechat import RedisTTLStore, TTLStore, WeChatInput
from tuanjian.rasa_server.channels.wechat_render import (
    MAX_TEXT_BYTES,
    chosen_payload,
    render,
    split_text,
    spoken_number,
    utf8_len,
)
from tuanjian.rasa_server.channels.wechat_replies import RedisReplies
from tuanjian.settings import MAX_BODY_BYTES

TOKEN = "test-token"
APP_ID = "wx0123456789abcdef"
SECRET = "test-secret"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
OPENID = "oUser0123456789abcdefghijkl"
ACCOUNT = "gh_0123456789ab"
HINT = "回复数字即可选择。"
BUSY = "请稍后再发一次。"
UNAVAILABLE = "这项服务暂时无法使用。"
BUTTONS = [{"title": "转出流程", "payload": "/faq_transfer_out"},
           {"title": "查询我的申请进度", "payload": "/check_transfer_status"}]

_msg_ids = iter(range(10**15, 10**16))


# -- building WeChat requests ----------------------------------------------

def now() -> str:
    return str(int(time.time()))


def signed_query(timestamp=None, nonce="n0nce", token=TOKEN, **extra):
    timestamp = now() if timestamp is None else str(timestamp)
    signer = WeChatSigner()
    signer.add_data(token, timestamp, nonce)
    return {"signature": signer.signature, "timestamp": timestamp, "nonce": nonce,
            "openid": OPENID, **extra}


def xml(msg_type, openid=OPENID, create_time=None, **fields):
    nodes = "".join(f"<{k}><![CDATA[{v}]]></{k}>" if isinstance(v, str) else f"<{k}>{v}</{k}>"
                    for k, v in fields.items())
    return (f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
            f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{create_time or now()}</CreateTime>"
            f"<MsgType><![CDATA[{msg_type}]]></MsgType>{nodes}</xml>")


def text_xml(content, msg_id=None, openid=OPENID):
    return xml("text", openid, Content=content, MsgId=msg_id or next(_msg_ids))


def encrypted(inner, nonce="n0nce", timestamp=None):
    """(query, body) as WeChat sends a message in safe mode."""
    timestamp = timestamp or now()
    envelope = xmltodict.parse(WeChatCrypto(TOKEN, AES_KEY, APP_ID).encrypt_message(inner, nonce, timestamp))["xml"]
    body = (f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
            f"<Encrypt><![CDATA[{envelope['Encrypt']}]]></Encrypt></xml>")
    query = signed_query(timestamp, nonce, encrypt_type="aes", msg_signature=envelope["MsgSignature"])
    return query, body


def reply_content(body: str) -> str:
    return parse_message(body).content


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE xml [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&lol3;</Content><MsgId>1</MsgId></xml>"""


# -- fakes -----------------------------------------------------------------

class FakeRasa:
    """on_new_message: records the messages; answers `respond(text)` after `delay`."""

    def __init__(self):
        self.calls = []
        self.delay = 0.0
        self.respond = lambda text: [{"text": f"收到：{text}"}]

    async def __call__(self, message):
        self.calls.append(message)
        await asyncio.sleep(self.delay)
        for reply in self.respond(message.text):
            if reply.get("buttons"):
                await message.output_channel.send_text_with_buttons(
                    message.sender_id, reply["text"], reply["buttons"])
            else:
                await message.output_channel.send_text_message(message.sender_id, reply["text"])

    @property
    def texts(self):
        return [m.text for m in self.calls]


@pytest.fixture
def domain_path(tmp_path):
    path = tmp_path / "domain.yml"
    path.write_text(f'version: "3.1"\nresponses:\n  utter_wechat_reply_with_number:\n  - text: "{HINT}"\n'
                    f'  utter_service_busy:\n  - text: "{BUSY}"\n'
                    f'  utter_service_unavailable:\n  - text: "{UNAVAILABLE}"\n', encoding="utf-8")
    return path


@pytest.fixture
def rasa():
    return FakeRasa()


@pytest.fixture
def make_channel(domain_path, wechat_api):
    def make(**overrides):
        settings = dict(token=TOKEN, app_id=APP_ID, app_secret=SECRET, encoding_aes_key=AES_KEY,
                        domain=domain_path, reply_timeout=1.0, api_base_url=wechat_api.base_url)
        return WeChatInput(**{**settings, **overrides})
    return make


@pytest.fixture
def serve(rasa, run_app):
    """serve(channel) → a client on a real Sanic server with the channel's
    blueprint (Rasa's handler the fake one unless given; app.ctx.agent if given)."""
    async def start(channel, handler=None, agent=None):
        app = Sanic(f"wechat_test_{uuid.uuid4().hex[:8]}")
        app.blueprint(channel.blueprint(handler or rasa), url_prefix="/webhooks/wechat")
        if agent is not None:
            app.ctx.agent = agent
        return Client(await run_app(app))
    return start


class Client:
    URL = "/webhooks/wechat/webhook"

    def __init__(self, session):
        self.session = session

    async def get(self, query):
        async with self.session.get(self.URL, params=query) as resp:
            return resp.status, await resp.text()

    async def post(self, body, query=None):
        data = body.encode("utf-8") if isinstance(body, str) else body
        async with self.session.post(self.URL, params=query or signed_query(), data=data,
                                     headers={"Content-Type": "text/xml"}) as resp:
            return resp.status, await resp.text()


@pytest.fixture
async def client(serve, make_channel):
    return await serve(make_channel())


# -- URL verification --------------------------------------------------------

async def test_url_verification_plain(client):
    assert await client.get(signed_query(echostr="1234567890")) == (200, "1234567890")


async def test_url_verification_safe_mode(client):
    timestamp, nonce = now(), "abc"
    echostr = PrpCrypto(WeChatCrypto(TOKEN, AES_KEY, APP_ID).key).encrypt("echo-8472", APP_ID).decode()
    query = {"timestamp": timestamp, "nonce": nonce, "echostr": echostr, "encrypt_type": "aes",
             "msg_signature": _get_signature(TOKEN, timestamp, nonce, echostr)}
    assert await client.get(query) == (200, "echo-8472")
    query["msg_signature"] = _get_signature(TOKEN, timestamp, nonce, "other")
    assert (await client.get(query))[0] == 403


# -- refusals -----------------------------------------------------------------

async def test_wrong_signature_is_refused(client, rasa):
    assert (await client.get(signed_query(token="wrong", echostr="1")))[0] == 403
    assert (await client.post(text_xml("你好"), signed_query(token="wrong")))[0] == 403
    query = signed_query()
    query["signature"] = query["signature"][:-1] + ("0" if query["signature"][-1] != "0" else "1")
    assert (await client.post(text_xml("你好"), query))[0] == 403
    query.pop("signature")
    assert (await client.post(text_xml("你好"), query))[0] == 403
    query, body = encrypted(text_xml("你好"))
    query["msg_signature"] = "0" * 40
    assert (await client.post(body, query))[0] == 403
    assert rasa.calls == []


@pytest.mark.parametrize("offset", [-301, 301])
async def test_stale_or_future_timestamp_is_refused(client, rasa, offset):
    timestamp = int(time.time()) + offset
    status, body = await client.post(text_xml("你好"), signed_query(timestamp=timestamp))
    assert status == 403 and "timestamp" in body
    query, body = encrypted(text_xml("你好"), timestamp=str(timestamp))
    assert (await client.post(body, query))[0] == 403
    assert rasa.calls == []


async def test_entity_expansion_is_refused(client, rasa):
    assert (await client.post(BILLION_LAUGHS))[0] == 400
    query, body = encrypted(BILLION_LAUGHS)
    assert (await client.post(body, query))[0] == 400
    assert (await client.post("<xml><Content>unclosed"))[0] == 400
    assert rasa.calls == []


async def test_oversized_body_is_refused(client, rasa):
    big = text_xml("转" * (MAX_BODY_BYTES // 3 + 10))
    assert (await client.post(big))[0] == 413
    assert rasa.calls == []


async def test_not_configured_answers_503(serve, domain_path, rasa, monkeypatch):
    for name in ("WECHAT_TOKEN", "WECHAT_APP_ID", "WECHAT_APP_SECRET", "WECHAT_ENCODING_AES_KEY"):
        monkeypatch.delenv(name, raising=False)
    channel = WeChatInput.from_credentials({"domain": str(domain_path)})
    assert channel.token is None
    client = await serve(channel)
    status, body = await client.get(signed_query(echostr="1"))
    assert status == 503 and "WECHAT_TOKEN" in body
    assert (await client.post(text_xml("你好")))[0] == 503
    assert rasa.calls == []


def test_credentials_then_environment(domain_path, monkeypatch):
    monkeypatch.setenv("WECHAT_TOKEN", "env-token")
    monkeypatch.setenv("WECHAT_APP_ID", APP_ID)
    monkeypatch.setenv("WECHAT_APP_SECRET", "env-secret")
    monkeypatch.setenv("WECHAT_ENCODING_AES_KEY", AES_KEY)
    channel = WeChatInput.from_credentials({"token": "yml-token", "domain": str(domain_path),
                                            "reply_timeout": 2})
    assert (channel.token, channel.app_id, channel.app_secret) == ("yml-token", APP_ID, "env-secret")
    assert channel.crypto is not None and channel.reply_timeout == 2.0
    assert channel.hint == HINT
    assert WeChatInput.name() == "wechat" and channel.url_prefix() == "wechat"


# -- turns ----------------------------------------------------------------------

@pytest.mark.parametrize("error", [LockError("turn 3 has not finished"), RedisConnectionError("refused")])
async def test_a_turn_the_stores_cannot_take_gets_a_polite_reply(client, rasa, error):
    # Redis away, or the turn ahead stuck: Rasa's handler raises before any reply.
    def fail(text):
        raise error

    rasa.respond = fail
    status, body = await client.post(text_xml("怎么转出"))
    assert status == 200 and reply_content(body) == BUSY


async def test_a_turn_without_a_word_says_the_service_is_away(client, rasa):
    # The action server away: Rasa logs the failed action and the turn says nothing.
    rasa.respond = lambda text: []
    status, body = await client.post(text_xml("查一下我的转接进度"))
    assert status == 200 and reply_content(body) == UNAVAILABLE


async def test_the_reply_to_a_silent_turn_is_stored_in_the_conversation(make_channel, serve):
    # What Rasa stored of the turn: the member's message, and no reply.
    agent = SimpleNamespace(lock_store=InMemoryLockStore(), tracker_store=InMemoryTrackerStore(Domain.empty()))

    async def silent_turn(message):  # stores the member's message, says nothing
        async with agent.lock_store.lock(message.sender_id):
            tracker = await agent.tracker_store.get_or_create_tracker(message.sender_id)
            tracker.update(UserUttered(message.text, message_id=message.message_id))
            await agent.tracker_store.save(tracker)

    sender_id = conversation_id("wechat", OPENID)
    client = await serve(make_channel(), silent_turn, agent)
    status, body = await client.post(text_xml("查一下我的转接进度"))
    assert status == 200 and reply_content(body) == UNAVAILABLE

    async def said():
        stored = await agent.tracker_store.retrieve(sender_id)
        return [(type(e).__name__, e.text) for e in stored.events if isinstance(e, (UserUttered, BotUttered))]

    for _ in range(50):  # stored once the lock is free, after the passive reply
        if len(await said()) == 2:
            break
        await asyncio.sleep(0.02)
    assert await said() == [("UserUttered", "查一下我的转接进度"), ("BotUttered", UNAVAILABLE)]


async def test_a_silent_turns_reply_is_stored_under_the_conversations_lock(make_channel, serve):
    agent = SimpleNamespace(lock_store=InMemoryLockStore(), tracker_store=InMemoryTrackerStore(Domain.empty()))
    sender_id = conversation_id("wechat", OPENID)

    async def silent_turn(message):  # what Rasa stored of the turn (the test holds the lock meanwhile)
        tracker = await agent.tracker_store.get_or_create_tracker(message.sender_id)
        tracker.update(UserUttered(message.text, message_id=message.message_id))
        await agent.tracker_store.save(tracker)

    async def said():
        stored = await agent.tracker_store.retrieve(sender_id)
        return [type(e).__name__ for e in stored.events if isinstance(e, (UserUttered, BotUttered))]

    client = await serve(make_channel(), silent_turn, agent)
    async with agent.lock_store.lock(sender_id):  # another turn of the conversation is running
        status, body = await client.post(text_xml("查一下我的转接进度"))
        assert status == 200 and reply_content(body) == UNAVAILABLE  # the member does not wait
        await asyncio.sleep(0.3)
        assert await said() == ["UserUttered"]  # nothing written during the other turn
    for _ in range(150):  # Rasa's in-memory lock store looks again every second
        if len(await said()) == 2:
            break
        await asyncio.sleep(0.02)
    assert await said() == ["UserUttered", "BotUttered"]


async def test_text_message_gets_a_passive_reply(client, rasa):
    status, body = await client.post(text_xml("怎么转出"))
    assert status == 200
    reply = parse_message(body)
    assert reply.content == "收到：怎么转出"
    assert (reply.source, reply.target) == (ACCOUNT, OPENID)
    [message] = rasa.calls
    assert (message.text, message.sender_id, message.input_channel) == ("怎么转出", "wechat:" + OPENID, "wechat")
    assert message.metadata == {"wechat_openid": OPENID, "client": "wechat-" + OPENID}


async def test_safe_mode_message_and_encrypted_reply(client, rasa):
    nonce = "n4"
    query, body = encrypted(text_xml("怎么转出"), nonce=nonce)
    status, reply = await client.post(body, query)
    assert status == 200
    envelope = xmltodict.parse(reply)["xml"]
    inner = WeChatCrypto(TOKEN, AES_KEY, APP_ID).decrypt_message(
        reply, envelope["MsgSignature"], envelope["TimeStamp"], envelope["Nonce"])
    assert reply_content(inner) == "收到：怎么转出"
    assert rasa.texts == ["怎么转出"]


async def test_three_retries_make_one_turn(client, rasa, wechat_api):
    rasa.delay = 0.3
    body = text_xml("怎么转出", msg_id=6054768590064713728)
    replies = await asyncio.gather(*(client.post(body) for _ in range(3)))
    later = await client.post(body)
    assert [status for status, _ in replies + [later]] == [200] * 4
    assert {reply_content(text) for _, text in replies + [later]} == {"收到：怎么转出"}
    assert rasa.texts == ["怎么转出"]
    assert wechat_api.sent == []


async def test_event_retries_are_keyed_by_sender_and_time(client, rasa):
    body = xml("event", create_time=1700000000, Event="subscribe", EventKey="")
    for _ in range(3):
        await client.post(body)
    await client.post(xml("event", create_time=1700000001, Event="subscribe", EventKey=""))
    assert rasa.texts == ["/greet", "/greet"]


async def test_slow_turn_answers_success_and_sends_by_customer_service(serve, make_channel, rasa, wechat_api):
    client = await serve(make_channel(reply_timeout=0.2))
    rasa.delay = 0.6
    body = text_xml("慢一点")
    assert await client.post(body) == (200, "success")
    assert await client.post(body) == (200, "success")  # a retry while it runs
    sent = await wechat_api.wait_for(1)
    assert sent == [{"touser": OPENID, "msgtype": "text", "text": {"content": "收到：慢一点"}}]
    assert wechat_api.token_requests[0]["appid"] == APP_ID
    assert wechat_api.token_requests[0]["secret"] == SECRET
    assert await client.post(body) == (200, "success")  # a retry after it was sent
    await asyncio.sleep(0.1)
    assert len(wechat_api.sent) == 1 and rasa.texts == ["慢一点"]


async def test_buttons_become_numbered_options_and_numbers_their_payloads(client, rasa):
    rasa.respond = lambda text: [{"text": "您想了解哪一项？", "buttons": BUTTONS}]
    status, body = await client.post(text_xml("你好"))
    assert reply_content(body) == f"您想了解哪一项？\n1. 转出流程\n2. 查询我的申请进度\n{HINT}"
    await client.post(text_xml("2"))
    await client.post(text_xml("２"))
    await client.post(text_xml("3"))
    assert rasa.texts == ["你好", "/check_transfer_status", "/check_transfer_status", "3"]


async def test_options_are_per_openid_and_forgotten_after_a_reply_without_them(client, rasa):
    rasa.respond = lambda text: [{"text": "选一项", "buttons": BUTTONS}] if text == "菜单" else [{"text": "好"}]
    await client.post(text_xml("菜单"))
    await client.post(text_xml("1", openid="oSomeoneElse"))
    await client.post(text_xml("1"))
    await client.post(text_xml("1"))
    assert rasa.texts == ["菜单", "1", "/faq_transfer_out", "1"]


async def test_long_reply_is_split_and_the_rest_sent_by_customer_service(client, rasa, wechat_api):
    paragraphs = [f"第{i}段：" + "团组织关系转接说明。" * 20 for i in range(12)]
    rasa.respond = lambda text: [{"text": "\n\n".join(paragraphs)}]
    status, body = await client.post(text_xml("详细说明"))
    first = reply_content(body)
    assert utf8_len(first) <= MAX_TEXT_BYTES and first.startswith("第0段")
    expected = split_text("\n\n".join(paragraphs))
    assert len(expected) > 2
    sent = await wechat_api.wait_for(len(expected) - 1)
    rest = [m["text"]["content"] for m in sent]
    assert [first] + rest == expected
    assert all(utf8_len(part) <= MAX_TEXT_BYTES for part in rest)
    assert "\n\n".join([first] + rest) == "\n\n".join(paragraphs)


async def test_subscribe_greets(client, rasa):
    status, body = await client.post(xml("event", Event="subscribe", EventKey=""))
    assert reply_content(body) == "收到：/greet"
    assert rasa.texts == ["/greet"]


@pytest.mark.parametrize("msg_type, fields", [
    ("image", {"PicUrl": "http://example.com/a.jpg", "MediaId": "m1"}),
    ("voice", {"MediaId": "m1", "Format": "amr"}),
    ("location", {"Location_X": 23.1, "Location_Y": 113.3, "Scale": 20, "Label": "x"}),
    ("link", {"Title": "t", "Description": "d", "Url": "http://example.com"}),
    ("miniprogrampage", {"Title": "t"}),
])
async def test_non_text_messages(client, rasa, msg_type, fields):
    status, body = await client.post(xml(msg_type, MsgId=next(_msg_ids), **fields))
    assert status == 200 and reply_content(body) == "收到：/non_text_message"
    assert rasa.texts == ["/non_text_message"]


@pytest.mark.parametrize("event", ["unsubscribe", "CLICK", "VIEW", "some_new_event"])
async def test_other_events_start_no_turn(client, rasa, event):
    assert await client.post(xml("event", Event=event, EventKey="k")) == (200, "success")
    assert rasa.calls == []


# -- rendering and the store -------------------------------------------------------

def test_render_joins_messages_and_numbers_buttons_across_them():
    text, payloads = render([{"text": "甲"}, {"text": "乙", "buttons": BUTTONS[:1]},
                             {"text": "丙", "buttons": BUTTONS[1:]}, {"text": "丁"}], "提示")
    assert text == "甲\n\n乙\n1. 转出流程\n\n丙\n2. 查询我的申请进度\n提示\n\n丁"
    assert payloads == ["/faq_transfer_out", "/check_transfer_status"]
    assert render([{"text": "甲"}], "提示") == ("甲", [])


@pytest.mark.parametrize("text, payload", [
    ("1", "a"), ("２", "b"), (" 2 ", "b"), ("0", None), ("3", None), ("1.", None), ("一", None), ("12a", None),
])
def test_chosen_payload(text, payload):
    assert chosen_payload(text, ["a", "b"]) == payload


@pytest.mark.parametrize("text", [
    "短",
    "\n".join("第一行说明文字" * 10 for _ in range(40)),
    "转" * 3000,
    "\n\n".join(["a" * 2048, "b" * 10, "c" * 5000]),
])
def test_split_text_keeps_every_part_under_the_limit(text):
    parts = split_text(text)
    assert all(0 < utf8_len(p) <= MAX_TEXT_BYTES for p in parts)
    assert re.sub(r"\s", "", "".join(parts)) == re.sub(r"\s", "", text)


def test_ttl_store_expires():
    clock = [0.0]
    store = TTLStore(10, clock=lambda: clock[0])
    store.set("a", 1)
    clock[0] = 9.9
    assert store.get("a") == 1
    clock[0] = 10.0
    assert store.get("a") is None
    store.set("b", 2)
    assert store.get("b") == 2 and "a" not in store._items


# -- replicas (production profile: claims in Redis) --------------------------------

REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture
def shared_replies():
    """Two replicas' claim stores on one Redis, under a prefix of this test's own."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as error:
        pytest.fail(f"Redis at {REDIS_URL} is not reachable ({error}); .ci/run starts it")
    prefix = f"test:{uuid.uuid4().hex}:"
    return [RedisReplies(REDIS_URL, prefix=prefix), RedisReplies(REDIS_URL, prefix=prefix)]


async def test_retries_spread_over_two_replicas_make_one_turn(serve, make_channel, rasa, wechat_api,
                                                              shared_replies):
    first = await serve(make_channel(replies=shared_replies[0]))
    second = await serve(make_channel(replies=shared_replies[1]))
    rasa.delay = 0.3
    body = text_xml("怎么转出", msg_id=6054768590064713999)
    replies = await asyncio.gather(first.post(body), second.post(body), second.post(body))
    later = await first.post(body)
    assert {reply_content(text) for _, text in [*replies, later]} == {"收到：怎么转出"}
    assert rasa.texts == ["怎么转出"]
    assert wechat_api.sent == []


async def test_without_redis_a_message_is_still_answered():
    # Redis away: the replica that got the message answers it (a retry sent to
    # another replica might then run again); nothing raises.
    replies = RedisReplies("redis://127.0.0.1:1/0")
    assert await replies.claim("msg:1") is True
    assert await replies.wait("msg:1", 0.1) is None
    options = RedisTTLStore("redis://127.0.0.1:1/0", 60, "test:")
    options.set("openid", ["/greet"])
    assert options.get("openid") is None
    options.pop("openid")


def voice_xml(recognition=None):
    """A voice message as WeChat sends it, with the Official Account's speech
    recognition on (Recognition) or off; wechatpy parses it as a VoiceMessage."""
    fields = {"MediaId": "media-1", "Format": "amr", "MsgId": next(_msg_ids)}
    if recognition is not None:
        fields["Recognition"] = recognition
    body = xml("voice", **fields)
    parsed = parse_message(body)
    assert parsed.type == "voice" and (parsed.recognition or "").strip() == (recognition or "").strip()
    return body


async def test_a_voice_message_is_answered_from_its_recognition(client, rasa):
    status, body = await client.post(voice_xml("团关系转接一直没通过怎么办。"))
    assert status == 200 and reply_content(body) == "收到：团关系转接一直没通过怎么办。"
    [message] = rasa.calls
    assert message.text == "团关系转接一直没通过怎么办。"
    assert message.metadata == {"wechat_openid": OPENID, "client": "wechat-" + OPENID, "wechat_voice": True}


@pytest.mark.parametrize("recognition", [None, "", "   \n "])
async def test_a_voice_message_without_a_recognition_is_not_understood(client, rasa, recognition):
    status, body = await client.post(voice_xml(recognition))
    assert status == 200 and reply_content(body) == "收到：/non_text_message"
    assert rasa.texts == ["/non_text_message"]
    assert "wechat_voice" not in rasa.calls[0].metadata


async def test_a_spoken_option_number_picks_the_option(client, rasa):
    # Speech recognition writes a spoken "二" as "二。" (or "2。"): as if "2" were typed.
    rasa.respond = lambda text: [{"text": "您想了解哪一项？", "buttons": BUTTONS}]
    await client.post(text_xml("你好"))
    await client.post(voice_xml("二。"))
    await client.post(voice_xml("1。"))
    await client.post(voice_xml("第二个。"))
    assert rasa.texts == ["你好", "/check_transfer_status", "/faq_transfer_out", "第二个。"]


@pytest.mark.parametrize("transcript, typed", [
    ("一。", "1"), ("2。", "2"), ("１", "1"), (" 三！", "3"),
    ("十一", "十一"), ("团关系怎么转。", "团关系怎么转。"), ("", ""),
])
def test_spoken_number(transcript, typed):
    assert spoken_number(transcript) == typed
