"""KeptTracker's applied events and copies are Rasa's, without the replay:
after every event of the project's rules and conversation tests and of
seeded random conversations (reverts, rejected loops, restarts, new sessions,
a loop's name first seen late), compared with DialogueStateTracker's own."""
import random

import pytest
from rasa.shared.core.events import (
    ActionExecuted,
    ActionExecutionRejected,
    ActionReverted,
    ActiveLoop,
    BotUttered,
    EntitiesAdded,
    Event,
    FollowupAction,
    Restarted,
    SessionStarted,
    SlotSet,
    UserUtteranceReverted,
    UserUttered,
)
from rasa.shared.core.generator import TrainingDataGenerator
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity
from rasa.shared.importers.importer import TrainingDataImporter

from tuanjian import settings
from tuanjian.rasa_server.tracker import KeptTracker, copy_of

IMPORTER = TrainingDataImporter.load_from_dict(
    domain_path=str(settings.ROOT / "domain"),
    training_data_paths=[str(settings.ROOT / "data" / "rules"), str(settings.ROOT / "tests" / "stories")])
DOMAIN = IMPORTER.get_domain()


def project_conversations() -> list[list[Event]]:
    trackers = TrainingDataGenerator(IMPORTER.get_stories(), DOMAIN, augmentation_factor=0,
                                     remove_duplicates=False, use_story_concatenation=False).generate()
    return [list(t.events) for t in trackers]


def random_conversation(seed: int) -> list[Event]:
    rng = random.Random(seed)
    loop = "verification_form"
    events: list[Event] = []
    for _ in range(rng.randint(20, 80)):
        choice = rng.random()
        if choice < 0.25:
            events += [ActionExecuted("action_listen"),
                       UserUttered(f"问{len(events)}", {"name": "faq_forgot_password"})]
        elif choice < 0.4:
            events += [ActionExecuted("utter_faq_forgot_password"), BotUttered("答")]
        elif choice < 0.5:
            # The loop's action, sometimes before any ActiveLoop names it.
            events.append(ActionExecuted(loop))
        elif choice < 0.57:
            events.append(ActiveLoop(rng.choice([loop, None])))
        elif choice < 0.63:
            events.append(ActionExecutionRejected(loop))
        elif choice < 0.73:
            events.append(SlotSet(rng.choice(["is_verified", "requested_slot", "handoff_ticket"]),
                                  rng.choice([True, None, "member_number", 7])))
        elif choice < 0.8:
            events.append(UserUtteranceReverted())
        elif choice < 0.84:
            events.append(ActionReverted())
        elif choice < 0.86:
            events.append(FollowupAction("utter_faq_wrong_info"))
        elif choice < 0.9:
            events.append(rng.choice([Restarted(), SessionStarted()]))
        else:
            events.append(ActionExecuted("action_listen"))
    return events


CONVERSATIONS = project_conversations() + [random_conversation(seed) for seed in range(60)]


def rasa_copy(tracker: DialogueStateTracker) -> DialogueStateTracker:
    """DialogueStateTracker.copy: every event replayed into Rasa's init_copy()."""
    replayed = DialogueStateTracker(tracker.sender_id or "default", tracker.slots.values(),
                                    tracker._max_event_history, is_rule_tracker=tracker.is_rule_tracker)
    for event in tracker.events:
        replayed.update(event)
    return replayed


def count_replays(monkeypatch) -> list[Event]:
    """From now on in the test, every event a tracker is updated with (a replay's too)."""
    updated: list[Event] = []
    update = DialogueStateTracker.update

    def counted(self, event, domain=None):
        updated.append(event)
        update(self, event, domain)

    monkeypatch.setattr(DialogueStateTracker, "update", counted)
    return updated


OURS = {"_applied", "_followup_by_events", "_followup_set", "_placeholders"}


def without_placeholder_time(event: Event | None) -> dict | None:
    # Before the first message (or after a restart) the latest message and
    # utterance are empty placeholders, stamped with the time Rasa's replay
    # made them: that time is left out.
    data = event.as_dict() if event else None
    if data and data.get("text") is None:
        data.pop("timestamp")
    return data


def state(tracker: DialogueStateTracker) -> dict:
    return {
        "fields": sorted(vars(tracker).keys() - OURS),
        "current": tracker.current_state(EventVerbosity.ALL),
        "slots": {name: (slot.value, slot.has_been_set) for name, slot in tracker.slots.items()},
        "latest_message": without_placeholder_time(tracker.latest_message),
        "latest_bot_utterance": without_placeholder_time(tracker.latest_bot_utterance),
        "sender_source": tracker.sender_source, "model_id": tracker.model_id,
        "is_rule_tracker": tracker.is_rule_tracker, "max_history": tracker._max_event_history,
    }


def test_the_conversations_hold_what_the_fold_must_handle():
    kinds = {type(e) for events in CONVERSATIONS for e in events}
    assert {UserUtteranceReverted, ActionReverted, Restarted, SessionStarted, ActiveLoop,
            ActionExecutionRejected, FollowupAction} <= kinds
    assert len(CONVERSATIONS) > 100


@pytest.mark.parametrize("index", range(len(CONVERSATIONS)))
def test_applied_events_after_every_event_are_rasas(index):
    tracker = KeptTracker("web:a", DOMAIN.slots)
    for event in CONVERSATIONS[index]:
        tracker.update(event)
        assert tracker.applied_events() == DialogueStateTracker.applied_events(tracker)


@pytest.mark.parametrize("index", range(0, len(CONVERSATIONS), 3))
def test_a_copy_after_every_event_is_rasas(index):
    tracker = KeptTracker("web:a", DOMAIN.slots)
    for number, event in enumerate(CONVERSATIONS[index]):
        tracker.update(event)
        if number % 2:
            tracker.applied_events()  # a copy takes the fold over as well
        if number % 3 == 0:
            tracker.clear_followup_action()  # as the processor does, without an event
        ours, rasas = tracker.copy(), rasa_copy(tracker)
        assert state(ours) == state(rasas)
        assert ours.applied_events() == rasas.applied_events()


def test_the_fold_goes_on_from_where_it_stopped(monkeypatch):
    tracker = KeptTracker("web:a", DOMAIN.slots)
    for event in random_conversation(1)[:30]:
        tracker.update(event)
    tracker.applied_events()
    folded: list[int] = []
    fold = KeptTracker._fold

    def counted(self, applied, events, loops):
        folded.append(len(events))
        fold(self, applied, events, loops)

    monkeypatch.setattr(KeptTracker, "_fold", counted)
    added = [ActionExecuted("action_listen"), UserUttered("再问", {"name": "faq_wrong_info"})]
    for event in added:
        tracker.update(event)
    copied = tracker.copy()
    assert copied.applied_events() == DialogueStateTracker.applied_events(tracker)
    assert folded == [len(added)]


def test_a_new_loop_name_or_a_replaced_event_folds_again(monkeypatch):
    tracker = KeptTracker("web:a", DOMAIN.slots)
    for event in [ActionExecuted("guide_form"), ActionExecuted("action_listen"), UserUttered("是")]:
        tracker.update(event)
    tracker.applied_events()
    # Once guide_form is a loop's name, its earlier run folds another way.
    tracker.update(ActiveLoop("guide_form"))
    tracker.update(ActionExecuted("guide_form"))
    assert tracker.applied_events() == DialogueStateTracker.applied_events(tracker)
    tracker.events[-1] = ActionExecuted("action_listen")
    assert tracker.applied_events() == DialogueStateTracker.applied_events(tracker)


def test_a_copy_does_not_replay_and_does_not_share_state(monkeypatch):
    tracker = KeptTracker.from_events("web:a", CONVERSATIONS[-1] + [ActiveLoop("verification_form")], DOMAIN.slots)
    tracker.model_id = "m"
    replays = count_replays(monkeypatch)
    copied = copy_of(tracker)
    assert replays == [] and copied.model_id is None
    monkeypatch.undo()
    copied.update(SlotSet("is_verified", "changed"))
    copied.interrupt_loop(True)
    copied.update(ActionExecuted("action_listen"))
    assert tracker.get_slot("is_verified") != "changed"
    assert tracker.active_loop is not None and not tracker.active_loop.is_interrupted
    assert len(tracker.events) == len(copied.events) - 2


def test_a_tracker_that_forgets_old_events_folds_as_rasa():
    tracker = KeptTracker("web:a", DOMAIN.slots, max_event_history=5)
    for event in random_conversation(2):
        tracker.update(event)
        assert tracker.applied_events() == DialogueStateTracker.applied_events(tracker)
        assert state(tracker.copy()) == state(rasa_copy(tracker))


def test_a_cleared_follow_up_is_copied_as_the_events_left_it():
    tracker = KeptTracker.from_events("web:a", [ActionExecuted("action_listen"), UserUttered("问"),
                                                FollowupAction("utter_faq_wrong_info")], DOMAIN.slots)
    tracker.clear_followup_action()
    assert tracker.followup_action is None
    assert tracker.copy().followup_action == rasa_copy(tracker).followup_action == "utter_faq_wrong_info"


def test_an_event_applied_to_a_copy_before_any_message_stays_in_the_copy():
    tracker = KeptTracker.from_events("web:a", [ActionExecuted("action_session_start"), SessionStarted(),
                                                ActionExecuted("action_listen")], DOMAIN.slots)
    copied = tracker.copy()
    assert copied.latest_message is not tracker.latest_message
    copied.update(EntitiesAdded([{"entity": "member_number", "value": "x"}]))
    assert tracker.latest_message.entities == [] and tracker.copy().latest_message.entities == []
