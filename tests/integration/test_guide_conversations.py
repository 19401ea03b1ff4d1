"""The destination guide over REST, end to end."""
import json


def button(intent, **entities):
    return f"/{intent}{json.dumps(entities, ensure_ascii=False)}" if entities else f"/{intent}"


def test_free_text_facts_then_buttons_then_recommendation_with_province_advice(new_chat):
    chat = new_chat()
    assert "毕业后的去向" in chat.say("帮我判断该转到哪")
    assert "入党" in chat.say("我在深圳一家私企上班，公司没有团组织")
    assert "28周岁" in chat.say(button("inform", party_member="否"))
    reply = chat.say(button("inform", guide_answer="否"))
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
    assert "建议转入：用工单位的团组织" in chat.say(button("inform", guide_answer="否"))


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


AUTOMATIC_LEAVING = "自动退团"


def test_every_question_answered_in_typed_words_under_28(new_chat):
    chat = new_chat()
    chat.say("帮我判断该转到哪")
    assert "工作单位建立团组织" in chat.say("已就业")
    assert "入党" in chat.say("没有建立")
    assert "28周岁" in chat.say("群众")
    reply = chat.say("未满28周岁")  # the option's own title, typed
    assert "建议转入：工作单位所在地的乡镇街道“学社衔接临时团支部”" in reply
    assert AUTOMATIC_LEAVING not in reply


def test_over_28_without_a_post_leaves_automatically_typed(new_chat):
    chat = new_chat()
    chat.say("帮我判断该转到哪")
    chat.say("我考上研究生了")
    assert "28周岁" in chat.say("不是党员")
    assert "担任" in chat.say("已满28周岁")
    assert AUTOMATIC_LEAVING in chat.say("不担任")


def test_28_with_a_post_keeps_membership_and_27_is_not_asked_about_posts(new_chat):
    chat = new_chat()
    chat.say("帮我判断该转到哪")
    chat.say("升学")
    chat.say("没入党")
    assert "担任" in chat.say("今年28岁")  # the boundary: 28 has reached it
    reply = chat.say("我是团支书")
    assert "建议转入：录取学校团组织" in reply and AUTOMATIC_LEAVING not in reply
    chat = new_chat()
    chat.say("帮我判断该转到哪")
    chat.say("升学")
    chat.say("没入党")
    reply = chat.say("27岁")
    assert "建议转入：录取学校团组织" in reply and "担任" not in reply


def test_an_unclear_age_is_asked_again_never_concluded(new_chat):
    chat = new_chat()
    chat.say("帮我判断该转到哪")
    chat.say("参军入伍")
    chat.say("群众")
    reply = chat.say("98年的")  # 28 this year: the birthday may not have passed
    assert "没能理解" in reply and "建议" not in reply and AUTOMATIC_LEAVING not in reply
    assert "不想替您猜" in chat.say("不知道")


def test_a_reserve_party_member_follows_the_party_relation(new_chat):
    chat = new_chat()
    chat.say("帮我判断该转到哪")
    chat.say("已就业")
    chat.say("有团组织")
    chat.say("我是预备党员")
    assert "一般应与党组织关系去向保持一致" in chat.say("26岁")


def test_a_situation_stated_without_a_question_starts_the_guide_with_it(new_chat):
    chat = new_chat()
    reply = chat.say("我毕业后考上研究生了")
    assert "请问您想办理什么" not in reply
    assert "入党" in reply and "毕业后的去向" not in reply  # the situation is not asked again


def test_a_dispatch_worker_stating_their_situation_gets_an_answer_not_the_menu(new_chat):
    reply = new_chat().say("我是派遣制的，公司没有团支部")
    assert "请问您想办理什么" not in reply
    # Either FAQ 13, which settles it, or the guide with both facts taken (next: the Party question).
    assert "劳务派遣单位的团组织" in reply or ("入党" in reply and "用工单位" not in reply)


def test_faq_6_answers_the_part_that_was_asked_first(new_chat):
    reply = new_chat().say("我已经找到工作了，可是单位没有团组织，团关系该转到哪里？")
    assert reply.startswith("若工作单位尚未建立团组织，应转接至工作单位所在地的乡镇街道“学社衔接临时团支部”。")
    reply = new_chat().say("找到工作了能把团关系转回户籍地吗")
    assert reply.startswith("不可以。")
