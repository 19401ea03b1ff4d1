"""Rasa's RulePolicy at the same cost late in a conversation as early.

To predict one action, RulePolicy turns every action of the session so far
into a state (slots, active loop, message, previous action), two or three
times per turn, and then matches its rules against the last few states only:
a rule is never longer than its longest rule. Profiled on a 200-turn
conversation, those states were a third of a late turn's time. This policy
is RulePolicy with a featurizer that, when predicting, still replays every
event (so each state is exactly the one Rasa would compute) but builds the
states of the last few actions only: one more than the longest rule has.
Rules are matched to the same states, so the predictions are Rasa's.
"""
from __future__ import annotations

import copy
from typing import Any, cast

from rasa.core.featurizers.tracker_featurizers import MaxHistoryTrackerFeaturizer, TrackerFeaturizer
from rasa.core.policies.rule_policy import RULES, RULES_FOR_LOOP_UNHAPPY_PATH, RulePolicy
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.core.domain import Domain, State
from rasa.shared.core.events import ActionExecuted
from rasa.shared.core.trackers import DialogueStateTracker


# Registered under its own name, so a trained model stores it as this class and
# loads it back as this class (Rasa would otherwise record the parent's).
@TrackerFeaturizer.register("RecentStatesFeaturizer")
class RecentStatesFeaturizer(MaxHistoryTrackerFeaturizer):
    """While `last_states` is set (during a prediction), builds the states of
    the last `last_states` actions only; otherwise (training, which needs every
    window of the rules) and for ML data, Rasa's way."""

    last_states: int | None = None
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
        skipped = sum(isinstance(e, ActionExecuted) for e in applied) + 1 - (self.last_states or 0)
        if not self.last_states or ignore_rule_only_turns or skipped <= 0:
            return MaxHistoryTrackerFeaturizer._create_states(
                tracker, domain, omit_unset_slots=omit_unset_slots,
                ignore_rule_only_turns=ignore_rule_only_turns, rule_only_data=rule_only_data)
        # As DialogueStateTracker.generate_all_prior_trackers and
        # Domain.states_for_tracker_history, for the last states only.
        prior, states, index = tracker.init_copy(), [], 0
        for event in applied:
            if isinstance(event, ActionExecuted):
                if index >= skipped:
                    states.append(domain._clean_state(domain.get_active_state(prior, omit_unset_slots)))
                index += 1
            prior.update(event)
        states.append(domain._clean_state(domain.get_active_state(prior, omit_unset_slots)))
        self._latest = (tracker, key, copy.deepcopy(states))
        return states


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
