"""The export from review decisions to data/nlu/reviewed.yml: what it writes,
what it refuses, and the command on a migrated backend."""
import subprocess
import sys
from datetime import datetime, timezone

import pytest
import yaml
from sqlalchemy.orm import Session

from tuanjian import settings
from tuanjian.backend import db
from tuanjian.backend.models import ReviewMessage
from tuanjian.tools.review.export import build_export, messages_in_test_files, nlu_examples, render

INTENTS = {"faq_forgot_password", "faq_quit_league", "out_of_scope"}
TEST_FILE = """\
version: "3.1"
nlu:
- intent: faq_forgot_password
  examples: |
    - 测试集里的[密码](thing)问题
"""
TEST_STORIES = """\
version: "3.1"
stories:
- story: one
  steps:
  - user: |
      故事里的问题
    intent: faq_quit_league
  - action: utter_faq_quit_league
"""
TRAINING = """\
version: "3.1"
nlu:
- intent: faq_forgot_password
  examples: |
    - 忘记密码了怎么办
- intent: faq_quit_league
  examples: |
    - 我想退团
"""


def labelled(*pairs):
    return [{"text": text, "intent": intent} for text, intent in pairs]


@pytest.fixture
def tests_dir(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_set.yml").write_text(TEST_FILE, "utf-8")
    (tmp_path / "tests" / "stories.yml").write_text(TEST_STORIES, "utf-8")
    return tmp_path / "tests"


@pytest.fixture
def training(tmp_path):
    path = tmp_path / "training.yml"
    path.write_text(TRAINING, "utf-8")
    return nlu_examples([path])


def test_every_test_file_message_is_refused(tests_dir, training):
    tests = messages_in_test_files([tests_dir])
    assert tests == {"测试集里的密码问题", "故事里的问题"}
    export = build_export(labelled(("测试集里的密码问题！", "faq_forgot_password"),
                                   ("故事里的 问题", "faq_quit_league"),
                                   ("密码收不到验证码", "faq_forgot_password")), [], training, tests, INTENTS)
    assert export.in_test_files == ["测试集里的密码问题！", "故事里的 问题"]
    assert export.examples == {"faq_forgot_password": ["密码收不到验证码"]}


def test_a_reviewed_example_that_a_test_file_now_holds_is_taken_out(tests_dir, training):
    export = build_export([], [("故事里的问题", "faq_quit_league"), ("别的问题", "out_of_scope")], training,
                          messages_in_test_files([tests_dir]), INTENTS)
    assert export.in_test_files == ["故事里的问题"] and export.examples == {"out_of_scope": ["别的问题"]}


def test_duplicates_disagreements_digits_and_unknown_intents_are_not_written(training):
    export = build_export(labelled(
        ("忘记密码了，怎么办", "faq_forgot_password"),   # in the training data already
        ("我想退团", "out_of_scope"),                    # the training data says faq_quit_league
        ("我的编号12345678查不到", "faq_forgot_password"),
        ("我的编号&#49;&#50;&#51;&#52;&#53;&#54;查不到", "faq_forgot_password"),  # the normaliser reads these
        ("电话 1 3 8 0 0 1 3 8 0 0 0", "faq_forgot_password"),
        ("老问题", "faq_removed_since"),
        ("[点我](link)", "out_of_scope"),
        ("新的说法", "faq_quit_league"),
        ("新的说法。", "out_of_scope"),                  # the same wording, given another intent
    ), [], training, set(), INTENTS)
    assert export.already_trained == [("忘记密码了，怎么办", "faq_forgot_password")]
    assert [d[:2] for d in export.disagrees] == [("我想退团", "out_of_scope"), ("新的说法。", "out_of_scope")]
    assert export.has_digits == ["我的编号12345678查不到", "我的编号&#49;&#50;&#51;&#52;&#53;&#54;查不到",
                                 "电话 1 3 8 0 0 1 3 8 0 0 0"]
    assert export.unknown_intent == [("老问题", "faq_removed_since")]
    assert export.unwritable == ["[点我](link)"]
    assert export.examples == {"faq_quit_league": ["新的说法"]}


def test_the_file_is_rasa_nlu_yaml_normalised_sorted_and_stable(tmp_path, training):
    export = build_export(labelled(("  密碼   收不到驗證碼 ", "faq_forgot_password"), ("天气怎么样", "out_of_scope"),
                                   ("Ａ密码重置", "faq_forgot_password")), [], training, set(), INTENTS)
    path = tmp_path / "reviewed.yml"
    path.write_text(render(export), "utf-8")
    assert yaml.safe_load(path.read_text("utf-8"))["version"] == "3.1"
    examples = nlu_examples([path])
    assert examples == [("a密码重置", "faq_forgot_password"), ("密码收不到验证码", "faq_forgot_password"),
                        ("天气怎么样", "out_of_scope")]
    again = build_export(labelled(("天气怎么样", "out_of_scope")), examples, training, set(), INTENTS)
    assert render(again) == path.read_text("utf-8") and again.added == []


def decide(session, event_id, text, decision, label=None, note=None):
    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    session.add(ReviewMessage(store="test", event_id=event_id, sender_id="rest:x", text=text, wording=text,
                              reasons="fallback", suggestions=[], said_at=now, decision=decision, label=label,
                              note=note, decided_by="wang", decided_at=now))


def test_the_command_writes_the_file_and_says_what_it_refused(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'backend.db'}")
    db.migrate(engine)
    story = next(iter(messages_in_test_files([settings.ROOT / "tests" / "stories"])))  # a real test-file message
    with Session(engine, future=True) as session, session.begin():
        decide(session, 1, "团员证明在系统哪里开", "intent", "out_of_scope")
        decide(session, 2, story, "intent", "out_of_scope")
        decide(session, 3, "我的编号20190012345咋查", "intent", "check_transfer_status")
        decide(session, 4, "团费标准", "new_topic", note="团费 FAQ")
        decide(session, 5, "随便", "dismissed")
    engine.dispose()
    out = tmp_path / "data" / "reviewed.yml"
    command = [sys.executable, "-m", "tuanjian.tools.review", "export", "--out", str(out),
               "--backend-db", f"sqlite:///{tmp_path / 'backend.db'}"]
    run = subprocess.run(command, cwd=settings.ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert nlu_examples([out]) == [("团员证明在系统哪里开", "out_of_scope")]
    assert "refused, in a test file (never trained on): 1" in run.stdout and story in run.stdout
    assert "20190012345" not in run.stdout and "我的编号***********咋查" in run.stdout
    assert "new topics (add an intent and examples by hand): 1" in run.stdout
    rerun = subprocess.run(command, cwd=settings.ROOT, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0 and f"{out}: 1 examples, 0 new" in rerun.stdout


def test_the_command_on_an_unreachable_backend_is_a_clear_error(tmp_path):
    run = subprocess.run([sys.executable, "-m", "tuanjian.tools.review", "export", "--out", str(tmp_path / "r.yml"),
                          "--backend-db", "postgresql+psycopg2://127.0.0.1:1/none"],
                         cwd=settings.ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and "cannot read the backend database" in run.stderr
    assert not (tmp_path / "r.yml").exists()
