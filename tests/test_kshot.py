"""The k-shot protocol: stratified draws with fixed seeds, the same draws for every strategy, honest summaries."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import TINY, toy_sentiment
from transferkit.cli import main
from transferkit.data.examples import load_examples
from transferkit.errors import ConfigError
from transferkit.evaluation.kshot import KShotResult, kshot_draws, kshot_evaluate
from transferkit.evaluation.kshot_report import format_kshot_table, save_kshot


def test_draws_are_k_per_class_seeded_and_distinct():
    texts = [f"t{i}" for i in range(30)]
    labels = ["a"] * 20 + ["b"] * 7 + ["c"] * 3
    examples = load_examples(texts, labels)
    draws = kshot_draws(examples, 5, repeats=4, seed=0)
    assert len(draws) == 4
    for draw in draws:
        counts = {label: sum(labels[i] == label for i in draw) for label in "abc"}
        assert counts == {"a": 5, "b": 5, "c": 3}  # a class smaller than K gives all it has
        assert len(set(draw)) == len(draw)
    assert draws == kshot_draws(examples, 5, repeats=4, seed=0)  # rerun: the same draws
    assert len({tuple(d) for d in draws}) == 4  # repeats differ
    assert kshot_draws(examples, 5, repeats=4, seed=1) != draws


def test_summary_and_paired_differences_use_the_same_draws():
    runs = []
    for repeat, (probe, full) in enumerate([(0.6, 0.7), (0.5, 0.62), (0.7, 0.79), (0.55, 0.66)]):
        runs.append({"shots": 4, "repeat": repeat, "strategy": "probe", "accuracy": probe})
        runs.append({"shots": 4, "repeat": repeat, "strategy": "full", "accuracy": full})
    result = KShotResult(runs, [4], ["probe", "full"], repeats=4)
    (probe, full) = result.summary()
    assert probe["mean"] == pytest.approx(0.5875) and probe["std"] == pytest.approx(
        np.std([0.6, 0.5, 0.7, 0.55], ddof=1), abs=1e-6
    )
    assert probe["ci95"][0] <= probe["mean"] <= probe["ci95"][1]
    (pair,) = result.paired()
    assert (pair["a"], pair["b"], pair["a_wins"], pair["b_wins"]) == ("probe", "full", 0, 4)
    assert pair["mean_diff"] == pytest.approx(-0.105) and pair["ci95"][1] < 0  # full is better on every draw
    half = 3.182 * np.std([-0.1, -0.12, -0.09, -0.11], ddof=1) / 2  # Student t, 3 degrees of freedom, sqrt(4)
    assert pair["ci95"] == pytest.approx([-0.105 - half, -0.105 + half], abs=1e-5)
    assert "b better" in format_kshot_table(result)


def test_protocol_trains_every_strategy_on_every_draw_and_writes_tables_and_plot(tmp_path):
    (train_x, train_y), (test_x, test_y) = toy_sentiment(80, seed=0), toy_sentiment(30, seed=1)
    result = kshot_evaluate(
        load_examples(train_x, train_y),
        load_examples(test_x, test_y),
        shots=[2, 8],
        repeats=2,
        strategies=["probe", "full"],
        **{**TINY, "epochs": 2},
    )
    assert len(result.runs) == 2 * 2 * 2
    assert {r["train_rows"] for r in result.runs if r["shots"] == 8} == {16}  # no validation hold-out
    assert {r["seed"] for r in result.runs} == {42, 43}
    summary = {(r["shots"], r["strategy"]): r for r in result.summary()}
    assert set(summary) == {(2, "probe"), (2, "full"), (8, "probe"), (8, "full")}
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in result.runs)
    paths = save_kshot(result, tmp_path / "out")
    saved = json.loads(paths["json"].read_text())
    assert saved["protocol"] == "kshot" and len(saved["runs"]) == 8 and len(saved["paired"]) == 2
    assert paths["summary"].read_text().splitlines()[0].startswith("shots,strategy,repeats,mean,std")
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_runs_the_protocol_and_refuses_bad_requests(toy_csv, tmp_path, capsys):
    train, test = toy_csv
    flags = ["--backbone", "tiny-bert", "--epochs", "1", "--head-epochs", "5", "--lr", "5e-3"]
    argv = ["evaluate", "--protocol", "kshot", "--data", str(train), "--test", str(test), "--shots", "4"]
    assert main([*argv, "--repeats", "2", "--strategies", "probe", "--out", str(tmp_path / "k"), *flags]) == 0
    out = capsys.readouterr().out
    assert "accuracy on the test set, 2 draws per K" in out and "probe" in out
    assert (tmp_path / "k" / "kshot_runs.csv").exists()
    assert main([*argv, "--strategies", "probe,nonsense", *flags]) == 2
    assert "Unknown strategies ['nonsense']" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="shots must be positive"):
        kshot_evaluate(str(train), str(test), shots=[0], **TINY)
