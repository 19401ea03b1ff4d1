"""The answers are faithful to the seed and every referenced response exists."""
import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Facts each answer must carry word for word, as the seed writes them
# (the seed's stray spaces and line breaks aside).
SEED_FACTS = {
    "faq_forgot_password": ["密码重置码", "钥匙小图标", "忘记密码", "本级或直属上级组织管理员"],
    "faq_transfer_terminated": ["系统终止", "重新发起团关系转接", "转入组织"],
    "faq_wrong_info": ["在接收的团支部审核通过前", "撤回", "退回"],
    "faq_approval_pending": ["4个组织", "转出方", "接收方"],
    "faq_special_province": ["北京", "广东", "福建", "手动输入", "微信公众号"],
    "faq_employed_graduate": ["不可以", "未就业", "含自主创业", "“学社衔接临时团支部”", "户籍地"],
    "faq_relation_vs_archive": ["不需要完全一致", "入团志愿书", "团员档案"],
    "faq_party_member_transfer": ["《团章》", "二十八周岁", "28周岁", "保留团籍"],
    "faq_party_member_destination": ["团组字〔2019〕12号", "一般应与党组织关系去向保持一致"],
    "faq_branch_transfer_out": ["管理中心—业务办理—组织关系转接办理—办理转出", "分配新成员加入的团支部"],
    "faq_general_branch_transfer_out": [
        "管理中心-业务办理-组织关系接转办理-组织关系批量接转/办理转出",
        "最多30人",
        "无需审批",
    ],
    "faq_online_offline": ["团组字〔2019〕12号", "中青发〔2016〕6号", "参军入伍",
                           "不能以线下团组织关系转接替代线上转接"],
    "faq_dispatch_worker": ["用工单位", "劳务派遣单位", "“学社衔接临时团支部”"],
    "faq_deleted_by_mistake": ["团员个人账号", "办理转出"],
    "faq_quit_league": ["不可以", "28周岁", "自动退团"],
    "faq_graduate_destination": [
        "录取学校团组织",
        "派出单位的团组织",
        "所在部队团组织",
        "“学社衔接临时团支部”",
        "校团委审批",
        "求学除外",
    ],
    "faq_auto_approval": ["15天", "默认审核通过"],
}


@pytest.fixture(scope="module")
def responses(domain_dict):
    return domain_dict["responses"]


def answer(responses, intent):
    return responses[f"utter_{intent}"][0]["text"]


def squeeze(text):
    return re.sub(r"\s+", "", text)


@pytest.mark.parametrize("intent, facts", SEED_FACTS.items())
def test_answer_quotes_the_seed(responses, seed_text, intent, facts):
    text = answer(responses, intent)
    for fact in facts:
        assert fact in squeeze(seed_text), f"{fact!r} is not in the seed"
        assert fact in text, f"{intent} lacks {fact!r}"


@pytest.mark.parametrize("intent", SEED_FACTS)
def test_answer_has_no_number_the_seed_lacks(responses, seed_text, intent):
    seed_numbers = set(re.findall(r"\d+", seed_text))
    for number in re.findall(r"\d+", answer(responses, intent)):
        assert number in seed_numbers, f"{intent}: {number} is not in the seed"


@pytest.mark.parametrize("intent", SEED_FACTS)
def test_answer_fits_a_phone_screen(responses, intent):
    paragraphs = answer(responses, intent).split("\n")
    assert max(len(p) for p in paragraphs) <= 160


@pytest.mark.parametrize(
    "intent, payload",
    [
        ("faq_approval_pending", "/check_transfer_status"),
        ("faq_auto_approval", "/check_transfer_status"),
        ("faq_employed_graduate", "/start_destination_guide"),
        ("faq_dispatch_worker", "/start_destination_guide"),
        ("faq_graduate_destination", "/start_destination_guide"),
    ],
)
def test_next_step_buttons(responses, intent, payload):
    payloads = [b["payload"] for b in responses[f"utter_{intent}"][0].get("buttons", [])]
    assert payload in payloads


def test_every_button_targets_a_known_intent(responses, domain_dict):
    intents = set(domain_dict["intents"]) if isinstance(domain_dict["intents"][0], str) else {
        next(iter(i)) if isinstance(i, dict) else i for i in domain_dict["intents"]
    }
    for name, variants in responses.items():
        for button in variants[0].get("buttons", []):
            intent = button["payload"].lstrip("/").split("{", 1)[0]  # /inform{"entity": ...}
            assert intent in intents, name


def test_every_response_named_in_code_and_rules_exists(root, responses):
    used = set()
    for path in [*root.glob("actions/**/*.py"), *root.glob("data/**/*.yml")]:
        used |= set(re.findall(r"\butter_[a-z_]+\b", path.read_text("utf-8")))
    # Prefixes completed at run time (utter_topic_<intent>) are not names.
    used = {name for name in used if not name.endswith("_")} - {"utter_message"}
    assert sorted(used - set(responses)) == []


def docstrings(tree):
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.body and isinstance(node.body[0], ast.Expr):
                yield node.body[0].value


def test_no_chinese_text_in_python(root):
    """User-facing Chinese lives in the domain; reply code may only mention it in docstrings.

    (tuanjian/backend holds data, not replies: organisation levels and demo names.)"""
    han = re.compile(r"[\u4e00-\u9fff]")
    offenders = []
    code = [*root.glob("actions/**/*.py"), *root.glob("tuanjian/*.py"), *root.glob("tuanjian/rasa_server/**/*.py")]
    for path in code:
        tree = ast.parse(path.read_text("utf-8"))
        skip = {id(d) for d in docstrings(tree)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if id(node) not in skip and han.search(node.value):
                    offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_faq_6_for_a_question_about_the_employers_organisation_starts_with_that_answer(responses, seed_text):
    variant = responses["utter_faq_employed_graduate_org_first"][0]["text"]
    paragraphs = [p for p in variant.split("\n") if p.strip()]
    assert paragraphs[0].startswith("若工作单位尚未建立团组织")
    seed = squeeze(seed_text)
    for paragraph in paragraphs:  # every sentence the seed's own, in full
        for sentence in filter(None, re.split(r"(?<=[。；])", squeeze(paragraph))):
            assert sentence.rstrip("。；") in seed, sentence
    original = answer(responses, "faq_employed_graduate")
    for fact in SEED_FACTS["faq_employed_graduate"][1:]:  # all but the "不可以" that opens the original
        assert fact in variant
    assert set(squeeze(original).replace("不可以。", "", 1).split("。")) == set(squeeze(variant).split("。"))
