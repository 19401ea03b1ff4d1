"""What the channel tests share: real Sanic servers on free ports, and a fake
WeChat API (token and customer-service messages) at the HTTP boundary."""
import asyncio
import socket
import time
from typing import Any, cast

import pytest
from aiohttp import ClientSession, web
from rasa.core.actions.action import RemoteAction
from sanic import Sanic


class FakeWeChatAPI:
    """/cgi-bin/token and /cgi-bin/message/custom/send on 127.0.0.1; `errcode`
    makes sending fail the way WeChat does (HTTP 200, errcode in the body)."""

    def __init__(self):
        self.sent = []
        self.token_requests = []
        self.errcode = 0
        self._changed = asyncio.Event()

    async def start(self):
        app = web.Application()
        app.router.add_get("/cgi-bin/token", self.token)
        app.router.add_post("/cgi-bin/message/custom/send", self.send)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{cast(Any, site._server).sockets[0].getsockname()[1]}/cgi-bin/"

    async def token(self, request):
        self.token_requests.append(dict(request.query))
        return web.json_response({"access_token": "ACCESS", "expires_in": 7200})

    async def send(self, request):
        assert request.query["access_token"] == "ACCESS"
        if self.errcode:
            return web.json_response({"errcode": self.errcode, "errmsg": "response out of time limit"})
        self.sent.append(await request.json())
        self._changed.set()
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def wait_for(self, count, timeout=5.0):
        deadline = time.monotonic() + timeout
        while len(self.sent) < count and time.monotonic() < deadline:
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), deadline - time.monotonic())
            except asyncio.TimeoutError:
                break
        return self.sent


@pytest.fixture
async def wechat_api():
    api = FakeWeChatAPI()
    await api.start()
    yield api
    await api.runner.cleanup()


@pytest.fixture
async def run_app(monkeypatch):
    """run_app(app) → an aiohttp session on that Sanic app, served on a free port."""
    monkeypatch.setattr(Sanic, "test_mode", True)  # lets several apps start in one process
    # The channels' start listener installs a process-wide check on Rasa's
    # RemoteAction (rasa_server/remote_actions.py); put Rasa's back afterwards.
    monkeypatch.setattr(RemoteAction, "_validate_action_result", RemoteAction._validate_action_result)
    servers, sessions = [], []

    async def start(app):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = await app.create_server(sock=sock, return_asyncio_server=True, access_log=False)
        await server.startup()  # create_server has started listening already
        await server.after_start()  # the channels' after_server_start listeners, as in `rasa run`
        servers.append(server)
        session = ClientSession(f"http://127.0.0.1:{sock.getsockname()[1]}")
        sessions.append(session)
        return session

    yield start
    for session in sessions:
        await session.close()
    for server in servers:
        server.close()
        await server.wait_closed()
