"""Rasa's RulePolicy at the same cost late in a conversation as early.

To predict one action, RulePolicy turns every action of the session so far
into a state (slots, active loop, message, previous action), two or three
times per turn, and then matches its rules against the last few states only:
a rule is never longer than its longest rule. Profiled on a 200-turn
conversation, those states were a third of a late turn's time. This policy
is RulePolicy with a featurizer that, when predicting, builds the states of
the last few actions only: one more than the longest rule has. The tracker
each state is read from is still the replay of every applied event (so each
state is exactly the one Rasa would compute), but the replay goes on from the
one the conversation's last prediction kept, when the events it replayed are
still the first ones (the same objects: the tracker store keeps them).
Rules are matched to the same states, so the predictions are Rasa's.
"""
from __future__ import annotations

import copy
import itertools
import operator
from collections import OrderedDict
from typing import Any, cast

from rasa.core.featurizers.tracker_featurizers import MaxHistoryTrackerFeaturizer, TrackerFeaturizer
from rasa.core.policies.rule_policy import RULES, RULES_FOR_LOOP_UNHAPPY_PATH, RulePolicy
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.core.domain import Domain, State
from rasa.shared.core.events import ActionExecuted, Event
from rasa.shared.core.trackers import DialogueStateTracker

from tuanjian.rasa_server.tracker import KeptTracker, copy_of

# Conversations whose replay the featurizer keeps (as the tracker store keeps theirs).
KEPT_REPLAYS = 512


# Registered under its own name, so a trained model stores it as this class and
# loads it back as this class (Rasa would otherwise record the parent's).
@TrackerFeaturizer.register("RecentStatesFeaturizer")
class RecentStatesFeaturizer(MaxHistoryTrackerFeaturizer):
    """While `last_states` is set (during a prediction), builds the states of
    the last `last_states` actions only; otherwise (training, which needs every
    window of the rules) and for ML data, Rasa's way."""

    last_states: int | None = None
    # Per conversation: the applied events up to the first state the last
    # prediction built, a tracker with them replayed, and the domain it had.
    _replays: OrderedDict[str, tuple[list[Event], DialogueStateTracker, Domain]] | None = None
    _latest: tuple[DialogueStateTracker, tuple[int, int, bool, int | None], list[State]] | None = None

    def _create_states(
        self, tracker: DialogueStateTracker, domain: Domain, omit_unset_slots: bool = False,
        ignore_rule_only_turns: bool = False, rule_only_data: dict[str, Any] | None = None,
    ) -> list[State]:
        # RulePolicy asks twice per member message for the same tracker (once
        # reading the message's text, once its intent): the second time gets a
        # copy of the first's states (the caller changes the last one in place).
        key = (len(tracker.events), id(tracker.events[-1]) if tracker.events else 0, omit_unset_slots,
               self.last_states)
        if self._latest is not None and self._latest[0] is tracker and self._latest[1] == key \
                and not ignore_rule_only_turns:
            return copy.deepcopy(self._latest[2])
        applied = tracker.applied_events()
        # The first of the last `last_states - 1` actions (each gives a state,
        # and the tracker as it is one more), found from the end.
        wanted = (self.last_states or 0) - 1
        actions = list(itertools.islice(
            (i for i in range(len(applied) - 1, -1, -1) if isinstance(applied[i], ActionExecuted)), wanted + 1))
        if not self.last_states or ignore_rule_only_turns or len(actions) <= wanted:
            return MaxHistoryTrackerFeaturizer._create_states(
                tracker, domain, omit_unset_slots=omit_unset_slots,
                ignore_rule_only_turns=ignore_rule_only_turns, rule_only_data=rule_only_data)
        # As DialogueStateTracker.generate_all_prior_trackers and
        # Domain.states_for_tracker_history, for the last states only; the
        # replay up to the first of them goes on from where this
        # conversation's last prediction stopped, if its events are the same.
        first = actions[wanted - 1] if wanted else len(applied)
        prior, done = self._replayed(tracker, domain, applied, first)
        for event in applied[done:first]:
            prior.update(event)
        self._keep(tracker.sender_id, domain, applied[:first], prior)
        states = []
        for event in applied[first:]:
            if isinstance(event, ActionExecuted):
                states.append(domain._clean_state(domain.get_active_state(prior, omit_unset_slots)))
            prior.update(event)
        states.append(domain._clean_state(domain.get_active_state(prior, omit_unset_slots)))
        self._latest = (tracker, key, copy.deepcopy(states))
        return states

    def _replayed(self, tracker: DialogueStateTracker, domain: Domain, applied: list[Event],
                  upto: int) -> tuple[DialogueStateTracker, int]:
        """A tracker with the first events of `applied` replayed into it
        (at most `upto`), and how many."""
        kept = self._replays.get(tracker.sender_id) if self._replays is not None else None
        if kept is not None:
            prefix, prior, prior_domain = kept
            if prior_domain is domain and len(prefix) <= upto and all(map(operator.is_, prefix, applied)):
                return copy_of(prior), len(prefix)
        return tracker.init_copy(), 0

    def _keep(self, sender_id: str, domain: Domain, prefix: list[Event], prior: DialogueStateTracker) -> None:
        # Only a KeptTracker (what the tracker store hands out) is copied
        # without a replay; one that forgets old events is replayed anyway.
        if not isinstance(prior, KeptTracker) or prior._max_event_history is not None:
            return
        if self._replays is None:
            self._replays = OrderedDict()
        self._replays[sender_id] = (prefix, copy_of(prior), domain)
        self._replays.move_to_end(sender_id)
        while len(self._replays) > KEPT_REPLAYS:
            self._replays.popitem(last=False)


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT, is_trainable=True
)
class RecentStatesRulePolicy(RulePolicy):
    def _standard_featurizer(self) -> MaxHistoryTrackerFeaturizer:
        return RecentStatesFeaturizer(state_featurizer=None, max_history=None)

    def _prediction_states(self, tracker: DialogueStateTracker, domain: Domain,
                           use_text_for_last_user_input: bool = False,
                           rule_only_data: dict[str, Any] | None = None) -> list[State]:
        featurizer = cast(RecentStatesFeaturizer, self.featurizer)
        featurizer.last_states = self._states_rules_need()
        try:
            states: list[State] = super()._prediction_states(
                tracker, domain, use_text_for_last_user_input, rule_only_data=rule_only_data)
        finally:
            featurizer.last_states = None
        return states

    def _states_rules_need(self) -> int | None:
        """One more than the longest rule's states; None (all) before any rule is known."""
        keys = [key for lookup in (RULES, RULES_FOR_LOOP_UNHAPPY_PATH) for key in self.lookup.get(lookup, {})]
        if not keys:
            return None
        return 1 + max(len(self._rule_key_to_state(key)) for key in keys)
