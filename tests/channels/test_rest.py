import json

import pytest

from bot.channels.rest import MAX_MESSAGE_CHARS, body_problem


def body(**payload):
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


@pytest.mark.parametrize(
    "raw, problem",
    [
        (b"{not json", "UTF-8 encoded JSON"),
        ("{\"message\": \"忘记密码\"}".encode("gbk"), "UTF-8 encoded JSON"),
        (b"", "UTF-8 encoded JSON"),
        (b"[1, 2]", "JSON object"),
        (body(sender="a"), "'message' must be a string"),
        (body(sender="a", message=None), "'message' must be a string"),
        (body(sender="a", message=42), "'message' must be a string"),
        (body(sender="a", message="转" * (MAX_MESSAGE_CHARS + 1)), "at most"),
        (body(sender="", message="你好"), "'sender'"),
        (body(sender=7, message="你好"), "'sender'"),
        (body(sender="s" * 101, message="你好"), "'sender'"),
        (body(message="你好"), "'sender'"),  # no shared "default" conversation
        (body(sender="a", message="你好", metadata=[1]), "'metadata'"),
    ],
)
def test_bad_bodies_are_named(raw, problem):
    assert problem in body_problem(raw)


@pytest.mark.parametrize(
    "payload",
    [
        {"sender": "a", "message": "你好"},
        {"sender": "a", "message": ""},
        {"sender": "a", "message": "转" * 5000},
        {"sender": "a", "message": "<script>alert(1)</script>", "metadata": {"k": 1}},
    ],
)
def test_good_bodies_pass(payload):
    assert body_problem(body(**payload)) is None
