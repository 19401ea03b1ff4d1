"""A real Rasa server (REST and web page channels) and action server for the browser tests.

Started the way tests/integration/conftest.py starts them, on the trained
model and a demo database of its own, with a credentials file that enables
both the REST channel and the web chat page. Package scope: the servers stop
when the browser tests are done, before the integration tests start theirs.
"""
import pytest
import requests

from benchmark.local_servers import running_assistant

CREDENTIALS = """\
tuanjian.rasa_server.channels.rest.RestInput:
tuanjian.rasa_server.channels.web.WebChatInput:
tuanjian.rasa_server.channels.staff.StaffInput:
"""


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
    with running_assistant(_up, credentials=CREDENTIALS) as assistant:
        yield assistant.base
