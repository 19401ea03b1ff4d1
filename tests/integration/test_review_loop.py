"""The help desk teaches the assistant, end to end: ten messages the trained
model misses are sent to the running assistant, labelled on the staff page's
review inbox in a real browser (two clicks or fewer each), exported to
reviewed.yml in a copy of data/, and after `rasa train` on that copy the
retrained assistant answers all ten with the answer of the intent they were
given. (The ten are pinyin and dialect wordings written for this test; they
are in no test file, which the export checks.)"""
import shutil
import subprocess
import sys

import requests
from rasa.shared.core.domain import Domain

from benchmark.local_servers import answers_greeting, running_assistant
from tests.browser.test_webchat import TIMEOUT_MS, chromium, need_browser  # noqa: F401
from tests.integration.conftest import STAFF_TOKEN, Conversation
from tuanjian import settings
from tuanjian.tools.review.export import nlu_examples

MISSES = [
    ("wo de tuan guanxi zenme hai mei shenpi", "faq_approval_pending"),
    ("tuanzhishu zenme gei tongxue ban zhuanchu", "faq_branch_transfer_out"),
    ("biye le tuan guanxi zhuan nali", "faq_graduate_destination"),
    ("shiwu tian mei ren shenpi hui zidong tongguo ma", "faq_auto_approval"),
    ("xinxi tian cuo le zenme chehui", "faq_wrong_info"),
    ("laowu paiqian gong de tuan guanxi zenme ban", "faq_dispatch_worker"),
    ("dangan he tuan guanxi yao yiqi zhuan ma", "faq_relation_vs_archive"),
    ("zhihui tuanjian mima wangji le", "faq_forgot_password"),
    ("俺的团关系咋还没批下来嘞", "faq_approval_pending"),
    # Was "团委电话多少": since the fourth round of voices the model reads it as
    # ask_contact (whom to call about one's own transfer) at 0.93, no miss.
    ("tuanyuanzheng diule zenme bu", "out_of_scope"),
]
DOMAIN = Domain.load(str(settings.DOMAIN_DIR))


def answer_of(intent):
    """The text the assistant answers this intent with (its rule's response)."""
    return DOMAIN.responses[f"utter_{intent}"][0]["text"].strip()


def ask(base, text):
    return Conversation(f"{base}/webhooks/rest/webhook").say(text)


def label_in_the_browser(browser, base):
    """Label each miss on the staff page; the clicks each one took."""
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    # The page counts what the reviewer does: every click, and every choice in a list.
    page.add_init_script("window.reviewerActions = 0;"
                         "['click', 'change'].forEach(function (kind) {"
                         "  document.addEventListener(kind, function () { window.reviewerActions++; }, true); });")
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{base}/webhooks/staff/")
    page.fill("#token", STAFF_TOKEN)
    page.click("#login button[type=submit]")
    page.click("#show-inbox")
    clicks = {}
    for text, intent in MISSES:
        item = page.locator("li.wording").filter(has=page.get_by_text(text, exact=True))
        expect(item).to_have_count(1)
        before = page.evaluate("window.reviewerActions")
        suggestion = item.locator(f'button.suggest[data-intent="{intent}"]')
        if suggestion.count():
            suggestion.click()
        elif intent == "out_of_scope":
            item.get_by_role("button", name="超出范围").click()
        else:
            item.locator("select").click()  # open the list
            item.locator("select").select_option(intent)  # pick the intent
        expect(item).to_have_count(0)  # decided: gone from the inbox
        clicks[text] = page.evaluate("window.reviewerActions") - before
    context.close()
    return clicks, errors


def test_ten_labelled_misses_are_answered_after_export_and_retraining(assistant, chromium, tmp_path):  # noqa: F811
    browser = need_browser(chromium)
    for text, intent in MISSES:
        assert answer_of(intent) not in ask(assistant.base, text), f"not a miss: {text}"

    clicks, errors = label_in_the_browser(browser, assistant.base)
    assert errors == []
    assert len(clicks) == 10 and 1 <= min(clicks.values()) and max(clicks.values()) <= 2, clicks
    inbox = requests.get(f"{assistant.base}/webhooks/staff/review",
                         headers={"Authorization": f"Bearer {STAFF_TOKEN}"}, timeout=30).json()
    shown = {w["text"] for group in inbox["groups"] for w in group["wordings"]}
    assert not shown & {text for text, _ in MISSES}

    data = tmp_path / "data"
    shutil.copytree(settings.ROOT / "data", data)
    out = data / "nlu" / "reviewed.yml"
    export = subprocess.run(
        [sys.executable, "-m", "tuanjian.tools.review", "export", "--out", str(out), "--data", str(data / "nlu"),
         "--backend-db", f"sqlite:///{assistant.logs / 'demo.db'}"],
        cwd=settings.ROOT, capture_output=True, text=True, timeout=600)
    assert export.returncode == 0, export.stderr
    assert f"{out}: 10 examples, 10 new" in export.stdout
    assert sorted(nlu_examples([out])) == sorted(MISSES)

    models = tmp_path / "models"
    train = subprocess.run(
        ["rasa", "train", "--domain", str(settings.DOMAIN_DIR), "--data", str(data), "--config",
         str(settings.CONFIG_FILE), "--out", str(models), "--fixed-model-name", "reviewed", "--quiet"],
        cwd=settings.ROOT, capture_output=True, text=True, timeout=3000)
    assert train.returncode == 0, train.stdout[-2000:] + train.stderr[-2000:]

    with running_assistant(answers_greeting, model=models / "reviewed.tar.gz") as retrained:
        for text, intent in MISSES:
            reply = ask(retrained.base, text)
            assert answer_of(intent) in reply, f"{text!r} ({intent}) got {reply!r}"


def test_the_inbox_reads_the_running_assistants_tracker_store(assistant, new_chat):
    new_chat().say("qing wen zhe ge xitong zenme nong ya")
    inbox = requests.get(f"{assistant.base}/webhooks/staff/review",
                         headers={"Authorization": f"Bearer {STAFF_TOKEN}"}, timeout=30).json()
    assert "qing wen zhe ge xitong zenme nong ya" in [w["text"] for g in inbox["groups"] for w in g["wordings"]]
