"""Rasa's tracker, with copies and applied events that cost what a turn adds,
not what the session holds.

Rasa rebuilds a tracker's state by replaying every event of the session: when
the store reads it, and each time the processor copies it to run an action
(twice a turn). It also works out the applied events (the session less what
was reverted) from the first event, four times a turn. Profiled on turns
191-210 of one conversation, those replays and folds were most of what a late
turn costs more than an early one.

Every change of a tracker's state is made by an event's `apply_to`, so a copy
can take over the state as it is instead of making it again; and the applied
events are a left fold over the events, so when the tracker has only gained
events since the fold last ran, it goes on from there. The tracker store hands
out `KeptTracker`s; tests hold both to Rasa's results.

Two parts of the state are not only the events': the processor clears the
follow-up action without an event (a copy takes the one the events left), and
before the first message the latest message and utterance are placeholders
that Rasa's replay makes anew (a copy gets new ones, so an event applied to a
copy never reaches the original's).
"""
from __future__ import annotations

import copy
import dataclasses
import itertools
import operator
from collections import deque
from collections.abc import Iterable
from typing import Any

from rasa.shared.constants import DEFAULT_SENDER_ID
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActionReverted,
    ActiveLoop,
    BotUttered,
    Event,
    Restarted,
    SessionStarted,
    UserUtteranceReverted,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker


def loop_names(events: Iterable[Event]) -> frozenset[str]:
    return frozenset(e.name for e in events if isinstance(e, ActiveLoop) and e.name)


@dataclasses.dataclass(frozen=True)
class _Applied:
    events: deque          # the deque folded (a copy has its own)
    count: int             # how many of its events
    ends: tuple[Event | None, Event | None]  # its first and last, to see that none was replaced
    loops: frozenset[str]
    applied: list[Event]   # never changed in place: a fold works on a copy


def ends(events: deque, count: int) -> tuple[Event | None, Event | None]:
    return (events[0], events[count - 1]) if count else (None, None)


class KeptTracker(DialogueStateTracker):
    """Events are only ever appended to `events` (as in Rasa), never replaced."""

    _applied: _Applied | None = None
    _followup_by_events: str | None
    _placeholders: tuple[UserUttered | None, BotUttered | None]
    _followup_set = False

    def _reset(self) -> None:
        super()._reset()
        self._placeholders = (self.latest_message, self.latest_bot_utterance)
        self._followup_by_events = self.followup_action

    def update(self, event: Event, domain: Domain | None = None) -> None:
        self._followup_set = False
        super().update(event, domain)
        if self._followup_set:  # by the event (the processor's own clearing happens outside update)
            self._followup_by_events = self.followup_action

    def trigger_followup_action(self, action: str) -> None:
        super().trigger_followup_action(action)
        self._followup_set = True

    def clear_followup_action(self) -> None:
        super().clear_followup_action()
        self._followup_set = True

    def init_copy(self) -> KeptTracker:
        return KeptTracker(self.sender_id or DEFAULT_SENDER_ID, self.slots.values(), self._max_event_history,
                           is_rule_tracker=self.is_rule_tracker)

    def applied_events(self) -> list[Event]:
        events = self.events
        if self._max_event_history is not None:  # old events drop out: no prefix to go on from
            return super().applied_events()
        kept = self._applied
        if kept is not None and kept.events is events and len(events) >= kept.count \
                and all(map(operator.is_, ends(events, kept.count), kept.ends)):
            new = list(itertools.islice(events, kept.count, None))
            # A loop name first seen now changes how earlier events fold.
            if loop_names(new) <= kept.loops:
                applied = list(kept.applied)
                self._fold(applied, new, kept.loops)
                self._keep(applied, kept.loops)
                return list(applied)
        loops = loop_names(events)
        applied = []
        self._fold(applied, events, loops)
        self._keep(applied, loops)
        return list(applied)

    def _fold(self, applied: list[Event], events: Iterable[Event], loops: frozenset[str]) -> None:
        """DialogueStateTracker.applied_events's loop, going on from `applied`
        (changed in place) over `events`, with `loops` the session's loop names."""
        for event in events:
            if isinstance(event, (Restarted, SessionStarted)):
                applied.clear()
            elif isinstance(event, ActionReverted):
                self._undo_till_previous(ActionExecuted, applied)
            elif isinstance(event, UserUtteranceReverted):
                self._undo_till_previous(UserUttered, applied)
                self._undo_till_previous(ActionExecuted, applied)
            elif isinstance(event, ActionExecuted) and event.action_name in loops \
                    and not self._first_loop_execution_or_unhappy_path(event.action_name, applied):
                self._undo_till_previous_loop_execution(event.action_name, applied)
            else:
                applied.append(event)

    def _keep(self, applied: list[Event], loops: frozenset[str]) -> None:
        events = self.events
        self._applied = _Applied(events, len(events), ends(events, len(events)), loops, applied)

    def copy(self) -> DialogueStateTracker:
        """What Rasa's copy (a replay of every event into `init_copy()`) makes,
        taken from this tracker's state."""
        return copy_of(self)


def copy_of(tracker: DialogueStateTracker) -> DialogueStateTracker:
    """A tracker in the state `tracker.copy()` would replay `tracker` to."""
    if not isinstance(tracker, KeptTracker) or tracker._max_event_history is not None:
        # Rasa's own tracker may hold state no event made; with old events
        # dropped out, a replay of the rest may not reach this state.
        return DialogueStateTracker.copy(tracker)
    message, utterance = tracker.latest_message, tracker.latest_bot_utterance
    fresh_message = UserUttered.empty() if message is tracker._placeholders[0] else None
    fresh_utterance = BotUttered.empty() if utterance is tracker._placeholders[1] else None
    clone = KeptTracker.__new__(KeptTracker)
    state: dict[str, Any] = {
        "_max_event_history": None,
        "events": deque(tracker.events),
        "sender_id": tracker.sender_id or DEFAULT_SENDER_ID,
        "slots": {name: copy.copy(slot) for name, slot in tracker.slots.items()},
        "sender_source": None,
        "is_rule_tracker": tracker.is_rule_tracker,
        "_paused": tracker._paused,
        "followup_action": tracker._followup_by_events,
        "_followup_by_events": tracker._followup_by_events,
        "latest_action": dict(tracker.latest_action) if tracker.latest_action is not None else None,
        "latest_message": fresh_message or message,
        "latest_bot_utterance": fresh_utterance or utterance,
        "_placeholders": (fresh_message, fresh_utterance),
        "active_loop": dataclasses.replace(tracker.active_loop) if tracker.active_loop else None,
        "model_id": None,
        "assistant_id": None,
    }
    clone.__dict__.update(state)
    kept = tracker._applied
    if kept is not None and kept.events is tracker.events:
        clone._applied = dataclasses.replace(kept, events=clone.events)
    return clone
