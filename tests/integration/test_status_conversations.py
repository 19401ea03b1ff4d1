"""Whole conversations over REST: every demo member asks for their own request."""
import pytest


def verify(conversation, number, last4):
    assert "团员编号" in conversation.say("帮我查一下我的转接进度")
    assert "后四位" in conversation.say(number)
    return conversation.say(last4)


@pytest.mark.parametrize(
    "number, last4, expected",
    [
        ("2019001", "1234", ["张*", "第 3 步（共 4 步）", "接收方团支部", "杭州云帆科技有限公司团支部",
                             "还有 11 天", "0571-87000201", "撤回"]),
        ("2019002", "5678", ["李*", "系统终止", "重新发起团关系转接", "东湖街道学社衔接临时团支部", "025-83000301"]),
        ("2019003", "2468", ["王*", "转接已完成", "北京星河信息技术有限公司团支部", "北京", "微信公众号团员报到"]),
        ("2019004", "1357", ["赵*", "第 1 步（共 4 步）", "转出方团支部", "还有 13 天", "撤回"]),
        ("2019005", "9753", ["陈*", "还没有您的团组织关系转接申请"]),
        ("2019006", "8642", ["刘*", "各级审核均已通过", "团委", "分配团支部", "0571-87000200"]),
        ("2019007", "1122", ["孙*", "第 3 步（共 4 步）", "还有 14 天", "1 步因15天内未审核，已由系统默认审核通过"]),
    ],
)
def test_every_demo_member_gets_their_own_explanation(new_chat, number, last4, expected):
    reply = verify(new_chat(), number, last4)
    for fact in expected:
        assert fact in reply, (fact, reply)


def test_both_in_one_message_and_follow_ups(new_chat):
    chat = new_chat()
    reply = chat.say("查询我的转接进度，编号２０１９００１ 尾号１２３４")
    assert "还有 11 天" in reply
    assert "0571-87000201" in chat.say("那我该找谁")
    assert "11 天" in chat.say("还要等多久")
    assert "撤回" in chat.say("那我能撤回吗")


def test_wrong_number_and_wrong_digits_get_the_same_reply(new_chat):
    wrong_number = verify(new_chat(), "2099999", "1234")
    wrong_digits = verify(new_chat(), "2019001", "9999")
    assert wrong_number == wrong_digits and "未能核实" in wrong_number


def test_five_failures_lock_and_right_digits_then_do_not_help(new_chat, unlock_after):
    chat = new_chat()
    chat.say("帮我查一下我的转接进度")
    for _ in range(4):
        chat.say("2019001 0000")
    assert "暂停" in chat.say("2019001 0000")
    assert "团员编号" in chat.say("查一下我的进度")  # the lock is the number's, not the conversation's
    reply = chat.say("2019001 1234")
    assert "暂停" in reply and "张*" not in reply


def test_verification_belongs_to_one_conversation(new_chat):
    verify(new_chat("member-a"), "2019001", "1234")
    other = new_chat("member-b")
    reply = other.say("帮我查一下我的转接进度")
    assert "团员编号" in reply and "张*" not in reply


@pytest.mark.parametrize("bad", ["2019OO1", "'; DROP TABLE members; --", "9" * 1000, "abc"])
def test_malformed_member_numbers_get_a_clear_prompt(new_chat, bad):
    chat = new_chat()
    chat.say("帮我查一下我的转接进度")
    reply = chat.say(bad)
    assert "团员编号" in reply and "张" not in reply


def test_a_question_during_verification_is_answered_then_asked_again(new_chat):
    chat = new_chat()
    chat.say("帮我查一下我的转接进度")
    reply = chat.say("忘记密码怎么办")
    assert "密码重置码" in reply and "团员编号" in reply
    assert "后四位" in chat.say("2019004")
    assert "第 1 步（共 4 步）" in chat.say("1357")


def test_a_member_number_out_of_the_blue_starts_verification(new_chat):
    chat = new_chat()
    assert "后四位" in chat.say("2019006")
    assert "分配团支部" in chat.say("8642")


def test_other_credentials_verify_anew(new_chat):
    chat = new_chat()
    verify(chat, "2019001", "1234")
    assert "赵*" in chat.say("查询进度 2019004 1357")
    assert "未能核实" in chat.say("查询进度 2019003 0000")
    assert "团员编号" in chat.say("查一下我的进度")
