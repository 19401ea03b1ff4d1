"""How the benchmark counts: the figures the issue's targets are read from."""
from typing import Any

import pytest
from aiohttp import test_utils, web

from benchmark.nlu_eval import FALLBACK, errors_by_file, is_correct, scores, sweep, tfidf_baseline, with_fallback
from benchmark.run import percentile, short_conversations


@pytest.mark.parametrize("gold, predicted, correct", [
    ("faq_quit_league", "faq_quit_league", True),
    ("faq_quit_league", "faq_auto_approval", False),
    ("faq_quit_league", FALLBACK, False),  # an in-scope message that falls back is an error
    ("out_of_scope", FALLBACK, True),  # declining either way is right
    ("out_of_scope", "out_of_scope", True),
    ("out_of_scope", "greet", False),
])
def test_a_fallback_is_right_only_for_out_of_scope(gold, predicted, correct):
    assert is_correct(gold, predicted) is correct


def test_scores_count_rejection_and_in_scope_fallback_separately():
    gold = ["greet", "greet", "thank", "out_of_scope", "out_of_scope"]
    predicted = ["greet", FALLBACK, "greet", FALLBACK, "thank"]
    result: dict[str, Any] = scores(gold, predicted)
    assert result["accuracy"] == pytest.approx(2 / 5)
    assert result["oos_rejection"] == pytest.approx(1 / 2)
    assert result["in_scope_fallback"] == pytest.approx(1 / 3)
    assert sorted(result["errors"]) == [("greet", FALLBACK), ("out_of_scope", "thank"), ("thank", "greet")]
    assert result["per_intent_f1"]["greet"] == pytest.approx(2 * 0.5 * 0.5 / (0.5 + 0.5))


def test_errors_are_counted_for_each_test_set_file():
    files = ["a.yml", "a.yml", "b.yml", "b.yml", "b.yml"]
    gold = ["greet", "thank", "greet", "out_of_scope", "thank"]
    ours = ["greet", FALLBACK, "greet", FALLBACK, "greet"]
    baseline = ["thank", "thank", "thank", "greet", "greet"]
    assert errors_by_file(files, gold, {"ours": ours, "baseline": baseline}) == {
        "a.yml": {"n": 2, "ours": 1, "baseline": 1},
        "b.yml": {"n": 3, "ours": 1, "baseline": 3},
    }


def test_with_fallback_applies_rasas_threshold_and_ambiguity_rule():
    rankings = [
        [("greet", 0.80), ("thank", 0.10)],
        [("greet", 0.39), ("thank", 0.30)],  # below the threshold
        [("greet", 0.50), ("thank", 0.47)],  # too close to the runner-up
        [("greet", 0.40), ("thank", 0.35)],  # exactly at the threshold stays
    ]
    assert with_fallback(rankings, 0.4, 0.05) == ["greet", FALLBACK, FALLBACK, "greet"]
    assert with_fallback(rankings, 0.4, 0.0) == ["greet", FALLBACK, "greet", "greet"]


def test_the_sweep_counts_each_files_errors_at_each_threshold():
    files = ["a.yml", "b.yml", "b.yml"]
    gold = ["greet", "thank", "out_of_scope"]
    rankings = [
        [("greet", 0.45), ("thank", 0.40)],  # answered below 0.5, falls back at 0.5: an error in a.yml
        [("thank", 0.90), ("greet", 0.05)],
        [("thank", 0.55), ("out_of_scope", 0.40)],  # answered wrongly up to 0.5, rejected at 0.6
    ]
    result = sweep(rankings, gold, files)
    assert result["0.40 / 0.00"]["errors_by_file"] == {"a.yml": 0, "b.yml": 1}
    assert result["0.50 / 0.00"]["errors_by_file"] == {"a.yml": 1, "b.yml": 1}
    assert result["0.60 / 0.00"]["errors_by_file"] == {"a.yml": 1, "b.yml": 0}
    assert result["0.40 / 0.10"]["errors_by_file"] == {"a.yml": 1, "b.yml": 1}  # 0.45 - 0.40 is too close
    assert result["0.60 / 0.00"]["accuracy"] == pytest.approx(2 / 3)
    assert len(result) == 7 * 4


def test_percentile_is_the_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.95) == 95
    assert percentile([7.0], 0.95) == 7.0


def test_baseline_reads_traditional_characters_through_the_normaliser():
    texts = ["忘记密码", "密码忘了", "重置密码", "你好", "您好", "早上好"]
    labels = ["faq_forgot_password"] * 3 + ["greet"] * 3
    assert tfidf_baseline(texts, labels, ["忘記密碼怎麼辦", "你好呀"]) == ["faq_forgot_password", "greet"]


async def test_short_conversations_are_new_senders_one_after_another():
    received = []

    async def webhook(request):
        received.append(await request.json())
        return web.json_response([{"text": "ok"}])

    app = web.Application()
    app.router.add_post("/webhooks/rest/webhook", webhook)
    texts = [f"m{i}" for i in range(10)]
    async with test_utils.TestServer(app) as server:
        latencies = await short_conversations(str(server.make_url("/webhooks/rest/webhook")), texts, 3, 2)
    assert len(latencies) == 6
    assert [m["message"] for m in received] == ["m0", "m1", "m2", "m3", "m4", "m5"]
    senders = [m["sender"] for m in received]
    assert senders[0] == senders[1] != senders[2] == senders[3] != senders[4] == senders[5]


def test_file_figures_count_unknowns_and_offered_buttons():
    from benchmark.nlu_eval import file_figures

    gold = ["greet", "thank", "faq_quit_league", "out_of_scope", "out_of_scope", "out_of_scope"]
    predicted = ["greet", FALLBACK, FALLBACK, FALLBACK, "faq_quit_league", "out_of_scope"]
    kinds = [None, None, None, "unknown", "unknown", "near"]
    offered = [[], ["greet"], ["faq_quit_league", "greet"], [], [], []]
    figures = file_figures(gold, predicted, kinds, offered)
    assert figures["n"] == 6
    assert figures["accuracy"] == pytest.approx(3 / 6)
    assert figures["in_scope_accuracy"] == pytest.approx(1 / 3)
    assert figures["oos_rejection"] == pytest.approx(2 / 3)
    assert figures["unknown_rejection"] == pytest.approx(1 / 2)
    # greet answered; faq_quit_league offered; thank fell back without its button.
    assert figures["answered_or_offered"] == pytest.approx(2 / 3)
    assert file_figures(["greet"], ["greet"], [None], [[]])["unknown_rejection"] is None


def test_stock_comparison_alternates_which_goes_first(monkeypatch, capsys):
    from pathlib import Path

    import benchmark.load as load

    stock = Path("stock.tar.gz")
    order: list[str] = []
    rates = iter([30.0, 20.0, 40.0, 20.0, 30.0, 30.0])  # in the order measured

    def measure(replicas, levels, seconds, model=load.settings.MODEL_PATH):
        order.append("stock" if model == stock else "ours")
        return {"per_second": next(rates)}

    monkeypatch.setattr(load, "measure", measure)
    load.compare_with_stock(stock, 3, [5], 1.0, None)
    assert order == ["ours", "stock", "stock", "ours", "ours", "stock"]
    out = capsys.readouterr().out
    # Round 2 measured stock (40) before ours (20): the ratio pairs them, not the order.
    assert "round 1: ours / stock Rasa, one replica: 1.50x" in out
    assert "round 2: ours / stock Rasa, one replica: 0.50x" in out
    assert "over 3 rounds: ours / stock Rasa 1.00x (median), 0.50x to 1.50x" in out


def test_stock_comparison_reuses_the_replica_run_already_measured(monkeypatch):
    from pathlib import Path

    import benchmark.load as load

    calls: list[Path] = []

    def measure(replicas, levels, seconds, model=load.settings.MODEL_PATH):
        calls.append(model)
        return {"per_second": 10.0}

    monkeypatch.setattr(load, "measure", measure)
    load.compare_with_stock(Path("stock.tar.gz"), 1, [5], 1.0, {"per_second": 12.0})
    assert calls == [Path("stock.tar.gz")]


def test_load_figures_count_what_shares_the_cores_beside_the_topology():
    """The 2-replica ratio depends on what else uses the two cores: the
    stores' servers and the load driver itself are counted beside the topology."""
    import os
    import types

    import psutil

    import benchmark.load as load

    topology = types.SimpleNamespace(processes=types.SimpleNamespace(pids={"rasa-0": os.getppid()}))
    sum(i * i for i in range(200_000))  # the driver has used some CPU
    found = load.processes(topology)  # type: ignore[arg-type]
    assert {"rasa-0", "postgresql", "redis", "driver"} <= set(found)
    assert found["driver"]["cpu_s"] > 0 and found["driver"]["rss_mb"] > 0
    running = {process.info["name"] for process in psutil.process_iter(["name"])}
    for name, command in load.SHARING.items():
        assert (found[name]["rss_mb"] > 0) == (command in running), name


def test_cross_validation_averages_the_seeds_rankings_with_a_left_out_intent_at_zero():
    from benchmark.cv import mean_rankings

    # Three runs of two examples: a mean over the examples would differ.
    first = [{"greet": 0.9, "thank": 0.3}, {"deny": 0.9}]
    second = [{"greet": 0.3, "affirm": 0.6}, {"deny": 0.6, "affirm": 0.3}]
    third = [{"greet": 0.6}, {"deny": 0.3}]
    averaged = mean_rankings([first, second, third])
    assert averaged[0] == pytest.approx({"greet": 0.6, "thank": 0.1, "affirm": 0.2})
    assert averaged[1] == pytest.approx({"deny": 0.6, "affirm": 0.1})
