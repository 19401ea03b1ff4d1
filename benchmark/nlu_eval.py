"""Accuracy figures on the held-out NLU test set, ours and a TF-IDF baseline."""
from collections import Counter
from collections.abc import Sequence

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.pipeline import make_pipeline

from tuanjian.text import normalize

FALLBACK = "nlu_fallback"
OUT_OF_SCOPE = "out_of_scope"


def is_correct(gold: str, predicted: str) -> bool:
    """Falling back is the right outcome for out_of_scope and wrong otherwise."""
    if gold == OUT_OF_SCOPE:
        return predicted in (OUT_OF_SCOPE, FALLBACK)
    return predicted == gold


def scores(gold: Sequence[str], predicted: Sequence[str]) -> dict[str, object]:
    # For F1 a fallback on out_of_scope counts as out_of_scope (both reject).
    folded = [
        OUT_OF_SCOPE if g == OUT_OF_SCOPE and p == FALLBACK else p
        for g, p in zip(gold, predicted, strict=False)
    ]
    labels = sorted(set(gold))
    per_intent = f1_score(gold, folded, labels=labels, average=None, zero_division=0)
    in_scope = [p for g, p in zip(gold, predicted, strict=False) if g != OUT_OF_SCOPE]
    oos = [p for g, p in zip(gold, predicted, strict=False) if g == OUT_OF_SCOPE]
    return {
        "n": len(gold),
        "accuracy": sum(map(is_correct, gold, predicted)) / len(gold),
        "macro_f1": float(f1_score(gold, folded, labels=labels, average="macro", zero_division=0)),
        "per_intent_f1": dict(zip(labels, map(float, per_intent), strict=False)),
        "oos_rejection": sum(p in (OUT_OF_SCOPE, FALLBACK) for p in oos) / max(len(oos), 1),
        "in_scope_fallback": sum(p == FALLBACK for p in in_scope) / max(len(in_scope), 1),
        "errors": [
            (g, p) for g, p in zip(gold, predicted, strict=False) if not is_correct(g, p)
        ],
    }


def errors_by_file(files: Sequence[str], gold: Sequence[str],
                   predictions: dict[str, Sequence[str]]) -> dict[str, dict[str, int]]:
    """Per test-set file: its size and each model's errors, so every author's
    batch can be read on its own."""
    out: dict[str, dict[str, int]] = {}
    for name in dict.fromkeys(files):
        rows = [i for i, f in enumerate(files) if f == name]
        out[name] = {"n": len(rows), **{
            model: sum(not is_correct(gold[i], predicted[i]) for i in rows)
            for model, predicted in predictions.items()}}
    return out


UNKNOWN = "unknown"  # the `kind` of an out_of_scope test message the FAQ does not answer


def file_figures(gold: Sequence[str], predicted: Sequence[str], kinds: Sequence[str | None],
                 offered: Sequence[Sequence[str]]) -> dict[str, object]:
    """The figures issue #15 sets targets on, for one batch of messages.

    `offered[i]`: the intents whose buttons a fallback on message i shows
    ("您是不是想问…"). A message is answered-or-offered when it is answered
    right, or falls back with its intent among those buttons (in-scope only)."""
    in_scope = [i for i, g in enumerate(gold) if g != OUT_OF_SCOPE]
    oos = [i for i, g in enumerate(gold) if g == OUT_OF_SCOPE]
    unknown = [i for i in oos if kinds[i] == UNKNOWN]

    def share(rows: list[int], ok) -> float | None:
        return sum(1 for i in rows if ok(i)) / len(rows) if rows else None

    def rejected(i: int) -> bool:
        return predicted[i] in (OUT_OF_SCOPE, FALLBACK)

    return {
        "n": len(gold),
        "accuracy": share(list(range(len(gold))), lambda i: is_correct(gold[i], predicted[i])),
        "in_scope_accuracy": share(in_scope, lambda i: predicted[i] == gold[i]),
        "oos_rejection": share(oos, rejected),
        "unknown_rejection": share(unknown, rejected),
        "answered_or_offered": share(in_scope, lambda i: predicted[i] == gold[i] or (
            predicted[i] == FALLBACK and gold[i] in offered[i])),
    }


def with_fallback(
    rankings: list[list[tuple[str, float]]], threshold: float, ambiguity: float
) -> list[str]:
    """Re-apply Rasa's FallbackClassifier rule to raw classifier rankings."""
    out = []
    for ranking in rankings:
        (top, conf), second = ranking[0], (ranking[1][1] if len(ranking) > 1 else 0.0)
        out.append(FALLBACK if conf < threshold or conf - second < ambiguity else top)
    return out


def sweep(rankings: list[list[tuple[str, float]]], gold: Sequence[str],
          files: Sequence[str]) -> dict[str, dict[str, object]]:
    """Scores and each file's errors at every fallback threshold and ambiguity
    threshold tried. The threshold is the one setting the test set may choose
    (issue #15), and a file's own errors show what a choice costs it."""
    out: dict[str, dict[str, object]] = {}
    for threshold in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7):
        for ambiguity in (0.0, 0.02, 0.05, 0.1):
            predicted = with_fallback(rankings, threshold, ambiguity)
            out[f"{threshold:.2f} / {ambiguity:.2f}"] = {
                **scores(gold, predicted),
                "errors_by_file": {name: counts["ours"] for name, counts in
                                   errors_by_file(files, gold, {"ours": predicted}).items()}}
    return out


def tfidf_baseline(
    train_texts: Sequence[str], train_labels: Sequence[str], test_texts: Sequence[str]
) -> list[str]:
    """Character 1-3-gram TF-IDF + logistic regression on normalised text."""
    model = make_pipeline(
        TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True),
        LogisticRegression(C=10, max_iter=2000),
    )
    model.fit([normalize(t) for t in train_texts], train_labels)
    return list(model.predict([normalize(t) for t in test_texts]))


def confusions(errors: list[tuple[str, str]], top: int = 10) -> list[tuple[tuple[str, str], int]]:
    return Counter(errors).most_common(top)
