import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.fallback import ActionSuggestFaqs
from tests.actions.trackers import build_tracker, latest_message


def tracker_with(text, ranking):
    return build_tracker(latest_message(text, "nlu_fallback", ranking=ranking))


RANKING = [
    {"name": "nlu_fallback", "confidence": 0.6},
    {"name": "faq_approval_pending", "confidence": 0.35},
    {"name": "request_human", "confidence": 0.2},
    {"name": "faq_auto_approval", "confidence": 0.3},
    {"name": "greet", "confidence": 0.1},
    {"name": "check_transfer_status", "confidence": 0.2},
    {"name": "faq_wrong_info", "confidence": 0.05},
]


async def run(text, ranking, domain):
    dispatcher = CollectingDispatcher()
    events = await ActionSuggestFaqs().run(dispatcher, tracker_with(text, ranking), domain)
    return dispatcher.messages, events


async def test_suggests_the_three_likeliest_topics_then_escapes(domain_dict):
    messages, events = await run("那个审批的事", RANKING, domain_dict)
    assert events == []
    assert len(messages) == 1
    assert messages[0]["response"] == "utter_did_you_mean"
    payloads = [b["payload"] for b in messages[0]["buttons"]]
    assert payloads == [
        "/faq_approval_pending",
        "/faq_auto_approval",
        "/check_transfer_status",
        "/deny",
        "/request_human",
    ]


async def test_button_titles_come_from_the_domain(domain_dict):
    messages, _ = await run("那个审批的事", RANKING, domain_dict)
    titles = [b["title"] for b in messages[0]["buttons"]]
    expected = [domain_dict["responses"][f"utter_topic_{p[1:]}"][0]["text"]
                for p in (b["payload"] for b in messages[0]["buttons"])]
    assert titles == expected
    assert all(titles)


async def test_only_escapes_when_nothing_is_suggestable(domain_dict):
    ranking = [{"name": "nlu_fallback", "confidence": 1.0}, {"name": "greet", "confidence": 0.1}]
    messages, _ = await run("嗯", ranking, domain_dict)
    assert [b["payload"] for b in messages[0]["buttons"]] == ["/deny", "/request_human"]


@pytest.mark.parametrize("text", ["", "   ", "😀😀", "？？？", "<p></p>"])
async def test_unreadable_message_asks_for_words(domain_dict, text):
    messages, events = await run(text, RANKING, domain_dict)
    assert [m["response"] for m in messages] == ["utter_empty_message"]
    assert events == []
