"""The channels' own checks: client address behind proxies, message rate, signed web sessions."""
import ipaddress
from types import SimpleNamespace

from tuanjian.rasa_server.channels.guard import MessageRateLimit, client_address, client_key, is_json
from tuanjian.rasa_server.channels.web_session import WebSessions

PROXY = [ipaddress.ip_network("10.0.0.0/8")]


def request(peer, forwarded=None):
    return SimpleNamespace(ip=peer, headers={"X-Forwarded-For": forwarded} if forwarded else {})


def test_forwarded_for_is_believed_only_from_a_trusted_proxy():
    assert client_address(request("203.0.113.9", "1.2.3.4"), PROXY) == "203.0.113.9"
    assert client_address(request("10.0.0.2", "1.2.3.4"), PROXY) == "1.2.3.4"
    # A client cannot prepend an address of its own choice: the right-most untrusted one counts.
    assert client_address(request("10.0.0.2", "6.6.6.6, 1.2.3.4, 10.0.0.1"), PROXY) == "1.2.3.4"
    assert client_address(request("10.0.0.2", "1.2.3.4"), []) == "10.0.0.2"


def test_rate_limit_boundaries():
    now = [0.0]
    limit = MessageRateLimit(3, clock=lambda: now[0])
    assert [limit.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limit.allow("b") is True  # per conversation
    now[0] = 59.9
    assert limit.allow("a") is False
    now[0] = 60.0
    assert limit.allow("a") is True
    assert all(MessageRateLimit(0).allow("a") for _ in range(100))  # 0: off


def test_web_sessions_are_signed_and_expire():
    now = [1_700_000_000.0]
    sessions = WebSessions("secret", clock=lambda: now[0])
    token = sessions.issue()
    session_id = sessions.session_id(token)
    assert session_id and len(session_id) == 32 and token.startswith(session_id)
    assert WebSessions("other").session_id(token) is None
    tampered = token.replace(session_id, "0" * 32)
    assert sessions.session_id(tampered) is None
    for bad in (None, "", 42, session_id, token + "0", "web:" + session_id):
        assert sessions.session_id(bad) is None
    now[0] += 24 * 3600
    assert sessions.session_id(token) == session_id
    now[0] += 1
    assert sessions.session_id(token) is None


def test_an_ipv6_client_is_one_client_across_its_64():
    assert client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff:ffff:ffff:fffe")
    assert client_key("2001:db8:1:2::1") != client_key("2001:db8:1:3::1")
    assert client_key("::ffff:203.0.113.9") == client_key("203.0.113.9")
    assert client_key("203.0.113.9") != client_key("203.0.113.10")
    assert client_key("1.2.3.4:5678") == client_key("1.2.3.4") == client_key("1.2.3.4:80")
    assert client_key("[2001:db8:1:2::1]:443") == client_key("2001:db8:1:2::9")
    assert client_key("not an address") == client_key("") == client_key("junk:1")  # one client


def test_client_keys_are_keyed_digests():
    import hashlib

    key = client_key("203.0.113.9")
    assert "203.0.113.9" not in key
    assert key != "ip-" + hashlib.sha256(b"203.0.113.9").hexdigest()[:24]  # not a plain hash


def test_only_a_body_declared_json_is_json():
    def req(content_type):
        return SimpleNamespace(headers={"Content-Type": content_type} if content_type else {})
    assert is_json(req("application/json")) and is_json(req("Application/JSON; charset=utf-8"))
    for other in (None, "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
                  "multipart/form-data; boundary=x", "application/jsonp"):
        assert not is_json(req(other))
