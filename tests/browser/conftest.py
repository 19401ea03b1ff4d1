"""A real Rasa server (REST and web page channels) and action server for the browser tests.

Started the way tests/integration/conftest.py starts them, on the trained
model and a demo database of its own, with a credentials file that enables
both the REST channel and the web chat page. Package scope: the servers stop
when the browser tests are done, before the integration tests start theirs.
"""
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "tuanjian.tar.gz"
CREDENTIALS = """\
bot.channels.rest.RestInput:
bot.channels.web.WebChatInput:
bot.channels.staff.StaffInput:
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _up(base: str) -> bool:
    try:
        page = requests.get(f"{base}/webhooks/web/", timeout=10)
        reply = requests.post(f"{base}/webhooks/rest/webhook",
                              json={"sender": "up", "message": "你好"}, timeout=10)
        return page.status_code == 200 and reply.status_code == 200 and bool(reply.json())
    except (requests.RequestException, ValueError):
        return False


@pytest.fixture(scope="package")
def server():
    """Base URL of the Rasa server, e.g. http://127.0.0.1:40123."""
    assert MODEL.exists(), "train first: scripts/test.sh trains before running pytest"
    rasa_port, action_port = free_port(), free_port()
    logs = Path(tempfile.mkdtemp(prefix="browser-test-"))
    endpoints = logs / "endpoints.yml"
    endpoints.write_text(f"action_endpoint:\n  url: http://127.0.0.1:{action_port}/webhook\n")
    credentials = logs / "credentials.yml"
    credentials.write_text(CREDENTIALS)
    env = dict(os.environ, TUANJIAN_DATABASE_URL=f"sqlite:///{logs / 'demo.db'}")
    subprocess.run([sys.executable, "-m", "bot.backend.demo"], cwd=ROOT, env=env, check=True)
    procs = [
        subprocess.Popen(["rasa", "run", "actions", "--port", str(action_port)], cwd=ROOT, env=env,
                         stdout=open(logs / "actions.log", "w"), stderr=subprocess.STDOUT),
        subprocess.Popen(["rasa", "run", "--model", str(MODEL), "--port", str(rasa_port),
                          "--endpoints", str(endpoints), "--credentials", str(credentials)],
                         cwd=ROOT, env=env, stdout=open(logs / "rasa.log", "w"), stderr=subprocess.STDOUT),
    ]
    base = f"http://127.0.0.1:{rasa_port}"
    try:
        deadline = time.monotonic() + 180
        while not _up(base):
            for proc in procs:
                assert proc.poll() is None, f"a server exited with {proc.returncode}; logs in {logs}"
            assert time.monotonic() < deadline, f"servers did not come up; logs in {logs}"
            time.sleep(1)
        yield base
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
