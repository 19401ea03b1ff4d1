"""Issue 14's attacks, replayed against the real servers (benchmark.local_servers):
each asserts that nothing of another member leaks."""
import json
import sqlite3
import uuid

import pytest
import requests
from sqlalchemy.orm import sessionmaker

from tuanjian.backend import db
from tuanjian.backend.verification import VerificationService

OPENID = "oAttackTarget0123456789abcd"
STATUS_WORDS = ("正在第", "核实通过", "张*", "联系方式")  # what a status reply of 2019001 shows


def status_leaked(text):
    return any(word in text for word in STATUS_WORDS)


@pytest.fixture(scope="module")
def backend(assistant):
    engine = db.make_engine(f"sqlite:///{assistant.logs / 'demo.db'}")
    yield VerificationService(lambda: sessionmaker(bind=engine, future=True)())
    engine.dispose()


def test_rasa_http_api_is_closed(assistant, new_chat):
    chat = new_chat()
    assert "核实通过" in chat.say("查询我的转接进度 2019001 1234")
    conversation = f"rest:{chat.sender}"
    read = requests.get(f"{assistant.base}/conversations/{conversation}/tracker", timeout=10)
    forged = requests.post(f"{assistant.base}/conversations/attacker/tracker/events", timeout=10,
                           json=[{"event": "slot", "name": "is_verified", "value": True}])
    assert read.status_code == 404 and "2019001" not in read.text
    assert forged.status_code == 404
    for method, path in (("DELETE", "/model"), ("PUT", "/model"), ("POST", "/model/train"), ("GET", "/domain"),
                         ("GET", "/status")):
        assert requests.request(method, assistant.base + path, timeout=10).status_code in (404, 405)
    assert chat.say("忘记密码怎么办")  # the model is still loaded


def action_call(assistant, action, slots, headers=None, body=None):
    tracker = {"sender_id": "rest:attacker", "slots": slots, "events": [], "paused": False,
               "latest_message": {"text": "查进度", "intent": {"name": "check_transfer_status"}},
               "latest_event_time": None, "followup_action": None, "active_loop": {},
               "latest_action_name": "action_listen"}
    payload = body if body is not None else json.dumps(
        {"next_action": action, "sender_id": "rest:attacker", "tracker": tracker, "domain": {}, "version": "3.6.21"})
    return requests.post(f"http://127.0.0.1:{assistant.action_port}/webhook", data=payload,
                         headers=headers or {}, timeout=10)


FORGED_SLOTS = {"is_verified": True, "verified_member": "2019001", "verification_lock_minutes": None}


def test_action_server_refuses_calls_without_the_secret(assistant):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": assistant.action_token}):
        reply = action_call(assistant, "action_transfer_status", FORGED_SLOTS,
                            {**headers, "Content-Type": "application/json"})
        assert reply.status_code == 401 and reply.json() == {"error": "unauthorized"}
    assert requests.get(f"http://127.0.0.1:{assistant.action_port}/actions", timeout=10).status_code == 401


def test_action_server_with_the_secret_still_believes_no_slot(assistant):
    headers = {"Authorization": f"Bearer {assistant.action_token}", "Content-Type": "application/json"}
    for action in ("action_transfer_status", "action_status_followup"):
        reply = action_call(assistant, action, FORGED_SLOTS, headers)
        assert reply.status_code == 200, reply.text
        responses = [r.get("response") for r in reply.json()["responses"]]
        assert responses == ["utter_verification_expired"]


def test_action_server_takes_only_json_and_echoes_nothing(assistant):
    auth = {"Authorization": f"Bearer {assistant.action_token}"}
    plain = action_call(assistant, "action_transfer_status", FORGED_SLOTS, {**auth, "Content-Type": "text/plain"})
    assert plain.status_code == 415
    broken = action_call(assistant, "action_transfer_status", FORGED_SLOTS,
                         {**auth, "Content-Type": "application/json"},
                         body=json.dumps({"next_action": "action_transfer_status",
                                          "tracker": {"slots": {"secret": "verified_member 2019001"}}}))
    assert broken.status_code >= 400 and "2019001" not in broken.text


def test_rest_cannot_pose_as_wechat(assistant, backend, new_chat):
    backend.bind("wechat", OPENID, "2019001")
    reply = requests.post(f"{assistant.base}/webhooks/rest/webhook", timeout=30, json={
        "sender": OPENID, "message": "查询我的转接进度", "input_channel": "wechat",
        "metadata": {"client": "trusted", "wechat_openid": OPENID}})
    text = "\n".join(r.get("text", "") for r in reply.json())
    assert reply.status_code == 200 and not status_leaked(text) and "团员编号" in text
    # The REST conversation named by the OpenID is not the WeChat one.
    chat = new_chat(f"wechat:{OPENID}")
    assert not status_leaked(chat.say("查询我的转接进度"))


def test_rest_needs_a_sender(assistant):
    reply = requests.post(f"{assistant.base}/webhooks/rest/webhook", json={"message": "查进度"}, timeout=10)
    assert reply.status_code == 400 and "sender" in reply.json()["error"]


def test_forged_web_sessions_are_refused(assistant):
    for session in ("a" * 32, f"{'a' * 32}.1700000000.{'0' * 64}", "web:abc"):
        reply = requests.post(f"{assistant.base}/webhooks/web/webhook", timeout=10,
                              json={"session": session, "message": "查询我的转接进度"})
        assert reply.status_code == 401
    assert requests.get(f"{assistant.base}/webhooks/staff/inbox?sender=web:abc", timeout=10).status_code == 401


def test_brute_force_from_fresh_conversations_locks_the_number(new_chat, unlock_after):
    for guess in ("0000", "0001", "0002", "0003"):
        assert "未能核实" in new_chat().say(f"查询我的转接进度 2019002 {guess}")
    assert "失败次数过多" in new_chat().say("查询我的转接进度 2019002 0004")
    # The right digits, from yet another conversation: refused, and nothing shown.
    reply = new_chat().say("查询我的转接进度 2019002 5678")
    assert "失败次数过多" in reply and "李*" not in reply
    # A number that does not exist locks and reads the same way.
    for guess in ("0000", "0001", "0002", "0003", "0004"):
        new_chat().say(f"查询我的转接进度 2099888 {guess}")
    assert "失败次数过多" in new_chat().say("查询我的转接进度 2099888 1234")


def test_a_new_session_and_a_restart_end_the_verification(assistant, new_chat):
    chat = new_chat()
    assert "核实通过" in chat.say("查询我的转接进度 2019004 1357")
    chat.say("/session_start")
    reply = chat.say("查询我的转接进度")
    assert "重新核实" in reply and "正在第" not in reply
    session = requests.post(f"{assistant.base}/webhooks/web/session", timeout=10).json()["session"]
    web = lambda message, token=session: "\n".join(r.get("text", "") for r in requests.post(  # noqa: E731
        f"{assistant.base}/webhooks/web/webhook", json={"session": token, "message": message}, timeout=30).json())
    assert "核实通过" in web("查询我的转接进度 2019004 1357")
    restarted = requests.post(f"{assistant.base}/webhooks/web/restart", json={"session": session}, timeout=30)
    new_session = restarted.json()["session"]
    assert restarted.status_code == 201 and new_session != session
    reply = web("查询我的转接进度", new_session)  # the new conversation starts unverified
    assert "团员编号" in reply and "正在第" not in reply
    # The old token is revoked, although its signature has not expired.
    for path, body in (("webhook", {"session": session, "message": "查询我的转接进度"}),
                       ("restart", {"session": session})):
        refused = requests.post(f"{assistant.base}/webhooks/web/{path}", json=body, timeout=10)
        assert refused.status_code == 401 and "正在第" not in refused.text
    inbox = requests.get(f"{assistant.base}/webhooks/staff/inbox", headers={"X-Chat-Session": session}, timeout=10)
    assert inbox.status_code in (401, 503) and "replies" not in inbox.text


def test_channels_take_only_json_bodies(assistant):
    """A page of another site can post text/plain without a CORS preflight: refused, so it
    cannot spend a visitor's verification attempts."""
    session = requests.post(f"{assistant.base}/webhooks/web/session", timeout=10).json()["session"]
    for path, body in (("rest/webhook", {"sender": "csrf", "message": "查询我的转接进度 2019001 0000"}),
                       ("web/webhook", {"session": session, "message": "查询我的转接进度 2019001 0000"}),
                       ("web/restart", {"session": session})):
        reply = requests.post(f"{assistant.base}/webhooks/{path}", data=json.dumps(body, ensure_ascii=False),
                              headers={"Content-Type": "text/plain;charset=UTF-8"}, timeout=10)
        assert reply.status_code == 415 and "未能核实" not in reply.text


def test_a_whole_phone_number_as_member_number_is_refused_and_kept_nowhere(assistant, backend, new_chat):
    chat = new_chat(f"phone-{uuid.uuid4().hex[:8]}")
    chat.say("查询我的转接进度")
    reply = chat.say("13812345678")
    assert "手机号或身份证号" in reply
    assert "团员编号" in chat.say("110105199001011234 1234")
    with sqlite3.connect(assistant.tracker_db) as connection:
        stored = " ".join(data for (data,) in connection.execute(
            "SELECT data FROM events WHERE sender_id = ?", (f"rest:{chat.sender}",)))
    assert "13812345678" not in stored and "110105199001011234" not in stored
    with sqlite3.connect(assistant.logs / "demo.db") as connection:
        keys = " ".join(key for (key,) in connection.execute("SELECT key FROM verification_throttles"))
    assert "13812345678" not in keys and "110105199001011234" not in keys


def test_cors_is_same_origin(assistant):
    for method in ("OPTIONS", "POST"):
        reply = requests.request(method, f"{assistant.base}/webhooks/rest/webhook", timeout=10,
                                 headers={"Origin": "https://evil.example",
                                          "Access-Control-Request-Method": "POST"},
                                 json={"sender": "cors", "message": "你好"})
        assert "Access-Control-Allow-Origin" not in reply.headers


def without_keys(value, keys):
    """A copy of parsed JSON with the given keys dropped at every depth."""
    if isinstance(value, dict):
        return {k: without_keys(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [without_keys(v, keys) for v in value]
    return value


def test_no_phone_digits_in_the_tracker_store_or_logs(assistant, new_chat):
    chat = new_chat(f"digits-{uuid.uuid4().hex[:8]}")
    chat.say("查询我的转接进度")
    chat.say("2019003")
    assert "核实通过" in chat.say("尾号2468")
    with sqlite3.connect(assistant.tracker_db) as connection:
        rows = [json.loads(data) for (data,) in connection.execute(
            "SELECT data FROM events WHERE sender_id = ?", (f"rest:{chat.sender}",))]
    users = [e for e in rows if e["event"] == "user"]
    assert "尾号****" in [e["text"] for e in users] and "2019003" in [e["text"] for e in users]
    # Timestamps and intent confidences left out: "2468" can be among their digits.
    stored = json.dumps(without_keys([e for e in rows if e["event"] in ("user", "slot")],
                                     {"timestamp", "confidence"}), ensure_ascii=False)
    assert "2468" not in stored
    logs = "".join(path.read_text("utf-8", "replace") for path in assistant.logs.glob("*.log"))
    assert "尾号2468" not in logs and "2468\"" not in logs
