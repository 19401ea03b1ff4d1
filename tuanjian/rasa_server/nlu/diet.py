"""Rasa graph component: DIETClassifier that predicts its intents in numpy.

Without transformer layers, hidden layers or entity recognition, DIET's intent
scores depend only on the message's sentence features: the sparse ones through
one dense layer, joined to the dense ones, one gelu layer, the text embedding,
and a softmax over its dot products with the label embeddings. Rasa computes
them with a TensorFlow call that, for one message, costs mostly the building
and checking of its inputs (sequence features included, which this setup never
uses). This class trains and saves exactly as DIETClassifier does and, at
prediction, computes the same scores from the same weights in a few numpy
products (tested against TensorFlow's to 1e-5). Any other setup, or a message
without both kinds of sentence features, goes through DIET's own prediction.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.nlu.classifiers.diet_classifier import DIETClassifier
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from rasa.utils.tensorflow.constants import (
    ENTITY_RECOGNITION,
    FEATURIZERS,
    HIDDEN_LAYERS_SIZES,
    INNER,
    INTENT_CLASSIFICATION,
    NUM_TRANSFORMER_LAYERS,
    SOFTMAX,
)
from rasa.utils.tensorflow.layers import RandomlyConnectedDense
from scipy.special import erf
from scipy.special import softmax as softmax_of


@dataclass(frozen=True)
class SentenceWeights:
    """The weights on the path from sentence features to intent scores."""

    sparse_kernel: np.ndarray
    sparse_bias: np.ndarray
    unify_kernel: np.ndarray
    unify_bias: np.ndarray
    embed_kernel: np.ndarray
    embed_bias: np.ndarray
    label_embeddings: np.ndarray

    def scores(self, sparse: list[Any], dense: np.ndarray) -> np.ndarray | None:
        """Softmax confidences over the labels for one message, from its sparse
        sentence features (one matrix per featurizer, in the order Rasa joins
        them) and its dense sentence features; None if their widths are not
        the ones the model was trained on."""
        if sum(block.shape[1] for block in sparse) != self.sparse_kernel.shape[0] \
                or self.sparse_kernel.shape[1] + dense.size != self.unify_kernel.shape[0]:
            return None
        offsets = np.cumsum([0] + [block.shape[1] for block in sparse[:-1]])
        blocks = [block.tocoo() for block in sparse]
        rows = np.concatenate([block.col + offset for block, offset in zip(blocks, offsets, strict=True)])
        values = np.concatenate([block.data for block in blocks]).astype(np.float32)
        # The kernel's rows that the message's features select, weighted: what
        # Rasa's sparse product computes, without joining the featurizers'
        # matrices first. einsum, not @: products this small are not worth
        # BLAS's threads, which then spin on the other core (docs/experiments.md).
        x = np.einsum("j,jk->k", values, self.sparse_kernel[rows]) + self.sparse_bias
        x = np.concatenate([x, dense.reshape(-1).astype(np.float32)])
        x = np.einsum("j,jk->k", x, self.unify_kernel) + self.unify_bias
        x = 0.5 * x * (1.0 + erf(x / np.float32(np.sqrt(2.0))))  # tf.nn.gelu, exact
        x = np.einsum("j,jk->k", x, self.embed_kernel) + self.embed_bias
        return softmax_of(np.einsum("j,kj->k", x, self.label_embeddings))[np.newaxis, :]


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True
)
class SentenceDIETClassifier(DIETClassifier):
    """DIETClassifier; intent prediction in numpy where its setup allows."""

    _sentence_weights: SentenceWeights | None = None
    _weights_read = False

    @classmethod
    def load(cls, *args: Any, **kwargs: Any) -> SentenceDIETClassifier:
        classifier = super().load(*args, **kwargs)
        # With the model, so that the first member's message does not wait for it.
        classifier.sentence_weights()
        return classifier

    def train(self, training_data: TrainingData) -> Resource:
        self._weights_read = False
        return super().train(training_data)

    def sentence_weights(self) -> SentenceWeights | None:
        """Read from the trained model once; None if this setup is not covered."""
        if not self._weights_read and self.model is not None:
            self._sentence_weights = self._read_sentence_weights(self.model) if self._covered() else None
            self._weights_read = True
        return self._sentence_weights

    @staticmethod
    def _read_sentence_weights(model: Any) -> SentenceWeights | None:
        combining = model._tf_layers[f"sequence_layer.{model.text_name}"]._tf_layers["feature_combining"]._tf_layers
        sparse = combining.get("sparse_dense.sentence")
        sparse = sparse._tf_layers.get("sparse_to_dense") if sparse else None
        unify = combining.get("unify_dims_before_seq_sent_concat.sentence")
        unify_layers = [layer for layer in unify._ffn_layers if isinstance(layer, RandomlyConnectedDense)] \
            if unify else []
        if sparse is None or len(unify_layers) != 1:
            return None  # sentence features without a sparse part, or of the sequence's width
        (unify_dense,) = unify_layers
        # RandomlyConnectedDense masks its kernel on every call (no mask at density 1).
        unify_kernel = unify_dense.kernel if unify_dense.kernel_mask is None \
            else unify_dense.kernel * unify_dense.kernel_mask
        embed = model._tf_layers[f"embed.{TEXT}"]._dense
        if not model.prepared_for_prediction:
            model.prepare_for_predict()
            model.prepared_for_prediction = True
        return SentenceWeights(
            sparse_kernel=sparse.kernel.numpy(),
            sparse_bias=sparse.bias.numpy(),
            unify_kernel=unify_kernel.numpy(),
            unify_bias=unify_dense.bias.numpy(),
            embed_kernel=embed.kernel.numpy(),
            embed_bias=embed.bias.numpy(),
            label_embeddings=model.all_labels_embed.numpy(),
        )

    def _covered(self) -> bool:
        config = self.component_config
        loss = self.model._tf_layers.get("loss.label") if self.model else None
        return (
            config[INTENT_CLASSIFICATION]
            and not config[ENTITY_RECOGNITION]
            and config[NUM_TRANSFORMER_LAYERS] == 0
            and not config[HIDDEN_LAYERS_SIZES][TEXT]
            and loss is not None
            and loss.similarity_type == INNER
            and loss.model_confidence == SOFTMAX
        )

    def _predict(self, message: Message) -> dict[str, Any] | None:
        weights = self.sentence_weights()
        featurizers = self.component_config[FEATURIZERS]
        sentence = [
            features
            for features in message.features
            if features.attribute == TEXT
            and features.type == FEATURE_TYPE_SENTENCE
            and (not featurizers or features.origin in featurizers)
        ]
        sparse = [features.features for features in sentence if features.is_sparse()]
        dense = [features.features for features in sentence if features.is_dense()]
        scores = weights.scores(sparse, np.hstack(dense)) if weights and sparse and dense else None
        return {"i_scores": scores} if scores is not None else super()._predict(message)
