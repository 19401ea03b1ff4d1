"""A real Rasa server and action server on the trained model, for end-to-end checks."""
import sqlite3
import uuid

import pytest
import requests

from benchmark.local_servers import answers_greeting, running_assistant

STAFF_TOKEN = "integration-staff-token"


@pytest.fixture(scope="session")
def assistant():
    """The assistant as scripts/run.sh configures it: Rasa's SQL tracker store on SQLite."""
    with running_assistant(answers_greeting, rasa_env={"STAFF_API_TOKEN": STAFF_TOKEN},
                           sqlite_tracker_store=True) as running:
        yield running


@pytest.fixture(scope="session")
def webhook(assistant):
    return f"{assistant.base}/webhooks/rest/webhook"


class Conversation:
    """One sender talking to the assistant over REST; say() returns the replies' text."""

    def __init__(self, url, sender=None):
        self.url, self.sender = url, sender or uuid.uuid4().hex

    def say(self, message):
        reply = requests.post(self.url, json={"sender": self.sender, "message": message}, timeout=30)
        assert reply.status_code == 200
        return "\n".join(r.get("text", "") for r in reply.json())


class WebConversation(Conversation):
    """The web page's conversation: a session token the server signed, then its webhook."""

    def __init__(self, base):
        self.base = base
        self.session = requests.post(f"{base}/webhooks/web/session", timeout=10).json()["session"]
        self.url = f"{base}/webhooks/web/webhook"

    def say(self, message):
        reply = requests.post(self.url, json={"session": self.session, "message": message}, timeout=30)
        assert reply.status_code == 200
        return "\n".join(r.get("text", "") for r in reply.json())


@pytest.fixture
def new_web_chat(assistant):
    return lambda: WebConversation(assistant.base)


@pytest.fixture
def new_chat(webhook):
    """A fresh conversation; new_chat("sender-id") names the sender."""
    return lambda sender=None: Conversation(webhook, sender)


@pytest.fixture
def unlock_after(assistant):
    """Locks a test causes are lifted after it, so later tests may verify the same members."""
    yield
    with sqlite3.connect(assistant.logs / "demo.db") as connection:
        connection.execute("DELETE FROM verification_throttles")
