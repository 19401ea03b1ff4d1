"""A real Rasa server and action server on the trained model, for end-to-end checks."""
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "tuanjian.tar.gz"
STAFF_TOKEN = "integration-staff-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def webhook():
    assert MODEL.exists(), "train first: scripts/test.sh trains before running pytest"
    rasa_port, action_port = free_port(), free_port()
    endpoints = Path(tempfile.mkdtemp()) / "endpoints.yml"
    endpoints.write_text(f"action_endpoint:\n  url: http://127.0.0.1:{action_port}/webhook\n")
    logs = Path(tempfile.mkdtemp())
    # The action server works on a demo database of its own, loaded "today".
    env = dict(os.environ, TUANJIAN_DATABASE_URL=f"sqlite:///{logs / 'demo.db'}")
    subprocess.run([sys.executable, "-m", "bot.backend.demo"], cwd=ROOT, env=env, check=True)
    procs = [
        subprocess.Popen(["rasa", "run", "actions", "--port", str(action_port)], cwd=ROOT, env=env,
                         stdout=open(logs / "actions.log", "w"), stderr=subprocess.STDOUT),
        subprocess.Popen(["rasa", "run", "--model", str(MODEL), "--port", str(rasa_port),
                          "--endpoints", str(endpoints), "--credentials", "credentials.yml"],
                         cwd=ROOT, env=dict(env, STAFF_API_TOKEN=STAFF_TOKEN),
                         stdout=open(logs / "rasa.log", "w"), stderr=subprocess.STDOUT),
    ]
    url = f"http://127.0.0.1:{rasa_port}/webhooks/rest/webhook"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if requests.post(url, json={"sender": "up", "message": "你好"}, timeout=10).json():
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, f"servers did not come up; logs in {logs}"
            time.sleep(1)
        yield url
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)


class Conversation:
    """One sender talking to the assistant over REST; say() returns the replies' text."""

    def __init__(self, url, sender=None):
        self.url, self.sender = url, sender or uuid.uuid4().hex

    def say(self, message):
        reply = requests.post(self.url, json={"sender": self.sender, "message": message}, timeout=30)
        assert reply.status_code == 200
        return "\n".join(r.get("text", "") for r in reply.json())


@pytest.fixture
def new_chat(webhook):
    """A fresh conversation; new_chat("sender-id") names the sender."""
    return lambda sender=None: Conversation(webhook, sender)
