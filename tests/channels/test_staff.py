"""The staff help-desk API and page behind a real Sanic server, on every test
database; the WeChat customer-service API faked at the HTTP boundary (a local
aiohttp server), as in test_wechat.py."""
import asyncio
import json
import re
import uuid
from types import SimpleNamespace
from typing import cast

import pytest
from rasa.core.channels.channel import register
from rasa.core.lock_store import InMemoryLockStore
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SlotSet
from sanic import Sanic
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from tuanjian.backend.models import Ticket, TicketMessage
from tuanjian.backend.tickets import MAX_REPLY_CHARS, TicketService
from tuanjian.backend.verification import VerificationService
from tuanjian.rasa_server.channels.staff import HANDOFF_SLOT, STATIC_DIR, StaffInput
from tuanjian.rasa_server.channels.web_session import WebSessions
from tuanjian.rasa_server.channels.wechat import WeChatInput

SESSIONS = WebSessions("web-session-secret-for-tests")
WEB_TOKEN = SESSIONS.issue()

TOKEN = "staff-secret-0123456789"
APP_ID = "wx0123456789abcdef"
SECRET = "test-secret"
OPENID = "oUser0123456789abcdefghijkl"
WEB_SESSION_ID = cast(str, SESSIONS.session_id(WEB_TOKEN))
WEB_SENDER = "web:" + WEB_SESSION_ID
WECHAT_SENDER = "wechat:" + OPENID
QUESTION = "我的转接卡在第三步怎么办"
TRANSCRIPT = [{"who": "member", "text": QUESTION, "at": "2024-06-15T08:29:00+00:00"},
              {"who": "bot", "text": "抱歉，我没有理解。", "at": "2024-06-15T08:29:01+00:00"}]
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def desk(sessions, clock):
    return TicketService(sessions, clock)


@pytest.fixture
def web_ticket(desk):
    return desk.open_ticket("web", WEB_SENDER, "2019001", QUESTION, TRANSCRIPT, "fallbacks")


@pytest.fixture
def wechat_ticket(desk):
    return desk.open_ticket("wechat", WECHAT_SENDER, None, QUESTION, TRANSCRIPT, "request_human")


@pytest.fixture
def resumed():
    return []


@pytest.fixture
def make_channel(desk, wechat_api, resumed, sessions, clock):
    def make(**overrides):
        settings = dict(token=TOKEN, service=desk, app_id=APP_ID, app_secret=SECRET,
                        api_base_url=wechat_api.base_url, resume=lambda *args: resumed.append(args),
                        sessions=SESSIONS, verifications=VerificationService(sessions, clock))
        return StaffInput(**{**settings, **overrides})
    return make


@pytest.fixture
def serve(run_app):
    """serve(channel, agent=None) → a client on a real Sanic server, the channel
    registered the way Rasa registers input channels (under /webhooks/staff)."""
    async def start(channel, agent=None):
        app = Sanic(f"staff_test_{uuid.uuid4().hex[:8]}")
        if agent is not None:
            app.ctx.agent = agent
        register([channel], app, route="/webhooks/")
        return Client(await run_app(app))
    return start


class Client:
    def __init__(self, session):
        self.session = session

    async def call(self, method, path, body=None, headers=AUTH):
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode("utf-8")
        async with self.session.request(method, "/webhooks/staff" + path, data=data, headers=headers) as reply:
            raw = await reply.read()
            try:
                payload = json.loads(raw)
            except ValueError:
                payload = raw.decode("utf-8")
            return reply.status, payload, reply.headers


@pytest.fixture
async def client(serve, make_channel):
    return await serve(make_channel())


def rows(sessions):
    with sessions() as s:
        return (s.execute(select(func.count()).select_from(Ticket)).scalar_one(),
                s.execute(select(func.count()).select_from(TicketMessage)).scalar_one(),
                s.execute(select(func.count()).select_from(Ticket).where(Ticket.status == "open")).scalar_one())


# -- auth -------------------------------------------------------------------------

ROUTES = [("GET", "/tickets"), ("GET", "/tickets/{id}"), ("POST", "/tickets/{id}/reply"),
          ("POST", "/tickets/{id}/close"), ("GET", "/tickets/987654"), ("POST", "/tickets/x/close")]
BAD_HEADERS = [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Bearer {TOKEN}x"},
               {"Authorization": f"Basic {TOKEN}"}, {"Authorization": TOKEN}, {"Authorization": "Bearer "}]


@pytest.mark.parametrize("method, path", ROUTES)
@pytest.mark.parametrize("headers", BAD_HEADERS)
async def test_missing_or_wrong_token_is_401_without_ticket_data(client, web_ticket, sessions, desk,
                                                                  method, path, headers, resumed):
    desk.add_member_message(web_ticket, "有人吗")
    before = rows(sessions)
    status, body, reply_headers = await client.call(method, path.format(id=web_ticket),
                                                    {"text": "你好"}, headers=headers)
    assert status == 401
    assert body == {"error": "unauthorized"}
    assert reply_headers["WWW-Authenticate"] == "Bearer"
    assert rows(sessions) == before and resumed == []


async def test_not_configured_answers_503_but_serves_the_page(serve, make_channel, web_ticket, monkeypatch):
    monkeypatch.delenv("STAFF_API_TOKEN", raising=False)
    client = await serve(make_channel(token=None, tokens=StaffInput.from_credentials({}).tokens))
    status, body, _ = await client.call("GET", "/tickets")
    assert status == 503 and "STAFF_API_TOKEN" in body["reason"] and QUESTION not in json.dumps(body)
    assert (await client.call("POST", f"/tickets/{web_ticket}/close"))[0] == 503
    assert (await client.call("GET", "/", headers={}))[0] == 200


def test_credentials_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("STAFF_API_TOKEN", "env-token")
    monkeypatch.setenv("WECHAT_APP_ID", APP_ID)
    monkeypatch.setenv("WECHAT_APP_SECRET", SECRET)
    monkeypatch.setenv("TUANJIAN_WECHAT_API_BASE_URL", "http://127.0.0.1:9/cgi-bin/")
    channel = StaffInput.from_credentials({"domain": Domain.empty()})
    assert (channel.tokens, channel.app_id, channel.app_secret) == ({"staff": "env-token"}, APP_ID, SECRET)
    assert channel.api_base_url == "http://127.0.0.1:9/cgi-bin/"
    assert StaffInput.name() == "staff" and channel.url_prefix() == "staff"
    assert channel.reply_prefix is None



@pytest.mark.parametrize("key", ["api_base_url", "wechat_api_base_url"])
def test_a_credentials_file_naming_wechats_address_stops_the_server(key):
    # The address moved to TUANJIAN_WECHAT_API_BASE_URL; silently ignoring the
    # old key would send replies to api.weixin.qq.com instead.
    with pytest.raises(ValueError, match="TUANJIAN_WECHAT_API_BASE_URL"):
        StaffInput.from_credentials({key: "http://127.0.0.1:9/cgi-bin/", "domain": Domain.empty()})
    with pytest.raises(ValueError, match="TUANJIAN_WECHAT_API_BASE_URL"):
        WeChatInput.from_credentials({key: "http://127.0.0.1:9/cgi-bin/", "domain": Domain.empty()})

# -- reading ------------------------------------------------------------------------

async def test_list_and_read_tickets(client, desk, web_ticket, wechat_ticket):
    desk.add_member_message(web_ticket, "还在吗")
    status, body, headers = await client.call("GET", "/tickets")
    assert status == 200 and headers["Cache-Control"] == "no-store"
    assert [(t["id"], t["channel"], t["messages"]) for t in body["tickets"]] == [
        (web_ticket, "web", 1), (wechat_ticket, "wechat", 0)]
    status, ticket, _ = await client.call("GET", f"/tickets/{web_ticket}")
    assert status == 200
    assert (ticket["question"], ticket["member_no"], ticket["reason"]) == (QUESTION, "2019001", "fallbacks")
    assert ticket["transcript"] == TRANSCRIPT
    assert [(m["author"], m["text"]) for m in ticket["messages"]] == [("member", "还在吗")]


@pytest.mark.parametrize("ticket_id", ["987654", "abc", "0", "-1", "1e3", "99999999999"])
async def test_unknown_ticket_is_404(client, web_ticket, sessions, ticket_id):
    for method, path, body in (("GET", "", None), ("POST", "/reply", {"text": "你好"}), ("POST", "/close", None)):
        status, reply, _ = await client.call(method, f"/tickets/{ticket_id}{path}", body)
        assert status == 404 and reply["error"] == "unknown_ticket" and reply["reason"]
    assert rows(sessions) == (1, 0, 1)


# -- replies and their delivery --------------------------------------------------------

async def test_web_reply_is_delivered_once_through_the_inbox(client, desk, web_ticket, sessions):
    status, body, _ = await client.call("POST", f"/tickets/{web_ticket}/reply", {"text": "  您好，已为您催办。 "})
    assert status == 201 and body["delivery"] == "inbox" and body["delivered"] is False
    assert desk.get(web_ticket)["messages"][0]["text"] == "您好，已为您催办。"
    # The member side needs no staff token, and sees only its own session's replies.
    status, body, _ = await client.call("GET", "/inbox", headers={"X-Chat-Session": SESSIONS.issue()})
    assert (status, body) == (200, {"replies": []})
    status, body, _ = await client.call("GET", "/inbox", headers={"X-Chat-Session": WEB_TOKEN})
    assert (status, body) == (200, {"replies": ["您好，已为您催办。"]})
    assert (await client.call("GET", "/inbox", headers={"X-Chat-Session": WEB_TOKEN}))[1] == {"replies": []}
    assert [m["delivered"] for m in desk.get(web_ticket)["messages"]] == [True]


async def test_inbox_of_a_closed_session_or_an_unchecked_one_is_refused(make_channel, serve, desk, web_ticket,
                                                                         sessions, clock):
    client = await serve(make_channel())
    await client.call("POST", f"/tickets/{web_ticket}/reply", {"text": "您好"})
    VerificationService(sessions, clock).close("web", WEB_SESSION_ID)  # "重新开始"
    status, body, _ = await client.call("GET", "/inbox", headers={"X-Chat-Session": WEB_TOKEN})
    assert status == 401 and "replies" not in body

    class Down:
        def is_closed(self, channel, external_id):
            raise OperationalError("SELECT", {}, Exception("connection refused"))

    down = await serve(make_channel(verifications=Down()))
    status, body, _ = await down.call("GET", "/inbox", headers={"X-Chat-Session": SESSIONS.issue()})
    assert status == 401 and "replies" not in body  # the inbox does not go on unchecked
    assert [m["delivered"] for m in desk.get(web_ticket)["messages"]] == [False]


@pytest.mark.parametrize("headers", [
    {}, {"X-Chat-Session": ""}, {"X-Chat-Session": WEB_SENDER},  # a bare conversation id is not enough
    {"X-Chat-Session": WEB_TOKEN[:-1] + ("0" if WEB_TOKEN[-1] != "0" else "1")},  # forged signature
    {"X-Chat-Session": WebSessions("another-secret").issue()},
])
async def test_inbox_needs_the_signed_session(client, desk, web_ticket, headers):
    await client.call("POST", f"/tickets/{web_ticket}/reply", {"text": "您好"})
    status, body, _ = await client.call("GET", "/inbox", headers=headers)
    assert status == 401 and body["error"] == "bad_session" and "replies" not in body
    assert [m["delivered"] for m in desk.get(web_ticket)["messages"]] == [False]


async def test_wechat_reply_goes_through_the_customer_service_api(client, desk, wechat_ticket, wechat_api):
    status, body, _ = await client.call("POST", f"/tickets/{wechat_ticket}/reply", {"text": "您好，我是人工客服。"})
    assert status == 201 and body["delivery"] == "wechat" and body["delivered"] is True
    assert wechat_api.sent == [{"touser": OPENID, "msgtype": "text", "text": {"content": "您好，我是人工客服。"}}]
    assert wechat_api.token_requests[0]["appid"] == APP_ID and wechat_api.token_requests[0]["secret"] == SECRET
    assert [m["delivered"] for m in desk.get(wechat_ticket)["messages"]] == [True]



async def test_long_wechat_reply_is_split_and_prefixed(serve, make_channel, wechat_ticket, wechat_api):
    domain = Domain.from_dict({"responses": {"utter_staff_reply_prefix": [{"text": "【人工客服】"}]}})
    client = await serve(make_channel(domain=domain))
    text = "转接说明。" * 400  # 2000 characters, 6000 bytes
    assert (await client.call("POST", f"/tickets/{wechat_ticket}/reply", {"text": text}))[0] == 201
    parts = [m["text"]["content"] for m in wechat_api.sent]
    assert len(parts) == 3 and all(len(p.encode("utf-8")) <= 2048 for p in parts)
    assert "".join(parts) == "【人工客服】" + text


async def test_wechat_refusal_is_502_and_the_reply_stays_undelivered(client, desk, wechat_ticket, wechat_api):
    wechat_api.errcode = 45015
    status, body, _ = await client.call("POST", f"/tickets/{wechat_ticket}/reply", {"text": "您好"})
    assert status == 502 and body["error"] == "delivery_failed" and body["reason"]
    assert [(m["id"], m["delivered"]) for m in desk.get(wechat_ticket)["messages"]] == [(body["message_id"], False)]


async def test_wechat_reply_without_wechat_credentials_stores_nothing(serve, make_channel, wechat_ticket, sessions):
    client = await serve(make_channel(app_id=None, app_secret=None))
    status, body, _ = await client.call("POST", f"/tickets/{wechat_ticket}/reply", {"text": "您好"})
    assert status == 503 and "WECHAT_APP_ID" in body["reason"]
    assert rows(sessions) == (1, 0, 1)


# -- bad input --------------------------------------------------------------------------

@pytest.mark.parametrize("body, status, code", [
    (b"{not json", 400, "bad_json"),
    (b"", 400, "bad_json"),
    ('{"text": "你好"}'.encode("gbk"), 400, "bad_json"),
    (b"[\"text\"]", 400, "bad_json"),
    ({}, 400, "bad_text"),
    ({"text": None}, 400, "bad_text"),
    ({"text": 42}, 400, "bad_text"),
    ({"text": ["你好"]}, 400, "bad_text"),
    ({"text": ""}, 400, "empty_text"),
    ({"text": " \n\t "}, 400, "empty_text"),
    ({"text": "字" * (MAX_REPLY_CHARS + 1)}, 413, "text_too_long"),
    (b"{\"text\": \"" + b"a" * 70_000 + b"\"}", 413, "body_too_large"),
])
@pytest.mark.parametrize("channel", ["web", "wechat"])
async def test_bad_replies_are_refused_with_a_reason_and_store_nothing(
        client, desk, sessions, wechat_api, body, status, code, channel):
    ticket_id = desk.open_ticket(channel, f"{channel}:{OPENID}", None, QUESTION, TRANSCRIPT, "fallbacks")
    reply_status, reply, _ = await client.call("POST", f"/tickets/{ticket_id}/reply", body)
    assert (reply_status, reply["error"]) == (status, code) and reply["reason"]
    assert rows(sessions) == (1, 0, 1) and wechat_api.sent == []


async def test_a_reply_of_exactly_the_limit_is_accepted(client, web_ticket, desk):
    status, _, _ = await client.call("POST", f"/tickets/{web_ticket}/reply", {"text": "字" * MAX_REPLY_CHARS})
    assert status == 201 and len(desk.get(web_ticket)["messages"][0]["text"]) == MAX_REPLY_CHARS


async def test_closed_ticket_refuses_reply_and_close(client, desk, web_ticket, wechat_ticket, sessions, wechat_api,
                                                     resumed):
    desk.close(web_ticket)
    desk.close(wechat_ticket)
    for ticket_id in (web_ticket, wechat_ticket):
        status, body, _ = await client.call("POST", f"/tickets/{ticket_id}/reply", {"text": "您好"})
        assert status == 409 and body["error"] == "ticket_closed" and body["reason"]
        status, body, _ = await client.call("POST", f"/tickets/{ticket_id}/close")
        assert status == 409 and body["error"] == "ticket_closed"
    assert rows(sessions) == (2, 0, 0) and wechat_api.sent == [] and resumed == []


# -- closing -------------------------------------------------------------------------------

async def test_close_resumes_the_conversation(client, desk, web_ticket, resumed):
    status, body, _ = await client.call("POST", f"/tickets/{web_ticket}/close")
    assert status == 200 and body["status"] == "closed" and body["resumed"] is True
    assert resumed == [("web", WEB_SENDER)]
    assert desk.open_ticket_of("web", WEB_SENDER) is None
    assert (await client.call("GET", "/tickets"))[1] == {"tickets": []}


async def test_close_without_a_rasa_agent_still_closes(serve, make_channel, desk, web_ticket):
    client = await serve(make_channel(resume=None))
    status, body, _ = await client.call("POST", f"/tickets/{web_ticket}/close")
    assert status == 200 and body["status"] == "closed" and body["resumed"] is False


async def test_close_clears_the_handoff_slot_in_the_tracker(serve, make_channel, desk, wechat_ticket):
    domain = Domain.from_dict({"slots": {HANDOFF_SLOT: {"type": "float", "influence_conversation": True,
                                                         "mappings": [{"type": "custom"}]}}})
    agent = SimpleNamespace(tracker_store=InMemoryTrackerStore(domain), lock_store=InMemoryLockStore())
    tracker = await agent.tracker_store.get_or_create_tracker(WECHAT_SENDER)
    tracker.update(SlotSet(HANDOFF_SLOT, float(wechat_ticket)))
    await agent.tracker_store.save(tracker)
    client = await serve(make_channel(resume=None), agent=agent)
    status, body, _ = await client.call("POST", f"/tickets/{wechat_ticket}/close")
    assert status == 200 and body["resumed"] is True
    tracker = await agent.tracker_store.retrieve(WECHAT_SENDER)
    assert tracker.get_slot(HANDOFF_SLOT) is None
    assert isinstance(tracker.events[-1], SlotSet) and tracker.events[-1].key == HANDOFF_SLOT


async def test_a_failing_resume_does_not_undo_the_close(serve, make_channel, desk, web_ticket):
    def broken(channel, sender_id):
        raise RuntimeError("tracker store down")

    client = await serve(make_channel(resume=broken))
    status, body, _ = await client.call("POST", f"/tickets/{web_ticket}/close")
    assert status == 200 and body["resumed"] is False
    assert desk.get(web_ticket)["status"] == "closed"


async def test_async_resume_is_awaited(serve, make_channel, web_ticket):
    calls = []

    async def resume(channel, sender_id):
        await asyncio.sleep(0)
        calls.append((channel, sender_id))

    client = await serve(make_channel(resume=resume))
    assert (await client.call("POST", f"/tickets/{web_ticket}/close"))[1]["resumed"] is True
    assert calls == [("web", WEB_SENDER)]


# -- the page ----------------------------------------------------------------------------------

async def test_page_and_assets_are_served_from_the_folder_only(client):
    status, body, headers = await client.call("GET", "/", headers={})
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    for asset in re.findall(r'(?:src|href)="([^"]+)"', body):
        assert asset.startswith("/webhooks/staff/static/")
        assert (await client.call("GET", asset[len("/webhooks/staff"):], headers={}))[0] == 200
    for name in ("../staff.py", "..%2Fstaff.py", "nope.js", ".hidden.js"):
        assert (await client.call("GET", f"/static/{name}", headers={}))[0] == 404


def test_page_builds_its_dom_from_text_only_and_loads_nothing_external():
    script = (STATIC_DIR / "staff.js").read_text("utf-8")
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(", script)
    assert "sessionStorage" in script and "localStorage" not in script
    for path in STATIC_DIR.iterdir():
        assert not re.search(r"https?://", path.read_text("utf-8")), path.name
