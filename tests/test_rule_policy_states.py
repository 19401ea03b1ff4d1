"""The rule policy's featurizer builds, for a prediction, the same last states
Rasa's builds from the whole conversation: slots set long ago, a loop, a
restart and a reverted message included."""
import json
import tarfile

import pytest
from rasa.core.featurizers.tracker_featurizers import MaxHistoryTrackerFeaturizer, TrackerFeaturizer
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    BotUttered,
    Restarted,
    SlotSet,
    UserUtteranceReverted,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from tests.test_kept_tracker import CONVERSATIONS, count_replays
from tuanjian import settings
from tuanjian.rasa_server.policies.rules import RecentStatesFeaturizer, RecentStatesRulePolicy
from tuanjian.rasa_server.tracker import KeptTracker

DOMAIN = Domain.load(str(settings.ROOT / "domain"))


def faq_turn(number):
    return [ActionExecuted("action_listen"),
            UserUttered(f"问题{number}", {"name": "faq_forgot_password", "confidence": 1.0}),
            ActionExecuted("utter_faq_forgot_password"), BotUttered(f"答{number}")]


def long_conversation():
    events = [ActionExecuted("action_session_start"), ActionExecuted("action_listen"),
              UserUttered("查进度", {"name": "check_transfer_status", "confidence": 1.0}),
              ActionExecuted("verification_form"), ActiveLoop("verification_form"),
              SlotSet("requested_slot", "member_number"),
              ActionExecuted("action_listen"), UserUttered("2019001 1234", {"name": "inform", "confidence": 1.0}),
              ActionExecuted("verification_form"), SlotSet("is_verified", True), ActiveLoop(None),
              SlotSet("requested_slot", None), ActionExecuted("action_transfer_status"), BotUttered("进度")]
    for number in range(40):
        events += faq_turn(number)
    events += [ActionExecuted("action_listen"), UserUttered("乱码", {"name": "nlu_fallback", "confidence": 0.2}),
               UserUtteranceReverted()]
    for number in range(40, 45):
        events += faq_turn(number)
    events += [ActionExecuted("action_listen"),
               UserUttered("转人工", {"name": "request_human", "confidence": 1.0})]
    return DialogueStateTracker.from_events("rest:long", events, DOMAIN.slots)


@pytest.mark.parametrize("last", [1, 3, 6, 20])
def test_the_last_states_are_rasas(last):
    tracker = long_conversation()
    everything = MaxHistoryTrackerFeaturizer._create_states(tracker, DOMAIN)
    featurizer = RecentStatesFeaturizer(state_featurizer=None, max_history=None)
    featurizer.last_states = last
    recent = featurizer._create_states(tracker, DOMAIN)
    assert recent == everything[-last:]
    # A slot set at the start is still in the last state.
    assert recent[-1]["slots"]["is_verified"] == (1.0, 1.0)  # set, and true


def test_a_short_conversation_and_training_get_every_state():
    tracker = DialogueStateTracker.from_events("rest:short", faq_turn(0), DOMAIN.slots)
    featurizer = RecentStatesFeaturizer(state_featurizer=None, max_history=None)
    everything = MaxHistoryTrackerFeaturizer._create_states(tracker, DOMAIN)
    featurizer.last_states = 10
    assert featurizer._create_states(tracker, DOMAIN) == everything
    featurizer.last_states = None  # outside a prediction
    assert featurizer._create_states(long_conversation(), DOMAIN) == MaxHistoryTrackerFeaturizer._create_states(
        long_conversation(), DOMAIN)


def test_a_restart_starts_the_states_again():
    events = faq_turn(0) + [ActionExecuted("action_restart"), Restarted()] + faq_turn(1) + faq_turn(2)
    tracker = DialogueStateTracker.from_events("rest:restart", events, DOMAIN.slots)
    featurizer = RecentStatesFeaturizer(state_featurizer=None, max_history=None)
    featurizer.last_states = 2
    assert featurizer._create_states(tracker, DOMAIN) == MaxHistoryTrackerFeaturizer._create_states(
        tracker, DOMAIN)[-2:]


def test_the_policy_keeps_one_state_more_than_its_longest_rule():
    policy = RecentStatesRulePolicy.__new__(RecentStatesRulePolicy)
    policy.lookup = {"rules": {'[{"prev_action": {"action_name": "action_listen"}}]': "utter_greet",
                               '[{}, {"prev_action": {"action_name": "action_listen"}}, {}]': "utter_x"},
                     "rules_for_loop_unhappy_path": {}}
    assert policy._states_rules_need() == 4
    policy.lookup = {}
    assert policy._states_rules_need() is None


def test_the_featurizer_is_stored_and_loaded_as_itself(tmp_path):
    RecentStatesFeaturizer(state_featurizer=None, max_history=None).persist(tmp_path)
    assert type(TrackerFeaturizer.load(tmp_path)) is RecentStatesFeaturizer


def test_the_trained_model_keeps_the_policy_and_its_featurizer():
    # What the server loads: the policy's featurizer.json names our featurizer.
    with tarfile.open(settings.MODEL_PATH) as model:
        files = [model.extractfile(member) for member in model.getmembers()
                 if "RecentStatesRulePolicy" in member.name and member.name.endswith("featurizer.json")]
        types = [json.loads(file.read())["type"] for file in files if file is not None]
    assert types == ["RecentStatesFeaturizer"]


def test_a_second_ask_for_the_same_tracker_is_answered_from_the_first(monkeypatch):
    tracker = long_conversation()
    featurizer = RecentStatesFeaturizer(state_featurizer=None, max_history=None)
    featurizer.last_states = 4
    expected = MaxHistoryTrackerFeaturizer._create_states(tracker, DOMAIN)[-4:]
    first = featurizer._create_states(tracker, DOMAIN)
    first[-1].clear()  # what a caller may do to its copy
    replays: list[int] = []
    monkeypatch.setattr(tracker, "init_copy", lambda: replays.append(1))
    again = featurizer._create_states(tracker, DOMAIN)
    monkeypatch.undo()
    assert replays == [] and again == expected
    tracker.update(ActionExecuted("action_listen"))  # the conversation moved on: built again
    assert featurizer._create_states(tracker, DOMAIN) == MaxHistoryTrackerFeaturizer._create_states(
        tracker, DOMAIN)[-4:]


@pytest.mark.parametrize("index", range(0, len(CONVERSATIONS), 2))
def test_states_built_on_the_last_predictions_replay_are_rasas(index):
    # One featurizer for the whole conversation, as on the server: each
    # prediction goes on from the replay the one before kept, whatever came
    # between (a reverted message, a rejected loop, a restart).
    featurizer = RecentStatesFeaturizer(state_featurizer=None, max_history=None)
    featurizer.last_states = 4
    events = CONVERSATIONS[index]
    for end in range(1, len(events) + 1):
        tracker = KeptTracker.from_events("web:a", events[:end], DOMAIN.slots)
        assert featurizer._create_states(tracker, DOMAIN) == MaxHistoryTrackerFeaturizer._create_states(
            tracker, DOMAIN)[-4:]


def test_a_prediction_replays_only_what_came_after_the_last_ones_states(monkeypatch):
    featurizer = RecentStatesFeaturizer(state_featurizer=None, max_history=None)
    featurizer.last_states = 4
    tracker = KeptTracker.from_events("rest:long", list(long_conversation().events), DOMAIN.slots)
    featurizer._create_states(tracker, DOMAIN)
    for event in faq_turn(99):
        tracker.update(event)
    replayed = count_replays(monkeypatch)
    states = featurizer._create_states(tracker, DOMAIN)
    monkeypatch.undo()
    assert states == MaxHistoryTrackerFeaturizer._create_states(tracker, DOMAIN)[-4:]
    assert len(replayed) < 12  # not the conversation's 200 events
    # Another conversation under the same name shares no events: built whole.
    other = DialogueStateTracker.from_events("rest:long", faq_turn(1) * 3 + faq_turn(2), DOMAIN.slots)
    assert featurizer._create_states(other, DOMAIN) == MaxHistoryTrackerFeaturizer._create_states(
        other, DOMAIN)[-4:]


def test_a_new_domain_or_rasas_own_tracker_is_replayed_whole(monkeypatch):
    featurizer = RecentStatesFeaturizer(state_featurizer=None, max_history=None)
    featurizer.last_states = 4
    events = list(long_conversation().events)
    featurizer._create_states(KeptTracker.from_events("rest:long", events, DOMAIN.slots), DOMAIN)
    reloaded = Domain.load(str(settings.ROOT / "domain"))  # a model reload: another domain
    after_reload = KeptTracker.from_events("rest:long", events, reloaded.slots)
    rasas_own = DialogueStateTracker.from_events("rest:long", events, DOMAIN.slots)
    replayed = count_replays(monkeypatch)
    featurizer._create_states(after_reload, reloaded)
    assert len(replayed) > 150  # the conversation's ~190 applied events, not the last few
    replayed.clear()
    featurizer._create_states(rasas_own, DOMAIN)
    assert len(replayed) > 150
