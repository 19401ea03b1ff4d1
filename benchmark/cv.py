"""Choose DIET's and the IntentBlender's settings by k-fold cross-validation on
the training data alone (the held-out test set in tests/ is never read here).

    python -m benchmark.cv [--folds 5] [--diet epochs=200 ...] [--grid]

Step 1 trains the pipeline up to DIET once per fold (config.yml, with any
--diet overrides) and keeps DIET's ranking of the held-out fold; it is cached
in bench/out/cv/ per data, config and overrides, and takes several minutes.
Step 2 is cheap: it fits the blender's linear model on the other folds, blends
and counts the errors on the held-out folds, for the blender's settings or,
with --grid, for a grid of them.
"""
import argparse
import asyncio
import collections
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
CACHE = ROOT / "bench" / "out" / "cv"
GRID = {"C": [30.0, 100.0], "max_ngram": [3, 4], "words": [False, True],
        "embedding_weight": [1.0, 2.0]}
DIET_WEIGHTS = (0.0, 0.3, 0.5, 0.7, 1.0)


def diet_config(overrides: Dict[str, object]) -> Dict[str, object]:
    config = yaml.safe_load((ROOT / "config.yml").read_text("utf-8"))
    names = [c["name"] for c in config["pipeline"]]
    config["pipeline"] = config["pipeline"][: names.index("DIETClassifier") + 1]
    config["pipeline"][-1].update(overrides)
    config.pop("policies", None)
    return config


def cache_path(folds: int, config: Dict[str, object]) -> Path:
    files = sorted((ROOT / "data" / "nlu").glob("*.yml"))
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files))
    digest.update(json.dumps([folds, config], sort_keys=True).encode())
    return CACHE / f"{digest.hexdigest()[:16]}.json"


async def diet_rankings(train_data, config, texts: List[str], folder: Path):
    from rasa.core.agent import Agent
    from rasa.model_training import train_nlu

    (folder / "nlu.yml").write_text(train_data.nlu_as_yaml(), "utf-8")
    (folder / "config.yml").write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    model = train_nlu(str(folder / "config.yml"), str(folder / "nlu.yml"),
                      str(folder / "models"), fixed_model_name="fold")
    agent = Agent.load(model)
    out = []
    for text in texts:
        parsed = await agent.parse_message(text)
        out.append({r["name"]: r["confidence"] for r in parsed["intent_ranking"]})
    return out


def cross_validated_diet(folds: int, config: Dict[str, object]) -> Dict[str, object]:
    from rasa.shared.nlu.training_data.loading import load_data
    from rasa.shared.nlu.training_data.training_data import TrainingData
    from rasa.utils.common import configure_logging_and_warnings

    configure_logging_and_warnings(logging.WARNING)
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
            ranked = asyncio.run(
                diet_rankings(fold_data, config, [texts[i] for i in test_idx], Path(tmp)))
        for i, r in zip(test_idx, ranked):
            rankings[i], fold_of[i] = r, k
    return {"texts": texts, "gold": gold, "fold": fold_of, "diet": rankings}


@lru_cache(maxsize=1)
def jieba_with_domain_dictionary():
    import jieba

    for path in sorted((ROOT / "data" / "dict").glob("*.txt")):
        jieba.load_userdict(str(path))
    return jieba


def word_tokens(text: str) -> List[str]:
    return [t for t in jieba_with_domain_dictionary().lcut(text) if t.strip()]


def linear_features(texts, embeddings, vectorizers, embedding_weight):
    parts = [v.transform(texts) for v in vectorizers]
    parts.append(csr_matrix(embeddings * embedding_weight))
    return hstack(parts).tocsr()


def linear_probabilities(settings, normalized, embeddings, gold, fold, intents) -> np.ndarray:
    linear = np.zeros((len(gold), len(intents)))
    for k in sorted(set(fold)):
        train, test = fold != k, fold == k
        vectorizers = [TfidfVectorizer(analyzer="char", sublinear_tf=True,
                                       ngram_range=(1, settings["max_ngram"]))]
        if settings["words"]:
            vectorizers.append(TfidfVectorizer(analyzer=word_tokens, sublinear_tf=True))
        train_texts = [t for t, keep in zip(normalized, train) if keep]
        test_texts = [t for t, keep in zip(normalized, test) if keep]
        for v in vectorizers:
            v.fit(train_texts)
        model = LogisticRegression(C=settings["C"], max_iter=5000)
        model.fit(linear_features(train_texts, embeddings[train], vectorizers,
                                  settings["embedding_weight"]), gold[train])
        columns = [intents.index(c) for c in model.classes_]
        linear[np.ix_(test, columns)] = model.predict_proba(
            linear_features(test_texts, embeddings[test], vectorizers,
                            settings["embedding_weight"]))
    return linear


def evaluate(cv: Dict[str, object], grid: Dict[str, list]) -> None:
    from bot.nlu.sentence_encoder import embed
    from bot.nlu.text import normalize

    normalized = [normalize(t) for t in cv["texts"]]
    embeddings = embed(normalized)
    gold = np.array(cv["gold"])
    fold = np.array(cv["fold"])
    intents = sorted(set(cv["gold"]))
    diet = np.array([[r.get(i, 0.0) for i in intents] for r in cv["diet"]])
    for values in itertools.product(*grid.values()):
        settings = dict(zip(grid.keys(), values))
        linear = linear_probabilities(settings, normalized, embeddings, gold, fold, intents)
        predicted = {w: np.array(intents)[(w * diet + (1 - w) * linear).argmax(1)]
                     for w in DIET_WEIGHTS}
        errors = {w: int((p != gold).sum()) for w, p in predicted.items()}
        print(f"{settings} errors of {len(gold)} by DIET weight: {errors}", flush=True)
    # Where the training data itself is confusable (last settings, plain average):
    # the place to write contrasting examples, without looking at the test set.
    confused = collections.Counter(
        (g, p) for g, p in zip(gold, predicted[0.5]) if g != p).most_common(12)
    print("most frequent cross-validation errors (gold -> predicted):")
    for (g, p), n in confused:
        print(f"  {n:3d}x {g} -> {p}")


def blender_settings() -> Dict[str, list]:
    from bot.nlu.blender import IntentBlender

    chosen = IntentBlender.get_default_config()
    return {"C": [chosen["C"]], "max_ngram": [chosen["max_ngram"]], "words": [True],
            "embedding_weight": [chosen["embedding_weight"]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--diet", action="append", default=[], metavar="KEY=VALUE",
                        help="override a DIETClassifier setting of config.yml")
    parser.add_argument("--grid", action="store_true", help="try a grid of blender settings")
    args = parser.parse_args()
    overrides = dict(item.split("=", 1) for item in args.diet)
    config = diet_config({k: yaml.safe_load(v) for k, v in overrides.items()})
    path = cache_path(args.folds, config)
    if path.exists():
        cv = json.loads(path.read_text("utf-8"))
    else:
        cv = cross_validated_diet(args.folds, config)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(cv, ensure_ascii=False), "utf-8")
    print(f"DIET {config['pipeline'][-1]}")
    evaluate(cv, GRID if args.grid else blender_settings())


if __name__ == "__main__":
    main()
