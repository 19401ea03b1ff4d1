"""The web page's conversation routes: restart revokes the old token, or does nothing at all."""
import uuid
from types import SimpleNamespace

import pytest
from rasa.core.channels.channel import register
from rasa.core.lock_store import InMemoryLockStore
from sanic import Sanic
from sqlalchemy.exc import OperationalError

from tuanjian.backend.verification import VerificationService
from tuanjian.rasa_server.channels.web import WebChatInput
from tuanjian.rasa_server.channels.web_session import WebSessions

SESSIONS = WebSessions("web-test-secret")


class BackendDown:
    def is_closed(self, channel, external_id):
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    close = is_closed


@pytest.fixture
def serve(run_app):
    async def start(verifications, per_minute=0):
        turns = []

        async def on_new_message(message):
            turns.append((message.sender_id, message.text))
            await message.output_channel.send_text_message(message.sender_id, "好的")

        app = Sanic(f"web_test_{uuid.uuid4().hex[:8]}")
        register([WebChatInput(sessions=SESSIONS, per_minute=per_minute, verifications=verifications)],
                 app, route="/webhooks/")
        app.ctx.agent = SimpleNamespace(lock_store=InMemoryLockStore(), is_ready=lambda: True,
                                        handle_message=on_new_message,  # the restart route's turn
                                        processor=SimpleNamespace(handle_message=on_new_message))
        return await run_app(app), turns
    return start


async def post(client, path, body):
    async with client.post(f"/webhooks/web/{path}", json=body) as reply:
        return reply.status, await reply.json()


async def test_restart_revokes_the_old_token(serve, sessions, clock):
    client, turns = await serve(VerificationService(sessions, clock))
    token = SESSIONS.issue()
    assert (await post(client, "webhook", {"session": token, "message": "你好"}))[0] == 200
    status, body = await post(client, "restart", {"session": token})
    assert status == 201 and body["session"] != token
    assert turns[-1] == (f"web:{SESSIONS.session_id(token)}", "/restart")
    assert (await post(client, "webhook", {"session": token, "message": "你好"}))[0] == 401
    assert (await post(client, "restart", {"session": token}))[0] == 401
    assert (await post(client, "webhook", {"session": body["session"], "message": "你好"}))[0] == 200


async def test_a_restart_the_backend_cannot_record_does_nothing(serve):
    client, turns = await serve(BackendDown())
    token = SESSIONS.issue()
    status, body = await post(client, "restart", {"session": token})
    assert status == 503 and "session" not in body
    assert turns == []  # the conversation was not restarted either
    # The chat itself goes on unchecked: the conversation is unverified without the backend.
    assert (await post(client, "webhook", {"session": token, "message": "忘记密码怎么办"}))[0] == 200


async def test_new_sessions_and_restarts_are_limited_per_client(serve, sessions, clock):
    client, _ = await serve(VerificationService(sessions, clock), per_minute=3)
    statuses = []
    for _ in range(4):
        async with client.post("/webhooks/web/session") as reply:
            statuses.append(reply.status)
    assert statuses == [201, 201, 201, 429]
    assert (await post(client, "restart", {"session": SESSIONS.issue()}))[0] == 429
