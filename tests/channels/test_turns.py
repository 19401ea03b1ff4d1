"""A turn the stores cannot take is a 503 the page retries; a retried message
whose turn is stored is answered from the tracker, not taken twice."""
import asyncio
import time
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from rasa.core.channels.channel import UserMessage, register
from rasa.core.lock_store import InMemoryLockStore, LockError
from rasa.core.tracker_store import FailSafeTrackerStore, InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from redis.exceptions import ConnectionError as RedisConnectionError
from sanic import Sanic
from sqlalchemy.exc import OperationalError

from tuanjian.rasa_server.channels.rest import RestInput
from tuanjian.rasa_server.channels.turns import (
    RETRY_WINDOW_SECONDS,
    keep_reply,
    make_tracker_store_strict,
    message_id_problem,
    stored_replies,
)

BUTTONS = [{"title": "转人工", "payload": "/request_human"}]
UNAVAILABLE = "抱歉，这项服务暂时无法使用，请稍后再试。"


class Agent:
    """Rasa's Agent at the surface a turn uses: handle_message (lock, then the
    processor), its lock store, tracker store and processor. A turn stores the
    member's message and one reply, as Rasa's processor would."""

    def __init__(self, fail_with: Exception | None = None, silent: bool | set[str] = False,
                 seconds: float = 0.0):
        self.domain = Domain.from_dict({"responses": {"utter_service_unavailable": [{"text": UNAVAILABLE}]}})
        self.lock_store = InMemoryLockStore()
        self.tracker_store = InMemoryTrackerStore(Domain.empty())
        self.processor = SimpleNamespace(handle_message=self._turn)
        self.fail_with = fail_with
        self.silent = silent  # True, or the texts whose turn says nothing
        self.seconds = seconds  # how long a turn takes
        self.turns: list[str] = []

    def is_ready(self):
        return True

    async def handle_message(self, message):
        async with self.lock_store.lock(message.sender_id):
            await self._turn(message)

    async def _turn(self, message):
        if self.fail_with:
            raise self.fail_with
        self.turns.append(message.text)
        await asyncio.sleep(self.seconds)
        tracker = await self.tracker_store.get_or_create_tracker(message.sender_id)
        tracker.update(UserUttered(message.text, message_id=message.message_id))
        silent = self.silent is True or message.text in (self.silent or ())
        if not silent:  # what Rasa does when a custom action fails: log it, say nothing
            reply = f"答复{len(self.turns)}"
            await message.output_channel.send_text_with_buttons(message.sender_id, reply, BUTTONS)
            tracker.update(BotUttered(reply, {"buttons": BUTTONS}))
        await self.tracker_store.save(tracker)


@pytest.fixture
def serve(run_app):
    async def start(agent):
        app = Sanic(f"turns_{uuid.uuid4().hex[:8]}")
        register([RestInput()], app, route="/webhooks/")
        app.ctx.agent = agent
        return await run_app(app)
    return start


async def send(client, **body):
    async with client.post("/webhooks/rest/webhook", json={"sender": "m", **body}) as reply:
        return reply.status, dict(reply.headers), await reply.json()


def said(tracker):
    return [(type(e).__name__, e.text) for e in tracker.events if isinstance(e, (UserUttered, BotUttered))]


@pytest.mark.parametrize("error", [
    LockError("turn 3 has not finished in 3 s"),
    RedisConnectionError("Connection refused"),
    OperationalError("SELECT", {}, Exception("server closed the connection")),
])
async def test_a_turn_the_stores_cannot_take_is_a_503_to_retry(serve, error):
    client = await serve(Agent(fail_with=error))
    status, headers, body = await send(client, message="忘记密码怎么办", message_id="a1b2c3d4e5")
    assert status == 503 and headers["Retry-After"] == "1"
    assert "send it again" in body["error"]


async def test_a_turn_without_a_word_says_the_service_is_away(serve):
    client = await serve(Agent(silent=True))
    status, _, body = await send(client, message="帮我查一下我的转接进度")
    assert status == 200 and body == [{"recipient_id": "rest:m", "text": UNAVAILABLE}]


async def test_a_retry_of_a_stored_turn_gets_its_replies_without_a_second_turn(serve):
    agent = Agent()
    client = await serve(agent)
    first = await send(client, message="忘记密码怎么办", message_id="first-0001")
    await send(client, message="谢谢", message_id="second-0002")
    # The first attempt's reply was lost (a replica died after storing it): the
    # page sends the message again with its id.
    again = await send(client, message="忘记密码怎么办", message_id="first-0001", retry=True)
    assert again[0] == 200 and again[2] == first[2]
    assert again[2] == [{"recipient_id": "rest:m", "text": "答复1", "buttons": BUTTONS}]
    assert agent.turns == ["忘记密码怎么办", "谢谢"]


async def test_a_retry_of_a_turn_never_stored_is_taken(serve):
    agent = Agent()
    client = await serve(agent)
    status, _, body = await send(client, message="忘记密码怎么办", message_id="lost-00001", retry=True)
    assert status == 200 and body[0]["text"] == "答复1"
    assert agent.turns == ["忘记密码怎么办"]


async def test_without_retry_the_same_id_is_a_new_turn(serve):
    # Only a retry is looked up: a first attempt costs no tracker read.
    agent = Agent()
    client = await serve(agent)
    await send(client, message="你好", message_id="same-00001")
    await send(client, message="你好", message_id="same-00001")
    assert agent.turns == ["你好", "你好"]


@pytest.mark.parametrize("payload, problem", [
    ({"message_id": "short"}, "'message_id'"),
    ({"message_id": "有中文的编号abcdefgh"}, "'message_id'"),
    ({"message_id": "x" * 65}, "'message_id'"),
    ({"message_id": 12345678}, "'message_id'"),
    ({"message_id": "abcdefgh", "retry": "yes"}, "'retry'"),
    ({"retry": True}, "needs the 'message_id'"),
])
def test_bad_ids_are_named(payload, problem):
    assert problem in (message_id_problem(payload) or "")


def test_good_ids_pass():
    assert message_id_problem({}) is None
    assert message_id_problem({"message_id": "0f8e2c1a-77aa-4b0c-9d1e-2a3b4c5d6e7f", "retry": True}) is None


def test_stored_replies_stop_at_the_next_member_message():
    tracker = DialogueStateTracker.from_events("rest:m", [
        UserUttered("一", message_id="one-00001"), BotUttered("甲"), BotUttered("乙"),
        UserUttered("二", message_id="two-00002"), BotUttered("丙"),
    ])
    assert stored_replies(tracker.events, "rest:m", "one-00001") == [
        {"recipient_id": "rest:m", "text": "甲"}, {"recipient_id": "rest:m", "text": "乙"}]
    assert stored_replies(tracker.events, "rest:m", "two-00002") == [{"recipient_id": "rest:m", "text": "丙"}]
    assert stored_replies(tracker.events, "rest:m", "three-0003") is None


async def test_a_guessed_id_of_another_members_message_reads_nothing_of_theirs(serve):
    agent = Agent()
    client = await serve(agent)
    async with client.post("/webhooks/rest/webhook", json={
            "sender": "victim", "message": "2019001 1234", "message_id": "victim-0001"}) as reply:
        assert reply.status == 200
    # Another client sends a "retry" of that id from its own sender: it is
    # looked up in its own conversation only, finds nothing, and is a new turn.
    status, _, body = await send(client, message="查进度", message_id="victim-0001", retry=True)
    assert status == 200 and body[0]["recipient_id"] == "rest:m" and body[0]["text"] == "答复2"
    assert agent.turns == ["2019001 1234", "查进度"]


async def test_a_retry_finds_only_recent_turns(serve):
    # An old message id (a REST sender id and a leaked id) replays nothing:
    # past the retry window the "retry" is simply a new turn.
    agent = Agent()
    tracker = DialogueStateTracker("rest:m", [])
    old = time.time() - RETRY_WINDOW_SECONDS - 60
    tracker.update(UserUttered("查进度", message_id="old-000001", timestamp=old))
    tracker.update(BotUttered("张*，第 3 步", timestamp=old))
    await agent.tracker_store.save(tracker)
    client = await serve(agent)
    status, _, body = await send(client, message="查进度", message_id="old-000001", retry=True)
    assert status == 200 and body[0]["text"] == "答复1"


async def test_a_retry_of_a_silent_turn_says_the_service_is_away(serve):
    agent = Agent(silent=True)
    client = await serve(agent)
    await send(client, message="帮我查一下我的转接进度", message_id="silent-001")
    status, _, body = await send(client, message="帮我查一下我的转接进度", message_id="silent-001", retry=True)
    assert status == 200 and body == [{"recipient_id": "rest:m", "text": UNAVAILABLE}]


async def test_the_reply_to_a_silent_turn_is_stored_after_the_message_once(serve):
    agent = Agent(silent=True)
    client = await serve(agent)
    await send(client, message="帮我查一下我的转接进度", message_id="silent-002")
    await send(client, message="帮我查一下我的转接进度", message_id="silent-002", retry=True)
    assert said(await agent.tracker_store.retrieve("rest:m")) == [
        ("UserUttered", "帮我查一下我的转接进度"), ("BotUttered", UNAVAILABLE)]
    assert agent.turns == ["帮我查一下我的转接进度"]


async def test_a_silent_turn_is_answered_when_its_reply_cannot_be_stored(serve):
    class BotRepliesNotStored(InMemoryTrackerStore):
        async def save(self, tracker):
            if isinstance(tracker.events[-1], BotUttered):
                raise OperationalError("INSERT", {}, Exception("server closed the connection"))
            await super().save(tracker)

    agent = Agent(silent=True)
    agent.tracker_store = BotRepliesNotStored(Domain.empty())
    client = await serve(agent)
    status, _, body = await send(client, message="帮我查一下我的转接进度")
    assert status == 200 and body == [{"recipient_id": "rest:m", "text": UNAVAILABLE}]


async def test_a_silent_turns_reply_is_stored_before_the_next_message(serve):
    agent = Agent(silent={"查进度"}, seconds=0.2)
    client = await serve(agent)
    first = asyncio.ensure_future(send(client, message="查进度", message_id="silent-003"))
    await asyncio.sleep(0.05)  # the next message waits for the first turn's lock
    second = await send(client, message="谢谢", message_id="thanks-003")
    assert (await first)[2] == [{"recipient_id": "rest:m", "text": UNAVAILABLE}]
    assert second[2][0]["text"] == "答复2"
    assert said(await agent.tracker_store.retrieve("rest:m")) == [
        ("UserUttered", "查进度"), ("BotUttered", UNAVAILABLE), ("UserUttered", "谢谢"), ("BotUttered", "答复2")]


async def test_a_retry_during_a_silent_turn_gets_its_reply_stored_once(serve):
    agent = Agent(silent=True, seconds=0.2)
    client = await serve(agent)
    first = asyncio.ensure_future(send(client, message="查进度", message_id="silent-004"))
    await asyncio.sleep(0.05)
    again = await send(client, message="查进度", message_id="silent-004", retry=True)
    assert (await first)[2] == again[2] == [{"recipient_id": "rest:m", "text": UNAVAILABLE}]
    assert said(await agent.tracker_store.retrieve("rest:m")) == [
        ("UserUttered", "查进度"), ("BotUttered", UNAVAILABLE)]
    assert agent.turns == ["查进度"]


async def test_while_the_model_loads_a_message_is_a_503(serve):
    class Loading(Agent):
        def is_ready(self):
            return False

    agent = Loading()
    client = await serve(agent)
    for retry in (False, True):
        status, headers, _ = await send(client, message="你好", message_id="loading-01", retry=retry)
        assert status == 503 and headers["Retry-After"] == "1"
    assert agent.turns == []


class BrokenStore(InMemoryTrackerStore):
    async def retrieve(self, sender_id):
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    async def save(self, tracker):
        raise OperationalError("INSERT", {}, Exception("connection refused"))


async def test_the_tracker_stores_errors_reach_the_turn():
    # Rasa's FailSafeTrackerStore answers a failed read with a blank
    # conversation and keeps a failed write in memory; made strict, both raise.
    store = FailSafeTrackerStore(BrokenStore(Domain.empty()))
    assert await store.retrieve("rest:m") is None
    app: Any = SimpleNamespace(ctx=SimpleNamespace(agent=SimpleNamespace(tracker_store=store)))
    make_tracker_store_strict(app)
    with pytest.raises(OperationalError):
        await store.retrieve("rest:m")
    with pytest.raises(OperationalError):
        await store.save(DialogueStateTracker("rest:m", []))


async def test_a_body_over_the_limit_is_a_413_before_it_is_parsed(serve):
    # Sanic has read it by then; in production the proxy caps bodies at 1 MiB first.
    agent = Agent()
    client = await serve(agent)
    body = b'{"sender": "m", "message": "hi"' + b" " * (64 * 1024) + b"}"
    async with client.post("/webhooks/rest/webhook", data=body, headers={"Content-Type": "application/json"}) as reply:
        assert reply.status == 413
    assert agent.turns == []


async def test_a_reply_is_kept_only_for_the_latest_unanswered_message():
    store = InMemoryTrackerStore(Domain.empty())
    tracker = await store.get_or_create_tracker("wechat:o1")
    tracker.update(UserUttered("查进度", message_id="m1"))
    tracker.update(UserUttered("谢谢", message_id="m2"))
    await store.save(tracker)
    earlier = UserMessage("查进度", sender_id="wechat:o1", message_id="m1")
    latest = UserMessage("谢谢", sender_id="wechat:o1", message_id="m2")
    await keep_reply(store, earlier, UNAVAILABLE)  # a later message came in between
    assert said(await store.retrieve("wechat:o1")) == [("UserUttered", "查进度"), ("UserUttered", "谢谢")]
    await keep_reply(store, latest, UNAVAILABLE)
    await keep_reply(store, latest, UNAVAILABLE)  # already answered
    assert said(await store.retrieve("wechat:o1"))[-2:] == [("UserUttered", "谢谢"), ("BotUttered", UNAVAILABLE)]
    assert [e.text for e in (await store.retrieve("wechat:o1")).events if isinstance(e, BotUttered)] == [UNAVAILABLE]
    await keep_reply(store, UserMessage("你好", sender_id="wechat:new", message_id="m3"), UNAVAILABLE)
    assert await store.retrieve("wechat:new") is None  # nothing stored of that message: nothing kept
