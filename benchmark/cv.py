"""Choose DIET's and the IntentBlender's settings by k-fold cross-validation on
the training data alone (the held-out test set in tests/ is never read here).

    python -m benchmark.cv [--folds 5] [--diet epochs=200 ...] [--diet-seeds 42,43,44] [--grid]

Step 1 trains the pipeline up to DIET once per fold (config.yml, with any
--diet overrides) and keeps DIET's ranking of the held-out fold; it is cached
in bench/out/cv/ per data, dictionary, config and overrides, and takes several minutes.
Step 2 is cheaper: it fits the blender's own linear model (tuanjian/rasa_server/nlu/blender.py) on
the other folds, blends and counts the errors on the held-out folds, for the
blender's settings or, with --grid, for a grid of them. With --diet-seeds, step 1
runs once per DIET random seed, and step 2 blends each seed's ranking and their mean
(what an ensemble of DIETs would give).
"""
import argparse
import asyncio
import collections
import hashlib
import itertools
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.shared.nlu.constants import INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from sklearn.model_selection import StratifiedKFold

from benchmark import ROOT, fallback_settings, load_config, pipeline_entry
from benchmark.nlu_eval import FALLBACK, OUT_OF_SCOPE, tfidf_baseline, with_fallback
from tuanjian.settings import NLU_DATA_DIR

CACHE = ROOT / "bench" / "out" / "cv"
GRID: dict[str, list[Any]] = {"C": [30.0, 100.0, 300.0], "max_ngram": [3], "embedding_weight": [2.0],
        "pinyin_weight": [0.0, 1.0, 2.0]}
DIET_WEIGHTS = (0.0, 0.3, 0.5, 0.7, 1.0)


def diet_config(overrides: dict[str, Any]) -> dict[str, Any]:
    config = load_config()
    names = [c["name"] for c in config["pipeline"]]
    diet = next(i for i, name in enumerate(names) if name.endswith("DIETClassifier"))
    config["pipeline"] = config["pipeline"][: diet + 1]
    config["pipeline"][-1].update(overrides)
    config.pop("policies", None)
    return config


def cache_path(folds: int, config: dict[str, Any]) -> Path:
    # DIET's folds depend on the NLU data and the jieba dictionary it tokenizes with.
    files = [*sorted(NLU_DATA_DIR.glob("*.yml")),
             *sorted((ROOT / "data" / "dict").glob("*"))]
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files))
    digest.update(json.dumps([folds, config], sort_keys=True).encode())
    return CACHE / f"{digest.hexdigest()[:16]}.json"


async def diet_rankings(train_data, config, texts: list[str], folder: Path):
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


def cross_validated_diet(folds: int, config: dict[str, Any]) -> dict[str, Any]:
    from rasa.shared.nlu.training_data.loading import load_data
    from rasa.shared.nlu.training_data.training_data import TrainingData
    from rasa.utils.common import configure_logging_and_warnings
    from rasa.utils.log_utils import configure_structlog

    configure_logging_and_warnings(logging.WARNING)
    configure_structlog(logging.WARNING)  # else every parse of every fold is logged
    data = load_data(str(NLU_DATA_DIR))
    examples = data.intent_examples
    texts = [m.get("text") for m in examples]
    gold = [m.get("intent") for m in examples]
    rankings: list[dict[str, float]] = [{} for _ in texts]
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
        for i, r in zip(test_idx, ranked, strict=False):
            rankings[i], fold_of[i] = r, k
    return {"texts": texts, "gold": gold, "fold": fold_of, "diet": rankings}


def diet_folds(folds: int, config: dict[str, Any]) -> dict[str, Any]:
    """cross_validated_diet's result, from the cache when it holds it."""
    path = cache_path(folds, config)
    if path.exists():
        return json.loads(path.read_text("utf-8"))
    cv = cross_validated_diet(folds, config)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cv, ensure_ascii=False), "utf-8")
    return cv


def mean_rankings(runs: list[list[dict[str, float]]]) -> list[dict[str, float]]:
    """Per example, the mean confidence of each intent over the runs (0 where a
    run's ranking left it out)."""
    return [{name: sum(r.get(name, 0.0) for r in rankings) / len(rankings)
             for name in set().union(*rankings)}
            for rankings in zip(*runs, strict=True)]


def featurized(texts: list[str], gold: list[str]) -> list[Message]:
    """The examples as the blender sees them: normalised, tokenized, embedded by
    the pipeline's own components with config.yml's settings."""
    from rasa.engine.storage.resource import Resource
    from rasa.nlu.tokenizers.jieba_tokenizer import JiebaTokenizer

    from tuanjian.rasa_server.nlu.normalizer import ChineseTextNormalizer
    from tuanjian.rasa_server.nlu.sentence_encoder import SentenceEncoderFeaturizer

    pipeline = {c["name"]: c for c in diet_config({})["pipeline"]}
    tokenizer_config = {**JiebaTokenizer.get_default_config(), **pipeline["JiebaTokenizer"]}
    with tempfile.TemporaryDirectory() as tmp:
        storage = LocalModelStorage(Path(tmp))
        components = [
            ChineseTextNormalizer.create(pipeline["tuanjian.rasa_server.nlu.normalizer.ChineseTextNormalizer"],
                                         storage, Resource("normalizer"), None),
            JiebaTokenizer.create(tokenizer_config, storage, Resource("jieba"), None),
            SentenceEncoderFeaturizer({}, "sentence_encoder"),
        ]
        messages = [Message({TEXT: t, INTENT: g}) for t, g in zip(texts, gold, strict=False)]
        for component in components:
            component.process(messages)
    return messages


def evaluate(cv: dict[str, Any], diets: dict[str, list[dict[str, float]]],
             grid: dict[str, list[Any]], base: dict[str, Any], examples: int = 0) -> None:
    """Blend errors for each combination of the grid's values over the `base`
    settings, with each of `diets` (DIET's held-out rankings by name; the
    confusions are listed for the last)."""
    from tuanjian.rasa_server.nlu.blender import fit_linear_model, linear_probabilities

    diet_weight = base["diet_weight"]
    texts = np.array(cv["texts"], dtype=object)
    messages = np.array(featurized(cv["texts"], cv["gold"]), dtype=object)
    gold = np.array(cv["gold"])
    fold = np.array(cv["fold"])
    intents = sorted(set(cv["gold"]))
    # The benchmark's TF-IDF baseline on the same folds: the target is
    # at most half its errors.
    baseline = np.empty(len(gold), dtype=object)
    for k in sorted(set(fold)):
        baseline[fold == k] = tfidf_baseline(texts[fold != k], gold[fold != k], texts[fold == k])
    print(f"TF-IDF baseline errors of {len(gold)}: {int((baseline != gold).sum())}, "
          f"out_of_scope answered {int(((gold == OUT_OF_SCOPE) & (baseline != OUT_OF_SCOPE)).sum())} "
          f"of {int((gold == OUT_OF_SCOPE).sum())}", flush=True)
    for values in itertools.product(*grid.values()):
        changed = dict(zip(grid.keys(), values, strict=False))
        settings = {**base, **changed}
        linear = np.zeros((len(gold), len(intents)))
        for k in sorted(set(fold)):
            model = fit_linear_model(list(messages[fold != k]), settings)
            columns = [intents.index(c) for c in model["classifier"].classes_]
            linear[np.ix_(fold == k, columns)] = linear_probabilities(
                model, list(messages[fold == k]), settings)
        for name, rankings in diets.items():
            diet = np.array([[r.get(i, 0.0) for i in intents] for r in rankings])
            predicted = {w: np.array(intents)[(w * diet + (1 - w) * linear).argmax(1)]
                         for w in DIET_WEIGHTS}
            errors = {w: int((p != gold).sum()) for w, p in predicted.items()}
            label = f"{changed} {name}" if len(diets) > 1 else f"{changed}"
            print(f"{label} errors of {len(gold)} by DIET weight: {errors}", flush=True)
            print("  after the fallback, at DIET weight "
                  f"{diet_weight}: {after_fallback(diet_weight * diet + (1 - diet_weight) * linear, intents, gold)}",
                  flush=True)
    # Where the training data itself is confusable (last settings, the blender's weight):
    # the place to write contrasting examples, without looking at the test set.
    chosen = predicted[diet_weight]
    confused = collections.Counter((g, p) for g, p in zip(gold, chosen, strict=False) if g != p).most_common(12)
    print("most frequent cross-validation errors (gold -> predicted):")
    for (g, p), n in confused:
        print(f"  {n:3d}x {g} -> {p}")
        for text in texts[(gold == g) & (chosen == p)][:examples]:
            print(f"        {text}")


def after_fallback(blended: np.ndarray, intents: list[str], gold: np.ndarray) -> dict[str, int]:
    """The benchmark's count with config.yml's fallback: out_of_scope examples
    answered with an intent (the errors a help desk minds most), and in-scope
    examples answered wrongly or fallen back."""
    fallback = fallback_settings()
    order = np.argsort(-blended, axis=1)[:, :2]
    rankings = [[(intents[j], float(row[j])) for j in top] for row, top in zip(blended, order, strict=True)]
    predicted = np.array(with_fallback(rankings, fallback["threshold"], fallback["ambiguity"]))
    oos = gold == OUT_OF_SCOPE
    return {"out_of_scope answered": int((oos & (predicted != OUT_OF_SCOPE) & (predicted != FALLBACK)).sum()),
            "in-scope wrong or fallen back": int((~oos & (predicted != gold)).sum())}


def blender_settings() -> dict[str, Any]:
    """The IntentBlender's settings in config.yml over its defaults."""
    from tuanjian.rasa_server.nlu.blender import IntentBlender

    return {**IntentBlender.get_default_config(), **pipeline_entry("IntentBlender")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--diet", action="append", default=[], metavar="KEY=VALUE",
                        help="override a DIETClassifier setting of config.yml")
    parser.add_argument("--grid", action="store_true", help="try a grid of blender settings")
    parser.add_argument("--blender", action="append", default=[], metavar="KEY=V1,V2",
                        help="try these values of a blender setting (over config.yml's)")
    parser.add_argument("--examples", type=int, default=0, metavar="N",
                        help="print N misread training examples of each frequent confusion")
    parser.add_argument("--diet-seeds", metavar="S1,S2,...",
                        help="DIET once per random seed; blend each, and the mean of their rankings")
    args = parser.parse_args()
    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.diet)}
    seeds = list(dict.fromkeys(int(s) for s in args.diet_seeds.split(","))) if args.diet_seeds else [None]
    diets = {}
    first: dict[str, Any] | None = None
    for seed in seeds:
        seed_setting = {} if seed is None else {"random_seed": seed}
        config = diet_config({**overrides, **seed_setting})
        cv = diet_folds(args.folds, config)
        print(f"DIET {config['pipeline'][-1]}")
        # The cache is keyed by data and config, not by this code: a split
        # cached by other code must not be blended with this one.
        first = first or cv
        if (cv["texts"], cv["fold"]) != (first["texts"], first["fold"]):
            raise SystemExit(f"seed {seed}: its cached folds are not the first seed's; delete {CACHE}")
        diets[f"seed {seed}"] = cv["diet"]
    if len(diets) > 1:
        diets["mean of the seeds"] = mean_rankings(list(diets.values()))
    settings = blender_settings()
    grid = dict(GRID) if args.grid else {key: [value] for key, value in settings.items() if key in GRID}
    for item in args.blender:
        key, values = item.split("=", 1)
        grid[key] = [yaml.safe_load(v) for v in values.split(",")]
    evaluate(cv, diets, grid, settings, args.examples)


if __name__ == "__main__":
    main()
