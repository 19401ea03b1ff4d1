"""Choose the IntentBlender's settings by k-fold cross-validation on the
training data alone (the held-out test set in tests/ is never read here).

    python -m benchmark.cv [--folds 5]

Step 1 trains the pipeline up to DIET once per fold and keeps DIET's ranking of
the held-out fold (cached in bench/out/cv_diet.json until data/nlu or config.yml change;
several minutes). Step 2
is cheap: for each candidate linear model and DIET weight it fits on the other
folds, blends and counts the errors on the held-out fold.
"""
import argparse
import asyncio
import hashlib
import itertools
import json
import logging
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Dict, List

import numpy as np
import yaml
from scipy.sparse import csr_matrix, hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / "out" / "cv_diet.json"


def fingerprint(folds: int) -> str:
    files = sorted((ROOT / "data" / "nlu").glob("*.yml")) + [ROOT / "config.yml"]
    return hashlib.sha256(b"".join(f.read_bytes() for f in files) + bytes([folds])).hexdigest()


def diet_config(folder: Path) -> Path:
    config = yaml.safe_load((ROOT / "config.yml").read_text("utf-8"))
    names = [c["name"] for c in config["pipeline"]]
    config["pipeline"] = config["pipeline"][: names.index("DIETClassifier") + 1]
    config.pop("policies", None)
    path = folder / "config.yml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    return path


async def diet_rankings(train_data, texts: List[str], folder: Path) -> List[Dict[str, float]]:
    from rasa.core.agent import Agent
    from rasa.model_training import train_nlu

    nlu = folder / "nlu.yml"
    nlu.write_text(train_data.nlu_as_yaml(), "utf-8")
    model = train_nlu(str(diet_config(folder)), str(nlu), str(folder / "models"),
                      fixed_model_name="fold")
    agent = Agent.load(model)
    out = []
    for text in texts:
        parsed = await agent.parse_message(text)
        out.append({r["name"]: r["confidence"] for r in parsed["intent_ranking"]})
    return out


def cross_validated_diet(folds: int) -> Dict[str, object]:
    from rasa.shared.nlu.training_data.loading import load_data
    from rasa.shared.nlu.training_data.training_data import TrainingData
    from rasa.utils.common import configure_logging_and_warnings

    configure_logging_and_warnings(logging.WARNING)
    data_fingerprint = fingerprint(folds)
    data = load_data(str(ROOT / "data" / "nlu"))
    examples = data.intent_examples
    texts = [m.get("text") for m in examples]
    gold = [m.get("intent") for m in examples]
    rankings: List[Dict[str, float]] = [{} for _ in texts]
    fold_of = [0] * len(texts)
    split = StratifiedKFold(folds, shuffle=True, random_state=0)
    for k, (train_idx, test_idx) in enumerate(split.split(texts, gold)):
        print(f"fold {k + 1}/{folds}: training DIET on {len(train_idx)} examples", flush=True)
        fold_data = TrainingData(
            training_examples=[examples[i] for i in train_idx],
            lookup_tables=data.lookup_tables, regex_features=data.regex_features)
        with tempfile.TemporaryDirectory() as tmp:
            ranked = asyncio.run(diet_rankings(fold_data, [texts[i] for i in test_idx], Path(tmp)))
        for i, r in zip(test_idx, ranked):
            rankings[i], fold_of[i] = r, k
    return {"fingerprint": data_fingerprint, "texts": texts, "gold": gold, "fold": fold_of,
            "diet": rankings}


def linear_features(texts, embeddings, vectorizers, embedding_weight):
    parts = [v.transform(texts) for v in vectorizers]
    if embedding_weight:
        parts.append(csr_matrix(embeddings * embedding_weight))
    return hstack(parts).tocsr()


@lru_cache(maxsize=1)
def jieba_with_domain_dictionary():
    import jieba

    for path in sorted((ROOT / "data" / "dict").glob("*.txt")):
        jieba.load_userdict(str(path))
    return jieba


def word_tokens(text: str) -> List[str]:
    return [t for t in jieba_with_domain_dictionary().lcut(text) if t.strip()]


def evaluate_variants(cv: Dict[str, object]) -> None:
    from bot.nlu.sentence_encoder import embed
    from bot.nlu.text import normalize

    normalized = [normalize(t) for t in cv["texts"]]
    embeddings = embed(normalized)
    gold = np.array(cv["gold"])
    fold = np.array(cv["fold"])
    intents = sorted(set(cv["gold"]))
    diet = np.array([[r.get(i, 0.0) for i in intents] for r in cv["diet"]])
    print(f"DIET alone: {int((np.array(intents)[diet.argmax(1)] != gold).sum())} errors "
          f"of {len(gold)}")

    grid = {"C": [30.0, 100.0], "max_ngram": [3, 4], "words": [False, True],
            "embedding_weight": [1.0, 2.0]}
    for values in itertools.product(*grid.values()):
        settings = dict(zip(grid.keys(), values))
        linear = np.zeros_like(diet)
        for k in sorted(set(fold)):
            train, test = fold != k, fold == k
            vectorizers = [TfidfVectorizer(analyzer="char", sublinear_tf=True,
                                           ngram_range=(1, settings["max_ngram"]))]
            if settings["words"]:
                vectorizers.append(TfidfVectorizer(analyzer=word_tokens, sublinear_tf=True))
            train_texts = [t for t, keep in zip(normalized, train) if keep]
            for v in vectorizers:
                v.fit(train_texts)
            test_texts = [t for t, keep in zip(normalized, test) if keep]
            model = LogisticRegression(C=settings["C"], max_iter=5000)
            model.fit(linear_features(train_texts, embeddings[train], vectorizers,
                                      settings["embedding_weight"]), gold[train])
            columns = [intents.index(c) for c in model.classes_]
            linear[np.ix_(test, columns)] = model.predict_proba(
                linear_features(test_texts, embeddings[test], vectorizers,
                                settings["embedding_weight"]))
        errors = {w: int((np.array(intents)[(w * diet + (1 - w) * linear).argmax(1)] != gold).sum())
                  for w in (0.0, 0.3, 0.5, 0.7)}
        print(settings, "errors by DIET weight:", errors, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    cached = json.loads(CACHE.read_text("utf-8")) if CACHE.exists() else {}
    if cached.get("fingerprint") != fingerprint(args.folds):
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        cached = cross_validated_diet(args.folds)
        CACHE.write_text(json.dumps(cached, ensure_ascii=False), "utf-8")
    evaluate_variants(cached)


if __name__ == "__main__":
    main()
