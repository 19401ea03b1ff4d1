"""While a help-desk ticket is open, the assistant does not answer the member.

Every message of a conversation whose `handoff_ticket` slot is set goes to
`action_handoff_pending` (which records it on the ticket and says staff will
reply), whatever the intent, ahead of all other policies. Closing the ticket
clears the slot and the assistant answers again.
"""
from __future__ import annotations

from typing import Any

from rasa.core.policies.policy import Policy, PolicyPrediction
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.core.trackers import DialogueStateTracker

from tuanjian.domain_names import ACTION_HANDOFF_PENDING, HANDOFF_TICKET

TICKET_SLOT = HANDOFF_TICKET
PENDING_ACTION = ACTION_HANDOFF_PENDING


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT, is_trainable=False
)
class HandoffPolicy(Policy):
    @staticmethod
    def get_default_config() -> dict[str, Any]:
        # Above RulePolicy (6): an open ticket outranks every rule.
        return {"priority": 7}

    def train(self, training_trackers: list[TrackerWithCachedStates], domain: Domain,
              **kwargs: Any) -> Resource:
        return self._resource

    def predict_action_probabilities(self, tracker: DialogueStateTracker, domain: Domain,
                                     rule_only_data: dict[str, Any] | None = None,
                                     **kwargs: Any) -> PolicyPrediction:
        probabilities = self._default_predictions(domain)
        if tracker.get_slot(TICKET_SLOT) is not None:
            if tracker.latest_action_name == ACTION_LISTEN_NAME:
                probabilities[domain.index_for_action(PENDING_ACTION)] = 1.0
            elif tracker.latest_action_name == PENDING_ACTION:
                probabilities[domain.index_for_action(ACTION_LISTEN_NAME)] = 1.0
        return self._prediction(probabilities)
