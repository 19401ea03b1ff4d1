"""Whatever a member sends, the assistant answers politely and never echoes markup."""
import uuid

import pytest
import requests


def say(url, message):
    reply = requests.post(url, json={"sender": uuid.uuid4().hex, "message": message}, timeout=30)
    assert reply.status_code == 200
    return reply.json()


def texts(replies):
    return "\n".join(r.get("text", "") for r in replies)


@pytest.fixture(scope="module")
def responses(domain_dict):
    return {name: variants[0]["text"] for name, variants in domain_dict["responses"].items()}


@pytest.mark.parametrize("message", ["", "   ", "😀😀😀", "？？？！！！", "。。。", "\x00\x01", "<p></p>"])
def test_nothing_readable_gets_asked_for_words(webhook, responses, message):
    replies = say(webhook, message)
    assert texts(replies) == responses["utter_empty_message"]
    assert replies[0]["buttons"]


@pytest.mark.parametrize(
    "message",
    ["转" * 5000, "<script>alert('x')</script>", "<img src=x onerror=alert(1)>你好",
     "'; DROP TABLE members; --", "asdf qwer zxcv", "my password 忘了 how to reset"],
)
def test_odd_messages_get_a_reply_without_markup(webhook, message):
    replies = say(webhook, message)
    assert replies and all(r.get("text") for r in replies)
    assert "<" not in texts(replies) and "alert" not in texts(replies)


def test_markup_around_a_question_still_answers_it(webhook, responses):
    assert texts(say(webhook, "<b>忘记密码</b>怎么办")) == responses["utter_faq_forgot_password"]


def test_mixed_english_and_chinese(webhook, responses):
    assert texts(say(webhook, "zhtj密码忘了 how to reset")) == responses["utter_faq_forgot_password"]


@pytest.mark.parametrize(
    "body, problem",
    [(b"{not json", "JSON"), (b'{"sender": "a"}', "'message'"), (b'{"message": 5}', "'message'")],
)
def test_malformed_requests_get_a_clear_400(webhook, body, problem):
    reply = requests.post(webhook, data=body, headers={"Content-Type": "application/json"}, timeout=30)
    assert reply.status_code == 400
    assert problem in reply.json()["error"]
