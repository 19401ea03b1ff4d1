import json
import uuid
from types import SimpleNamespace

import pytest
from rasa.core.agent import Agent
from rasa.core.channels.channel import register
from rasa.core.lock_store import InMemoryLockStore
from rasa.shared.core.domain import Domain
from sanic import Sanic

from tuanjian.rasa_server.channels.rest import MAX_MESSAGE_CHARS, RestInput, body_problem


def body(**payload):
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


@pytest.mark.parametrize(
    "raw, problem",
    [
        (b"{not json", "UTF-8 encoded JSON"),
        ("{\"message\": \"忘记密码\"}".encode("gbk"), "UTF-8 encoded JSON"),
        (b"", "UTF-8 encoded JSON"),
        (b"[1, 2]", "JSON object"),
        (body(sender="a"), "'message' must be a string"),
        (body(sender="a", message=None), "'message' must be a string"),
        (body(sender="a", message=42), "'message' must be a string"),
        (body(sender="a", message="转" * (MAX_MESSAGE_CHARS + 1)), "at most"),
        (body(sender="", message="你好"), "'sender'"),
        (body(sender=7, message="你好"), "'sender'"),
        (body(sender="s" * 101, message="你好"), "'sender'"),
        (body(message="你好"), "'sender'"),  # no shared "default" conversation
        (body(sender="a", message="你好", metadata=[1]), "'metadata'"),
    ],
)
def test_bad_bodies_are_named(raw, problem):
    assert problem in (body_problem(raw) or "")


@pytest.mark.parametrize(
    "payload",
    [
        {"sender": "a", "message": "你好"},
        {"sender": "a", "message": ""},
        {"sender": "a", "message": "转" * 5000},
        {"sender": "a", "message": "<script>alert(1)</script>", "metadata": {"k": 1}},
    ],
)
def test_good_bodies_pass(payload):
    assert body_problem(body(**payload)) is None


async def test_a_conversation_over_the_limit_gets_a_polite_reply(run_app, root):
    turns = []

    async def on_new_message(message):
        turns.append((message.sender_id, message.input_channel, message.metadata))
        await message.output_channel.send_text_message(message.sender_id, "好的")

    domain = Domain.load(str(root / "domain"))
    app = Sanic(f"rest_limit_{uuid.uuid4().hex[:8]}")
    register([RestInput(domain=domain, per_minute=2)], app, route="/webhooks/")
    app.ctx.agent = SimpleNamespace(lock_store=InMemoryLockStore(), is_ready=lambda: True,
                                    processor=SimpleNamespace(handle_message=on_new_message))
    session = await run_app(app)
    body = {"sender": "fast", "message": "你好", "input_channel": "wechat", "metadata": {"client": "x"}}
    replies = []
    for _ in range(3):
        async with session.post("/webhooks/rest/webhook", json=body) as reply:
            replies.append((reply.status, await reply.json()))
    assert [status for status, _ in replies] == [200, 200, 429]
    assert replies[2][1][0]["text"] == domain.responses["utter_rate_limited"][0]["text"]
    assert len(turns) == 2  # the refused message started no turn
    assert all(t[0] == "rest:fast" and t[1] == "rest" and set(t[2]) == {"client"} for t in turns)


async def test_the_readiness_route_fails_until_a_model_is_loaded(run_app, root):
    # Rasa's own GET / answers 200 even when the model failed to load
    # (a bad setting at start-up), so the probe asks the channel instead.
    app = Sanic(f"rest_ready_{uuid.uuid4().hex[:8]}")
    register([RestInput(domain=Domain.load(str(root / "domain")))], app, route="/webhooks/")
    session = await run_app(app)
    async with session.get("/webhooks/rest/") as reply:
        assert reply.status == 503  # no agent yet
    app.ctx.agent = Agent()  # what load_agent returns when the model cannot be loaded
    async with session.get("/webhooks/rest/") as reply:
        assert reply.status == 503
    app.ctx.agent = SimpleNamespace(is_ready=lambda: True)
    async with session.get("/webhooks/rest/") as reply:
        assert (reply.status, await reply.json()) == (200, {"status": "ok"})
