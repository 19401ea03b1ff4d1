"""The destination guide over REST, end to end."""
import json


def button(intent, **entities):
    return f"/{intent}{json.dumps(entities, ensure_ascii=False)}" if entities else f"/{intent}"


def test_free_text_facts_then_buttons_then_recommendation_with_province_advice(new_chat):
    chat = new_chat()
    assert "毕业后的去向" in chat.say("帮我判断该转到哪")
    assert "入党" in chat.say("我在深圳一家私企上班，公司没有团组织")
    assert "28周岁" in chat.say(button("inform", party_member="否"))
    reply = chat.say(button("deny"))
    assert "建议转入：工作单位所在地的乡镇街道“学社衔接临时团支部”" in reply
    assert "团组字〔2019〕12号" in reply and "未就业" in reply
    assert "转入组织在广东" in reply and "微信公众号团员报到" in reply


def test_correction_changes_the_next_question(new_chat):
    chat = new_chat()
    chat.say("帮我判断该转到哪")
    assert "工作单位建立团组织" in chat.say(button("inform", graduate_situation="就业"))
    assert "用工单位" in chat.say("不对，我是劳务派遣")
    assert "入党" in chat.say(button("inform", league_org="有"))
    chat.say(button("inform", party_member="否"))
    assert "建议转入：用工单位的团组织" in chat.say(button("deny"))


def test_a_faq_mid_way_is_answered_and_the_guide_goes_on(new_chat):
    chat = new_chat()
    chat.say("帮我判断该转到哪")
    reply = chat.say("忘记密码怎么办")
    assert "密码重置码" in reply and "毕业后的去向" in reply
    assert "入党" in chat.say(button("inform", graduate_situation="升学"))


def test_stop(new_chat):
    chat = new_chat()
    chat.say("帮我判断该转到哪")
    assert "已停止" in chat.say("算了")


def test_nonsense_twice_asked_again_then_a_person_is_offered(new_chat):
    chat = new_chat()
    chat.say("帮我判断该转到哪")
    assert "没能理解" in chat.say("asdfgh")
    assert "没能理解" in chat.say("qwerty")
    reply = chat.say("zxcvbn")
    assert "转人工" in reply or "没能弄清" in reply
    assert "建议转入" not in reply


def test_contradictory_facts_are_asked_again(new_chat):
    chat = new_chat()
    chat.say("帮我判断该转到哪")
    reply = chat.say("我在读研也在上班")
    assert "不止一种去向" in reply and "建议转入" not in reply
