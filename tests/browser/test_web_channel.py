"""The web chat channel over plain HTTP: what it serves, with which headers, and nothing else."""
import http.client
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tuanjian.rasa_server.channels.static_pages import CONTENT_TYPES, servable_files
from tuanjian.rasa_server.channels.web import STATIC_DIR, WebChatInput

PAGE = "/webhooks/web/"


def raw_get(base, path, method="GET"):
    """A request with the path sent exactly as written (no client-side normalisation)."""
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        conn.request(method, path)
        reply = conn.getresponse()
        return reply.status, reply.read()
    finally:
        conn.close()


def test_servable_files_are_the_flat_known_files_only(tmp_path):
    (tmp_path / "index.html").write_text("<p>hi</p>")
    (tmp_path / "app.js").write_text("1")
    (tmp_path / ".secret.js").write_text("2")
    (tmp_path / "notes.txt").write_text("3")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.css").write_text("4")
    (tmp_path / "link.css").symlink_to(tmp_path / "sub" / "deep.css")
    assert sorted(servable_files(tmp_path)) == ["app.js", "index.html"]


def test_channel_is_named_web_and_needs_no_credentials():
    channel = WebChatInput.from_credentials(None)
    assert channel.name() == "web" and channel.url_prefix() == "web"
    assert {"index.html", "chat.css", "chat.js"} <= set(servable_files(STATIC_DIR))


def test_page_is_served_with_its_type_and_csp(server):
    reply = requests.get(server + PAGE, timeout=10)
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    assert reply.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert "<title>智慧团建 团组织关系转接助手</title>" in reply.text
    assert 'name="viewport"' in reply.text


def test_every_asset_is_local_and_typed(server):
    html = requests.get(server + PAGE, timeout=10).text
    refs = re.findall(r'(?:href|src)="([^"]+)"', html)
    assert refs, "the page references no assets"
    for ref in refs:
        assert ref.startswith("/webhooks/web/static/"), f"asset not served locally: {ref}"
        reply = requests.get(server + ref, timeout=10)
        assert reply.status_code == 200, ref
        assert reply.headers["Content-Type"] == CONTENT_TYPES[Path(ref).suffix], ref
    # Nothing in any asset points to another host (the SVG's xmlns is a name, not a fetch).
    for path in STATIC_DIR.iterdir():
        text = path.read_text("utf-8").replace("http://www.w3.org/2000/svg", "")
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", text), f"external URL in {path.name}"
        assert "@import" not in text and "@font-face" not in text, path.name


def test_served_files_match_the_folder(server):
    for name in ("chat.css", "chat.js"):
        reply = requests.get(f"{server}/webhooks/web/static/{name}", timeout=10)
        assert reply.content == (STATIC_DIR / name).read_bytes()


@pytest.mark.parametrize(
    "path",
    [
        "/webhooks/web/static/..%2Fweb.py",
        "/webhooks/web/static/..%2F..%2F..%2Fcredentials.yml",
        "/webhooks/web/static/%2e%2e%2fweb.py",
        "/webhooks/web/static/../web.py",
        "/webhooks/web/static/../../rest.py",
        "/webhooks/web/static/..%5Cweb.py",
        "/webhooks/web/static/%2Fetc%2Fpasswd",
        "/webhooks/web/static/web_static%2Findex.html",
        "/webhooks/web/static/",
        "/webhooks/web/static/nope.js",
        "/webhooks/web/static/index.html%00.js",
        "/webhooks/web/web.py",
        "/webhooks/web/static/sub/index.html",
    ],
)
def test_nothing_outside_the_folder_is_served(server, path):
    status, body = raw_get(server, path)
    assert status in (400, 404), (path, status)
    assert b"import" not in body and b"root:" not in body and b"RestInput" not in body


def test_the_page_itself_takes_no_post(server):
    status, _ = raw_get(server, PAGE, method="POST")
    assert status == 405


def test_a_conversation_needs_a_session_the_server_signed(server):
    session = requests.post(server + "/webhooks/web/session", timeout=10).json()["session"]
    reply = requests.post(server + "/webhooks/web/webhook",
                          json={"session": session, "message": "忘记密码怎么办"}, timeout=30)
    assert reply.status_code == 200 and "密码重置码" in reply.json()[0]["text"]
    for forged in ("0" * 32, session[:-1] + ("1" if session[-1] == "0" else "0"), "web:" + session):
        refused = requests.post(server + "/webhooks/web/webhook",
                                json={"session": forged, "message": "你好"}, timeout=10)
        assert refused.status_code == 401 and "text" not in refused.text


def test_rest_channel_still_answers_beside_it(server):
    reply = requests.post(server + "/webhooks/rest/webhook",
                          json={"sender": "web-channel-test", "message": "忘记密码怎么办"}, timeout=30)
    assert reply.status_code == 200
    assert "密码重置码" in reply.json()[0]["text"]
