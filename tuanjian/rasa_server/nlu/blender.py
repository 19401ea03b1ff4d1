"""Rasa graph component: blend DIET's intent ranking with a linear model.

DIET on about two thousand short examples is confidently wrong on wordings far
from its training data; a logistic regression over character n-grams, jieba
words, pinyin and the sentence embedding errs on other messages. A weighted
mean of the two rankings has fewer errors than either (docs/experiments.md,
"How the pipeline was chosen").
The component runs after DIET and before the FallbackClassifier, so the
fallback threshold applies to the blended confidence.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import joblib
import numpy as np
from pypinyin import lazy_pinyin
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.constants import TOKENS_NAMES
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from scipy.sparse import csr_matrix, hstack
from scipy.special import softmax
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

MODEL_FILE = "blender.joblib"


def sentence_embedding(message: Message) -> np.ndarray:
    _, sentence = message.get_dense_features(TEXT)
    return sentence.features[0]


def words(message: Message) -> list[str]:
    """The jieba tokens (domain dictionary included) of the message."""
    return [token.text for token in message.get(TOKENS_NAMES[TEXT]) or []]


def already_tokenized(tokens: list[str]) -> list[str]:
    return tokens


def pinyin_ngrams(text: str) -> list[str]:
    """Toneless pinyin syllables and syllable pairs: homophone typos (泥好, 8是)
    and their intended words share them."""
    syllables = [s for chunk in lazy_pinyin(text) for s in chunk.split()]
    return syllables + [" ".join(pair) for pair in zip(syllables, syllables[1:], strict=False)]


def text(message: Message) -> str:
    return message.get(TEXT) or ""


def _sparse_blocks(config: dict[str, Any]) -> list[tuple[str, float, Callable[[Message], Any]]]:
    """The linear model's sparse feature blocks in their order: the vectorizer,
    its weight and what of a message it reads. The sentence embedding follows."""
    return [("chars", 1.0, text), ("words", 1.0, words), ("pinyin", config["pinyin_weight"], text)]


def _linear_features(model: dict[str, Any], messages: list[Message],
                     config: dict[str, Any]) -> csr_matrix:
    embeddings = np.stack([sentence_embedding(m) for m in messages])
    return hstack([model[name].transform([document(m) for m in messages]) * weight
                   for name, weight, document in _sparse_blocks(config)]
                  + [csr_matrix(embeddings * config["embedding_weight"])]).tocsr()


def fit_linear_model(examples: list[Message], config: dict[str, Any]) -> dict[str, Any]:
    """The linear half of the blend, fitted on tokenized and featurized examples.

    Also called by benchmark/cv.py, so cross-validation measures this very model.
    """
    model = {
        "chars": TfidfVectorizer(analyzer="char", sublinear_tf=True,
                                 ngram_range=(1, config["max_ngram"])),
        "words": TfidfVectorizer(analyzer=already_tokenized, sublinear_tf=True),
        "pinyin": TfidfVectorizer(analyzer=pinyin_ngrams, sublinear_tf=True),
    }
    for name, _, document in _sparse_blocks(config):
        model[name].fit([document(m) for m in examples])
    classifier = LogisticRegression(C=config["C"], max_iter=5000)
    classifier.fit(_linear_features(model, examples, config), [m.get(INTENT) for m in examples])
    # Stored in Fortran order (joblib keeps it), so that the weights of one
    # feature for every intent, the columns LinearScorer gathers, are contiguous.
    classifier.coef_ = np.asfortranarray(classifier.coef_)
    return {**model, "classifier": classifier}


class LinearScorer:
    """The linear model's probabilities for one message at a time.

    They are what ``classifier.predict_proba`` gives on the stacked blocks of
    ``_linear_features``, computed from the fitted vectorizers' own analyzers,
    vocabularies and IDF weights without building sparse matrices: sklearn's
    three transforms and the stacking cost about 2 ms a message, most of a
    turn's blending. tests/nlu/test_components.py checks that the two agree.
    """

    def __init__(self, model: dict[str, Any], config: dict[str, Any]) -> None:
        classifier = model["classifier"]
        self.classes = list(classifier.classes_)
        self._blocks = []
        offset = 0
        for name, weight, document in _sparse_blocks(config):
            vectorizer = model[name]
            self._blocks.append((vectorizer.build_analyzer(), vectorizer.vocabulary_,
                                 vectorizer.idf_, offset, weight, document))
            offset += len(vectorizer.vocabulary_)
        self._coef = classifier.coef_
        self._embedding_coef = np.ascontiguousarray(classifier.coef_[:, offset:])
        self._embedding_weight = config["embedding_weight"]
        self._intercept = classifier.intercept_

    def probabilities(self, message: Message) -> np.ndarray:
        # Weighted in float32 before widening, as _linear_features does.
        embedding = (sentence_embedding(message) * self._embedding_weight).astype(np.float64)
        # einsum, not @: a product this small is not worth BLAS's threads, and
        # once started they spin on the other core (a replica's CPU a turn doubled).
        decision = self._intercept + np.einsum("ij,j->i", self._embedding_coef, embedding)
        for analyzer, vocabulary, idf, offset, weight, document in self._blocks:
            counts = Counter(vocabulary[term] for term in analyzer(document(message)) if term in vocabulary)
            if not counts:
                continue
            columns = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
            # TfidfVectorizer(sublinear_tf=True): (1 + log tf) * idf, rows of unit length.
            tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
            values = (1 + np.log(tf)) * idf[columns]
            decision += np.einsum("ij,j->i", self._coef[:, offset + columns],
                                  values * (weight / float(np.linalg.norm(values))))
        if decision.size == 1:
            # Two intents: sklearn fits one decision, P(second) = expit(d), which
            # is what the softmax of (0, d) gives.
            decision = np.array([0.0, decision[0]])
        return softmax(decision)


def linear_probabilities(model: dict[str, Any], messages: list[Message],
                         config: dict[str, Any]) -> np.ndarray:
    """One row per message, columns in the order of model["classifier"].classes_."""
    scorer = LinearScorer(model, config)
    return np.stack([scorer.probabilities(m) for m in messages])


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True
)
class IntentBlender(GraphComponent, IntentClassifier):
    """Replaces the intent ranking by a weighted mean of DIET's and a linear model's."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        # The values config.yml states, chosen by 5-fold cross-validation on the
        # training data alone (`python -m benchmark.cv --grid`).
        return {"diet_weight": 0.3, "C": 100.0, "embedding_weight": 2.0, "max_ngram": 3,
                "pinyin_weight": 1.0}

    def __init__(self, config: dict[str, Any], model_storage: ModelStorage,
                 resource: Resource, model: dict[str, Any] | None = None) -> None:
        self._config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self.model = model
        self._scorer = LinearScorer(model, self._config) if model else None

    @classmethod
    def create(cls, config: dict[str, Any], model_storage: ModelStorage,
               resource: Resource, execution_context: ExecutionContext) -> IntentBlender:
        return cls(config, model_storage, resource)

    @classmethod
    def load(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> IntentBlender:
        with model_storage.read_from(resource) as path:
            return cls(config, model_storage, resource, joblib.load(path / MODEL_FILE))

    def train(self, training_data: TrainingData) -> Resource:
        self.model = fit_linear_model(training_data.intent_examples, self._config)
        self._scorer = LinearScorer(self.model, self._config)
        with self._model_storage.write_to(self._resource) as path:
            joblib.dump(self.model, path / MODEL_FILE)
        return self._resource

    def process(self, messages: list[Message]) -> list[Message]:
        messages_with_text = [m for m in messages if m.get(TEXT)]
        if self._scorer is not None:  # not trained: DIET's ranking stands
            self._blend(self._scorer, messages_with_text)
        return messages

    def _blend(self, scorer: LinearScorer, messages: list[Message]) -> None:
        intents = scorer.classes
        weight = self._config["diet_weight"]
        for message in messages:
            linear = scorer.probabilities(message)
            diet = {r["name"]: r["confidence"] for r in message.get(INTENT_RANKING_KEY) or []}
            blended = sorted(
                ((name, float(weight * diet.get(name, 0.0) + (1 - weight) * p))
                 for name, p in zip(intents, linear, strict=True)),
                key=lambda pair: -pair[1])
            ranking = [{"name": name, "confidence": conf} for name, conf in blended[:10]]
            message.set(INTENT, ranking[0], add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
