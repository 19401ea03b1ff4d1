"""Reading typed answers for the question asked (tuanjian/backend/guide/answers.yml)."""
import pytest

from tuanjian.backend.guide.answers import DONT_KNOW, chinese_number, load_answers, over_limit_by_birth_year
from tuanjian.text import normalize

READER = load_answers()


def read(fact, text, asked=True):
    return READER.read(fact, normalize(text), 2026, 28, asked)


@pytest.mark.parametrize("text, value", [
    ("28岁", True), ("27岁", False), ("今年28", True), ("今年27了", False),  # the boundary, both ways
    ("未满28周岁", False), ("已满28周岁", True), ("刚满28", True), ("不到28岁", False),
    ("满28了吗？还没", False),  # an echoed question says nothing
    ("1997年生", True), ("1999年出生", False), ("1998年出生", None),  # 28 this year: birthday unknown
    ("三十岁", True), ("十九岁", False), ("26", False), ("28", True),
])
def test_age_answers_at_the_limit(text, value):
    assert read("over_28", text) is value


def test_a_bare_yes_or_a_bare_number_counts_only_when_that_question_was_asked():
    assert read("over_28", "是", asked=False) is None and read("over_28", "是") is True
    assert read("over_28", "26", asked=False) is None
    assert read("over_28", "我26岁", asked=False) is False  # an age is a fact whatever was asked


@pytest.mark.parametrize("fact, text", [
    ("over_28", "不知道"), ("party_member", "我也不清楚"), ("holds_league_post", "记不清了"),
])
def test_not_knowing(fact, text):
    assert read(fact, text) == DONT_KNOW


@pytest.mark.parametrize("fact, text", [
    ("over_28", "我29岁，没满28"), ("holds_league_post", "担任，不担任"), ("party_member", "群众，党员"),
])
def test_both_answers_at_once_are_no_answer(fact, text):
    assert read(fact, text) is None


def test_a_negation_turns_a_phrase_round_and_a_negated_no_is_unclear():
    assert read("holds_league_post", "我不是团支书") is False
    assert read("holds_league_post", "并不是没有担任") is None
    assert read("employer_has_league_org", "公司还没有建立") is False


def test_unknown_questions_have_no_answers():
    assert read("graduate_situation", "是") is None


def test_helpers():
    assert [chinese_number(n) for n in ("十", "十九", "二十", "二十八", "三十一")] == [10, 19, 20, 28, 31]
    assert over_limit_by_birth_year(1998, 2026, 28) is None
    assert over_limit_by_birth_year(1997, 2026, 28) is True
    assert over_limit_by_birth_year(1999, 2026, 28) is False


@pytest.mark.parametrize("fact, text, value", [
    # Not sure, or hedged: asked again.
    ("employer_has_league_org", "不是很清楚有没有团组织", DONT_KNOW),
    ("employer_has_league_org", "没问过有没有团支部", DONT_KNOW),
    ("employer_has_league_org", "好像有的", DONT_KNOW),
    ("employer_has_league_org", "应该没有团组织", DONT_KNOW),
    ("employer_has_league_org", "有的吧", DONT_KNOW),
    # Not yet 28, said with the number after or a date ahead.
    ("over_28", "还差两个月满28", False), ("over_28", "下个月满28", False), ("over_28", "快满28了", False),
    ("over_28", "明年满28", False), ("over_28", "28岁还没到", False), ("over_28", "28岁不到", False),
    ("over_28", "98", None),  # an age or a birth year: asked again
    ("over_28", "96年", True), ("over_28", "没想到已经满28了", True), ("over_28", "不知不觉满28了", True),
    # A post held now, not one held before or outside the league.
    ("holds_league_post", "我29，不过是团支书", True),
    ("holds_league_post", "以前是支书现在不是", False),
    ("holds_league_post", "之前是团支书，已经不干了", None),  # the past and "no": asked again
    ("holds_league_post", "毕业前是团支书", None),
    ("holds_league_post", "我是村支书", None), ("holds_league_post", "党支部书记", None),
    ("holds_league_post", "在公司做兼职", None),
    # A probationary Party member is a Party member.
    ("party_member", "还没转正", True), ("party_member", "我是预备党员还没转正", True),
    ("party_member", "还不是正式党员", True),
])
def test_answers_an_outside_reviewer_tried(fact, text, value):
    assert read(fact, text) == value if isinstance(value, str) else read(fact, text) is value


@pytest.mark.parametrize("text", ["我工作刚满一年，公司没有团组织", "合同满了 公司没团委", "试用期早过了",
                                  "不是党员，刚满25"])
def test_age_phrases_without_the_number_count_only_for_the_age_question(text):
    assert read("over_28", text, asked=False) in (None, False)
