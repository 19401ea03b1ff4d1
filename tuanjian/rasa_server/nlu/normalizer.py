"""Rasa graph component that normalises message text before tokenisation."""
from __future__ import annotations

from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from tuanjian.text import normalize


# Registered as a featurizer only because Rasa runs tokenizer and featurizer
# nodes on the training data too; that is what makes training and serving see
# the same normalised text.
@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False
)
class ChineseTextNormalizer(GraphComponent):
    """Traditional → simplified, full-width → half-width, no emoji or tags."""

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> ChineseTextNormalizer:
        return cls(config.get("emoji_words") or {})

    def __init__(self, emoji_words: dict[str, str] | None = None) -> None:
        self.emoji_words = emoji_words or {}

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self.process(training_data.training_examples)
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = message.get(TEXT)
            if text is not None:
                message.set(TEXT, normalize(text, self.emoji_words))
        return messages
