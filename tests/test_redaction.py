"""What of a verification turn may be stored."""
import json

import pytest
from rasa.shared.core.events import ActiveLoop, UserUttered

from tuanjian.redaction import mask_credentials, mask_digit_runs, redact_events, verification_turns


def user(text, intent="inform", entities=()):
    return {"event": "user", "text": text,
            "parse_data": {"text": text, "intent": {"name": intent},
                           "entities": [{"entity": e, "value": v} for e, v in entities]}}


def test_every_digit_but_the_member_number_is_masked():
    assert mask_credentials("2019001 1234") == "2019001 ****"
    assert mask_credentials("尾号１２３４，编号2019001") == "尾号****，编号2019001"
    assert mask_credentials("1 2 3 4") == "* * * *"
    assert mask_credentials("2019001 2019002") == "2019001 *******"  # only the first long run stays


def test_turns_the_form_handled_are_verification_turns():
    events = [user("查进度", "check_transfer_status"), {"event": "action", "name": "verification_form"},
              {"event": "active_loop", "name": "verification_form"}, user("1234"),
              {"event": "active_loop", "name": None}, user("2024年毕业去哪", "faq_graduate_destination"),
              user("尾号5678", entities=[("phone_last4", "5678")])]
    assert verification_turns(events) == {0, 3, 6}
    redacted = redact_events(events)
    assert redacted[3]["text"] == "****" and redacted[3]["parse_data"]["text"] == "****"
    assert redacted[5]["text"] == "2024年毕业去哪"  # not a verification turn: left alone
    assert redacted[6]["parse_data"]["entities"][0]["value"] == "****"
    assert events[3]["text"] == "1234"  # the input is not changed


def test_a_credential_slot_is_masked_anywhere():
    assert redact_events([{"event": "slot", "name": "phone_last4", "value": "1234"}])[0]["value"] == "****"


def test_the_tracker_store_writes_the_masked_turn(tmp_path):
    import asyncio
    import sqlite3

    from rasa.shared.core.domain import Domain
    from rasa.shared.core.trackers import DialogueStateTracker

    from tuanjian.rasa_server.tracker_store import RedactingSQLTrackerStore

    store = RedactingSQLTrackerStore(domain=Domain.empty(), dialect="sqlite", db=str(tmp_path / "t.db"))
    tracker = DialogueStateTracker.from_events("rest:x", [ActiveLoop("verification_form")])
    asyncio.run(store.save(tracker))
    tracker.update(UserUttered("2019001 1234", {"name": "inform"},
                               [{"entity": "phone_last4", "value": "1234"}]))
    asyncio.run(store.save(tracker))
    with sqlite3.connect(tmp_path / "t.db") as connection:
        rows = [json.loads(row[0]) for row in connection.execute("SELECT data FROM events")]
    # Timestamps left out: "1234" can be among their digits (it was, once).
    data = json.dumps([{k: v for k, v in row.items() if k != "timestamp"} for row in rows], ensure_ascii=False)
    assert "2019001 ****" in data and "1234" not in data


def test_digits_of_any_script_and_whole_phone_numbers_are_masked():
    assert mask_credentials("2019001 ①②③④") == "2019001 ****"
    assert mask_credentials("2019001 𝟏𝟐𝟑𝟒") == "2019001 ****"
    assert mask_credentials("13812345678") == "*" * 11


def test_whole_id_numbers_are_masked_and_never_kept_as_the_member_number():
    assert mask_credentials("110105199001011234") == "*" * 18
    assert mask_credentials("11010519900101123X 2019001") == "*" * 17 + "X 2019001"
    assert mask_credentials("13812345678 2019001 1234") == "*" * 11 + " 2019001 ****"


def test_digits_the_normaliser_joins_are_masked_as_it_reads_them():
    # Split by an invisible character, or written as an HTML escape: the classifier
    # reads a whole phone number, so no run of it is kept as "the member number".
    assert mask_credentials("138\u200b12345678") == "***\u200b********"
    assert mask_credentials("&#49;3812345678") == "&#**;**********"
    assert mask_credentials("+8613812345678 1234") == "+" + "*" * 13 + " ****"
    assert mask_credentials("110105900101123") == "*" * 15
    assert mask_credentials("编号２０１９００１ 1234") == "编号２０１９００１ ****"


@pytest.mark.parametrize("text, shown", [
    ("我的编号12345678查不到", "我的编号********查不到"),
    ("手机尾号１２３４", "手机尾号****"),                        # full-width
    ("138 0013 8000", "*** **** ****"),                        # grouped by spaces
    ("138-0013-8000", "***-****-****"),
    ("138 - 0013", "*** - ****"),
    ("138\uff0d0013\uff0d8000", "***\uff0d****\uff0d****"),     # full-width hyphens
    ("138\u202f0013\u20078000", "***\u202f****\u2007****"),     # narrow and figure spaces
    ("2019/06/15", "****/**/**"),
    ("电话 1 3 8 0 0 1 3 8 0 0 0", "电话 * * * * * * * * * * *"),  # one digit at a time
    ("12\u200b34", "**\u200b**"),                              # an invisible character inside
    ("我2019年入团", "我****年入团"),                            # a year is masked too: it could be digits
    ("第3条, 12 点", "第3条, 12 点"),                            # short numbers stay
    ("1 2 3", "1 2 3"),
])
def test_the_inbox_masks_every_number_of_four_digits_or_more(text, shown):
    assert mask_digit_runs(text) == shown
