"""Handing over to a person and back, over REST and the staff API."""
import requests

from tests.integration.conftest import STAFF_TOKEN


def staff(webhook, method, path, **kwargs):
    url = webhook.replace("/webhooks/rest/webhook", f"/webhooks/staff{path}")
    return requests.request(method, url, headers={"Authorization": f"Bearer {STAFF_TOKEN}"},
                            timeout=30, **kwargs)


def test_ticket_pause_staff_reply_close_resume(webhook, new_web_chat):
    chat = new_web_chat()
    chat.say("广东的组织搜不到怎么办")
    opened = chat.say("转人工")
    assert "工单号" in opened
    ticket = int(opened.split("工单号：")[1].split("。")[0].split("\n")[0])
    # Paused: the assistant answers nothing but that staff will reply.
    waiting = chat.say("忘记密码怎么办")
    assert "等待工作人员处理" in waiting and "密码重置码" not in waiting
    detail = staff(webhook, "GET", f"/tickets/{ticket}").json()
    assert detail["question"] == "广东的组织搜不到怎么办"
    assert [m["text"] for m in detail["messages"]] == ["忘记密码怎么办"]
    reply = {"text": "您好，请手动输入组织名称。"}
    assert staff(webhook, "POST", f"/tickets/{ticket}/reply", json=reply).status_code == 201
    inbox = requests.get(webhook.replace("/webhooks/rest/webhook", "/webhooks/staff/inbox"),
                         headers={"X-Chat-Session": chat.session}, timeout=30).json()
    assert inbox["replies"] == ["您好，请手动输入组织名称。"]
    assert staff(webhook, "POST", f"/tickets/{ticket}/close").json()["resumed"] is True
    assert "密码重置码" in chat.say("忘记密码怎么办")


def test_staff_api_needs_the_token(webhook):
    url = webhook.replace("/webhooks/rest/webhook", "/webhooks/staff/tickets")
    reply = requests.get(url, headers={"Authorization": "Bearer wrong"}, timeout=30)
    assert reply.status_code == 401 and reply.json() == {"error": "unauthorized"}
