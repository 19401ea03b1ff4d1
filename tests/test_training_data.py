"""The training and test data meet the project's contract."""
import re
from collections import Counter

import pytest
import yaml
from rasa.shared.nlu.training_data.loading import load_data

from benchmark import TEST_FILES
from tuanjian.settings import DOMAIN_DIR, NLU_DATA_DIR, SOURCE_DIR
from tuanjian.text import normalize

SPEC = (SOURCE_DIR / "intents.md").read_text("utf-8")
CONTRACT_INTENTS = sorted(set(re.findall(r"`([a-z_]+)`", SPEC)) - {"nlu_fallback"})
FAQ_INTENTS = [i for i in CONTRACT_INTENTS if i.startswith("faq_")]


@pytest.fixture(scope="module")
def training():
    return load_data(str(NLU_DATA_DIR))


@pytest.fixture(scope="module")
def test_set():
    # The files the benchmark reads, one per author.
    assert [p.name for p in TEST_FILES][:1] == ["test_set.yml"]
    data = load_data(str(TEST_FILES[0]))
    for path in TEST_FILES[1:]:
        data = data.merge(load_data(str(path)))
    return data


def counts(data):
    return Counter(m.get("intent") for m in data.intent_examples)


def test_contract_lists_all_intents():
    assert len(FAQ_INTENTS) == 17
    assert "check_transfer_status" in CONTRACT_INTENTS
    assert "out_of_scope" in CONTRACT_INTENTS


def test_domain_declares_every_contract_intent():
    domain = yaml.safe_load((DOMAIN_DIR / "core.yml").read_text("utf-8"))
    assert set(CONTRACT_INTENTS) <= set(domain["intents"])


@pytest.mark.parametrize("intent", FAQ_INTENTS)
def test_faq_has_at_least_30_examples(training, intent):
    assert counts(training)[intent] >= 30


def test_out_of_scope_has_at_least_80_examples(training):
    assert counts(training)["out_of_scope"] >= 80


@pytest.mark.parametrize("intent", CONTRACT_INTENTS)
def test_every_intent_is_trained_and_tested(training, test_set, intent):
    assert counts(training)[intent] > 0
    assert counts(test_set)[intent] >= 8


def test_test_set_is_disjoint_from_training(training, test_set):
    # Compared after normalisation: a traditional-character copy is still a copy.
    trained = {normalize(m.get("text")) for m in training.intent_examples}
    leaked = [m.get("text") for m in test_set.intent_examples if normalize(m.get("text")) in trained]
    assert leaked == []


def test_no_example_has_two_intents(training):
    seen: dict[str, str] = {}
    clashes = []
    for message in training.intent_examples:
        key = normalize(message.get("text"))
        if seen.setdefault(key, message.get("intent")) != message.get("intent"):
            clashes.append(message.get("text"))
    assert clashes == []
