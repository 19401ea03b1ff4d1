"""SentenceDIETClassifier: DIET trained as Rasa trains it, its intent scores
computed in numpy; TensorFlow's prediction of the same model is the reference."""
import numpy as np
import pytest
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.classifiers.diet_classifier import DIETClassifier
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import CountVectorsFeaturizer
from rasa.nlu.featurizers.sparse_featurizer.regex_featurizer import RegexFeaturizer
from rasa.nlu.tokenizers.jieba_tokenizer import JiebaTokenizer
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from tuanjian.rasa_server.nlu.diet import SentenceDIETClassifier
from tuanjian.rasa_server.nlu.sentence_encoder import SentenceEncoderFeaturizer

EXAMPLES = [
    ("忘记密码", "faq_forgot_password"), ("密码忘了怎么办", "faq_forgot_password"),
    ("重置密码", "faq_forgot_password"), ("登录密码不记得了", "faq_forgot_password"),
    ("你好", "greet"), ("您好呀", "greet"), ("早上好", "greet"), ("在吗", "greet"),
    ("转人工", "request_human"), ("我要人工客服", "request_human"), ("找个真人", "request_human"),
    ("毕业了团关系转哪", "faq_graduate_destination"), ("我考研了转到哪", "faq_graduate_destination"),
    ("我的团员编号是 12345678", "check_transfer_status"), ("申请到哪一步了", "check_transfer_status"),
]
# Seen, unseen, repeated, Latin, digits that the regex features fire on, long.
UNSEEN = ["密码忘记了", "犇骉", "HELLO 转人工", "qwerty", "编号 87654321 的申请审批到哪了",
          "你好你好你好", "我毕业了工作单位没有团组织，团关系转到哪里去，密码也忘了，能转人工吗" * 3]


@pytest.fixture(scope="module")
def featurize(tmp_path_factory):
    """Jieba, three sparse featurizers (so the numpy path joins several
    blocks, as config.yml's does) and the sentence encoder, trained on EXAMPLES."""
    storage = LocalModelStorage(tmp_path_factory.mktemp("featurizers"))
    context = ExecutionContext(graph_schema=None, model_id="test")
    tokenizer = JiebaTokenizer.create(
        {**JiebaTokenizer.get_default_config(), "dictionary_path": "data/dict"}, storage, Resource("jieba"), None)
    regex = RegexFeaturizer.create(
        {**RegexFeaturizer.get_default_config(), "use_word_boundaries": False}, storage, Resource("regex"), context)
    words = CountVectorsFeaturizer.create(
        CountVectorsFeaturizer.get_default_config(), storage, Resource("words"), context)
    chars = CountVectorsFeaturizer.create(
        {**CountVectorsFeaturizer.get_default_config(), "analyzer": "char", "min_ngram": 1, "max_ngram": 3},
        storage, Resource("chars"), context)
    encoder = SentenceEncoderFeaturizer({}, "use")
    training = TrainingData([Message({TEXT: t, INTENT: i}) for t, i in EXAMPLES],
                            regex_features=[{"name": "member_number", "pattern": r"\d{8}"}])
    tokenizer.process_training_data(training)
    regex.train(training)
    words.train(training)
    chars.train(training)
    for featurizer in (regex, words, chars):
        featurizer.process_training_data(training)
    encoder.process_training_data(training)

    def run(messages):
        tokenizer.process(messages)
        for featurizer in (regex, words, chars, encoder):
            featurizer.process(messages)
        return messages

    return training, run


def trained(tmp_path_factory, training, reload=True, **config):
    storage = LocalModelStorage(tmp_path_factory.mktemp("diet"))
    context = ExecutionContext(graph_schema=None, model_id="test")
    config = {**SentenceDIETClassifier.get_default_config(), "epochs": 20, "number_of_transformer_layers": 0,
              "entity_recognition": False, "constrain_similarities": True, "random_seed": 42, **config}
    classifier = SentenceDIETClassifier.create(config, storage, Resource("diet"), context)
    classifier.train(training)
    # Loaded back from the model storage, as the server does.
    return SentenceDIETClassifier.load(config, storage, Resource("diet"), context) if reload else classifier


def assert_numpy_scores_are_tensorflows(classifier, messages, monkeypatch):
    reference = [DIETClassifier._predict(classifier, message)["i_scores"] for message in messages]
    # The numpy path only: TensorFlow's prediction is not reached.
    monkeypatch.setattr(DIETClassifier, "_predict", lambda self, message: pytest.fail("TensorFlow called"))
    for message, expected in zip(messages, reference, strict=True):
        ours = classifier._predict(message)["i_scores"]
        assert ours.shape == expected.shape
        np.testing.assert_allclose(ours, expected, atol=1e-5)
        # Small probabilities too, relatively (a wrong weight shifts the logits).
        np.testing.assert_allclose(np.log(ours), np.log(expected), atol=1e-3)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory, featurize):
    training, _ = featurize
    return trained(tmp_path_factory, training)


def test_numpy_scores_are_tensorflows(classifier, featurize, monkeypatch):
    _, run = featurize
    messages = run([Message({TEXT: t}) for t, _ in EXAMPLES] + [Message({TEXT: t}) for t in UNSEEN])
    assert classifier.sentence_weights() is not None
    assert_numpy_scores_are_tensorflows(classifier, messages, monkeypatch)


def test_a_fully_connected_model_not_reloaded_is_covered_too(tmp_path_factory, featurize, monkeypatch):
    """connection_density 1 leaves RandomlyConnectedDense without a kernel
    mask; a classifier just trained has not been prepared for prediction."""
    training, run = featurize
    classifier = trained(tmp_path_factory, training, reload=False, epochs=5, connection_density=1.0)
    assert classifier.sentence_weights() is not None
    messages = run([Message({TEXT: t}) for t in UNSEEN])
    assert_numpy_scores_are_tensorflows(classifier, messages, monkeypatch)


def test_the_weights_are_read_with_the_model_not_on_the_first_message(tmp_path_factory, featurize):
    training, _ = featurize
    loaded = trained(tmp_path_factory, training, epochs=2)
    assert loaded._weights_read
    assert loaded._sentence_weights is not None


def test_process_ranks_as_dietclassifier_does(classifier, featurize, monkeypatch):
    _, run = featurize
    texts = [t for t, _ in EXAMPLES] + UNSEEN
    expected = run([Message({TEXT: t}) for t in texts])
    DIETClassifier.process(classifier, expected)
    # The numpy path only: TensorFlow's prediction is not reached.
    monkeypatch.setattr(DIETClassifier, "_predict", lambda self, message: pytest.fail("TensorFlow called"))
    got = classifier.process(run([Message({TEXT: t}) for t in texts]))
    for ours, reference in zip(got, expected, strict=True):
        assert ours.get(INTENT)["name"] == reference.get(INTENT)["name"]
        assert [r["name"] for r in ours.get(INTENT_RANKING_KEY)] == \
            [r["name"] for r in reference.get(INTENT_RANKING_KEY)]
        assert [r["confidence"] for r in ours.get(INTENT_RANKING_KEY)] == \
            pytest.approx([r["confidence"] for r in reference.get(INTENT_RANKING_KEY)], abs=1e-5)
    # Trained well enough for the comparison to mean something.
    right = [message.get(INTENT)["name"] == intent
             for message, (_, intent) in zip(got[: len(EXAMPLES)], EXAMPLES, strict=True)]
    assert sum(right) >= 12


def test_a_message_without_its_dense_sentence_feature_goes_through_diet(classifier, featurize, monkeypatch):
    _, run = featurize
    (message,) = run([Message({TEXT: "忘记密码"})])
    message.features = [f for f in message.features if not f.is_dense()]
    called = []
    monkeypatch.setattr(DIETClassifier, "_predict", lambda self, message: called.append(message))
    assert classifier._predict(message) is None
    assert called == [message]


def test_a_message_whose_sparse_features_are_not_the_models_goes_through_diet(classifier, featurize,
                                                                               monkeypatch):
    _, run = featurize
    (message,) = run([Message({TEXT: "忘记密码"})])
    first_sparse = next(f for f in message.features if f.is_sparse() and f.type == "sentence")
    message.features = [f for f in message.features if f is not first_sparse]
    called = []
    monkeypatch.setattr(DIETClassifier, "_predict", lambda self, message: called.append(message))
    assert classifier._predict(message) is None
    assert called == [message]


def test_an_empty_message_gets_no_intent(classifier, featurize):
    _, run = featurize
    (message,) = classifier.process(run([Message({TEXT: ""})]))
    assert message.get(INTENT) == {"name": None, "confidence": 0.0}


def test_a_setup_the_numpy_path_does_not_cover_predicts_with_tensorflow(tmp_path_factory, featurize, monkeypatch):
    training, run = featurize
    with_transformer = trained(tmp_path_factory, training, epochs=2, number_of_transformer_layers=1,
                               transformer_size=32)
    assert with_transformer.sentence_weights() is None
    called = []
    reference = DIETClassifier._predict

    def through_tensorflow(self, message):
        called.append(message)
        return reference(self, message)

    monkeypatch.setattr(DIETClassifier, "_predict", through_tensorflow)
    (message,) = with_transformer.process(run([Message({TEXT: "忘记密码"})]))
    assert called == [message]
    assert message.get(INTENT)["name"] is not None
