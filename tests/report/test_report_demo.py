"""The demo step: its sample, and how it talks to the REST webhook (a fake server here)."""
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tuanjian.tools.report import demo

RATE_UP = '/rate_answer{"rating":"up"}'
RATE_DOWN = '/rate_answer{"rating":"down"}'


def test_the_sample_has_what_the_report_shows():
    conversations = demo.load_sample()
    assert 14 <= len(conversations) <= 20
    assert len({c["name"] for c in conversations}) == len(conversations)
    messages = [m for c in conversations for m in c["messages"]]
    assert RATE_UP in messages and RATE_DOWN in messages and "转人工" in messages
    assert "今天天气怎么样" in messages  # out of scope
    assert any(c["name"] == "two-fallbacks" and len(c["messages"]) == 2 for c in conversations)


@pytest.fixture
def fake_rasa():
    received = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"Hello from Rasa: 3.6.21")

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])).decode("utf-8"))
            received.append((self.path, body))
            reply = json.dumps([{"recipient_id": body["sender"], "text": "好的\n第二行"}]).encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(reply)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def test_it_plays_every_message_in_order_one_sender_per_conversation(fake_rasa, tmp_path, capsys):
    url, received = fake_rasa
    code = demo.main(["--server", url, "--tracker-db", f"sqlite:///{tmp_path / 'none.db'}"])
    assert code == 0
    conversations = demo.load_sample()
    assert [p for p, _ in received] == [demo.WEBHOOK] * sum(len(c["messages"]) for c in conversations)
    assert [b["message"] for _, b in received] == [m for c in conversations for m in c["messages"]]
    senders = [b["sender"] for _, b in received]
    assert len(set(senders)) == len(conversations)
    assert all(re.fullmatch(r"demo-\d{14}-\d{2}", s) for s in senders)
    out, err = capsys.readouterr()
    assert "    成员：转人工" in out and "    助手：好的…" in out
    assert f"Played {len(conversations)} conversations" in out
    assert "python -m tuanjian.tools.report --from " in out
    # The fake server records nothing, and the demo says how to fix that.
    assert "tracker_store: {type: SQL, dialect: sqlite, db: var/tracker.db}" in err


def test_no_server_no_conversations(tmp_path, capsys):
    assert demo.main(["--server", "http://127.0.0.1:9", "--wait", "0"]) == 1
    assert "scripts/run.sh" in capsys.readouterr().err
