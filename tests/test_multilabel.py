"""Multi-label classification: label parsing, metrics against scikit-learn, threshold tuning, every strategy on a
learnable toy task, persistence and plain-transformers export, the CLI and report, and feature vectors."""

from __future__ import annotations

import json
import random

import numpy as np
import pandas as pd
import pytest

import transferkit as tk
from conftest import TINY
from transferkit.cli import main
from transferkit.data import load_examples
from transferkit.data.checks import check_data
from transferkit.data.splits import stratified_split
from transferkit.errors import ConfigError, DataError
from transferkit.evaluation.multilabel_metrics import multilabel_metrics, tune_thresholds

KEYWORDS = {"a": "good", "b": "bad"}  # a text holding the word carries the label; both, one or none
FILLER = ["the", "film", "movie", "was", "very", "really", "it", "this"]
FAST = {**TINY, "task": "multilabel", "val_fraction": 0.2, "probe_lr": 5e-2}
PROBE_TEXTS = ["good film", "bad bad movie", "it was good and bad", "the film"]


def toy_multilabel(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(n):
        chosen = [label for label in KEYWORDS if rng.random() < 0.5]
        words = [KEYWORDS[label] for label in chosen] * 2 + rng.choices(FILLER, k=rng.randint(1, 5))
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append("|".join(chosen))
    return texts, labels


def test_labels_are_parsed_into_sorted_unique_tuples():
    texts = ["t1", "t2", "t3", "t4"]
    examples = load_examples(texts, ["b|a|a", "", " c ", ["a", "c"]], task="multilabel")
    assert examples.labels == [("a", "b"), (), ("c",), ("a", "c")] and examples.task == "multilabel"
    assert examples.class_counts() == {"a": 2, "b": 1, "c": 2}
    assert load_examples(texts[:2], ["x;y", "y"], task="multilabel", label_separator=";").labels == [("x", "y"), ("y",)]
    assert load_examples(texts[:2], ["1|3", 2], task="multilabel").labels == [(1, 3), (2,)]
    frame = pd.DataFrame({"text": texts, "labels": ["a|b", None, "a", "b"]})  # an empty CSV cell reads as NaN
    assert load_examples(frame, task="multilabel").labels == [("a", "b"), (), ("a",), ("b",)]
    with pytest.raises(DataError, match=r"row 2 holds \[1\.5\]"):
        load_examples(texts[:2], ["a", [1.5]], task="multilabel")
    import datasets

    features = datasets.Features(
        {"text": datasets.Value("string"), "tags": datasets.Sequence(datasets.ClassLabel(names=["x", "y"]))}
    )
    dataset = datasets.Dataset.from_dict({"text": ["t1", "t2", "t3"], "tags": [[1, 0], [], [1]]}, features=features)
    assert load_examples(dataset, task="multilabel", label="tags").labels == [("x", "y"), (), ("y",)]
    with pytest.raises(DataError, match="--task multilabel"):
        load_examples(texts[:2], [["a", "b"], ["a"]])  # lists of labels without the multilabel task
    with pytest.raises(ConfigError, match="label_separator"):
        tk.FineTuner(task="multilabel", label_separator="").fit(texts, ["a", "b", "a", "b"])


def test_splits_checks_and_fingerprints_take_label_sets():
    texts, labels = toy_multilabel(40)
    examples = load_examples(texts, labels, task="multilabel")
    keep, held = stratified_split(examples, 0.25, seed=0)
    assert len(held) == 10 and sorted(keep + held) == list(range(40))
    assert (
        examples.fingerprint()
        == load_examples(texts, [y.split("|")[::-1] for y in labels], task="multilabel").fingerprint()
    )
    rare = load_examples([f"text number {i}" for i in range(12)], ["a|Rare", *["a"] * 10, "a| rare"], task="multilabel")
    report = check_data(rare)
    checks = {p.check for p in report.problems}
    assert {"tiny_classes", "label_variants"} <= checks and report.summary["class_counts"]["a"] == 12


def test_metrics_match_scikit_learn_and_intervals_hold_the_estimate():
    from sklearn.metrics import accuracy_score, f1_score, hamming_loss

    rng = np.random.default_rng(0)
    true = rng.random((200, 5)) < 0.3
    true[:, 4] = False  # a label absent from the test set: left out of macro-F1, as in classification
    pred = np.where(rng.random((200, 5)) < 0.8, true, ~true)
    metrics = multilabel_metrics(true, pred, list("abcde"), intervals=True)
    assert metrics["micro_f1"] == pytest.approx(f1_score(true, pred, average="micro"))
    assert metrics["macro_f1"] == pytest.approx(f1_score(true, pred, average="macro", labels=[0, 1, 2, 3]))
    assert metrics["subset_accuracy"] == pytest.approx(accuracy_score(true, pred))
    assert metrics["hamming_loss"] == pytest.approx(hamming_loss(true, pred))
    assert metrics["per_label"]["b"]["f1"] == pytest.approx(f1_score(true[:, 1], pred[:, 1]))
    for key in ("micro_f1", "macro_f1", "subset_accuracy"):
        low, high = metrics["ci95"][key]
        assert low <= metrics[key] <= high and high - low < 0.3


def test_thresholds_maximise_each_labels_f1():
    rng = np.random.default_rng(1)
    true = rng.random((300, 3)) < 0.4
    true[:, 2] = False  # never positive: keeps 0.5
    probabilities = np.where(true, 0.35, 0.15) + rng.uniform(-0.1, 0.1, true.shape)  # separable at 0.25
    probabilities[:, 1] = np.where(true[:, 1], 0.8, 0.4) + rng.uniform(-0.05, 0.05, 300)  # separable at 0.5-0.7
    thresholds = tune_thresholds(true, probabilities)
    assert thresholds[0] == 0.25 and thresholds[1] == 0.5 and thresholds[2] == 0.5


STRATEGIES = [
    ("probe", {}),
    ("freeze", {"trainable_blocks": 1}),
    ("lora", {"lora_r": 4}),
    ("full", {}),
    ("lp-ft", {"head_epochs": 5}),
]


@pytest.mark.parametrize("strategy, options", STRATEGIES, ids=[s for s, _ in STRATEGIES])
def test_every_strategy_learns_and_reloads_identically(tmp_path, strategy, options):
    model = tk.FineTuner(**{**FAST, "strategy": strategy, **options}).fit(*toy_multilabel(120), verbose=False)
    metrics = model.evaluate(*toy_multilabel(40, seed=1))
    assert metrics["micro_f1"] >= 0.8 and metrics["subset_accuracy"] >= 0.6, (strategy, metrics["micro_f1"])
    assert model.classes_ == ["a", "b"] and model.predict_proba(PROBE_TEXTS).shape == (4, 2)
    assert model.task_.threshold_source == "validation"
    model.save(tmp_path / "run")
    reloaded = tk.load(tmp_path / "run")
    assert np.array_equal(reloaded.predict_proba(PROBE_TEXTS), model.predict_proba(PROBE_TEXTS))
    assert reloaded.predict(PROBE_TEXTS) == model.predict(PROBE_TEXTS)
    assert reloaded.task_.thresholds == pytest.approx(model.task_.thresholds, abs=1e-4)


def test_thresholds_saved_and_plain_transformers_export(tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = tk.FineTuner(**{**FAST, "strategy": "full"}).fit(*toy_multilabel(120), verbose=False)
    model.save(tmp_path / "run")
    manifest = json.loads((tmp_path / "run" / "transferkit.json").read_text())
    assert manifest["task"] == "multilabel" and manifest["labels"] == ["a", "b"]
    assert len(manifest["thresholds"]) == 2 and manifest["threshold_source"] == "validation"
    assert manifest["native_export"]["written"] and manifest["native_export"]["problem_type"] == (
        "multi_label_classification"
    )
    plain = AutoModelForSequenceClassification.from_pretrained(tmp_path / "run").eval()
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "run")
    assert plain.config.problem_type == "multi_label_classification"
    with torch.no_grad():
        probabilities = torch.sigmoid(plain(**tokenizer(PROBE_TEXTS, padding=True, return_tensors="pt")).logits)
    assert np.allclose(probabilities.numpy(), model.predict_proba(PROBE_TEXTS), atol=1e-4)


def test_without_validation_thresholds_stay_at_one_half():
    model = tk.FineTuner(**{**FAST, "strategy": "probe", "val_fraction": 0.0}).fit(*toy_multilabel(60), verbose=False)
    assert model.task_.thresholds == [0.5, 0.5] and model.task_.threshold_source == "default"
    probabilities = model.predict_proba(PROBE_TEXTS)
    assert model.predict(PROBE_TEXTS) == [tuple(k for k, p in zip("ab", row) if p >= 0.5) for row in probabilities]


def test_cli_fit_evaluate_predict_and_report(tmp_path, capsys):
    (train_x, train_y), (test_x, test_y) = toy_multilabel(120), toy_multilabel(40, seed=1)
    train, test, out = tmp_path / "train.csv", tmp_path / "test.csv", tmp_path / "run"
    pd.DataFrame({"text": train_x, "tags": [y.replace("|", ",") for y in train_y]}).to_csv(train, index=False)
    pd.DataFrame({"text": test_x, "tags": [y.replace("|", ",") for y in test_y]}).to_csv(test, index=False)
    flags = ["--backbone", "tiny-bert", "--epochs", "4", "--lr", "5e-3", "--head-lr", "2e-2", "--strategy", "full"]
    task = ["--task", "multilabel", "--label-separator", ",", "--label-column", "tags"]
    assert main(["fit", "--data", str(train), "--test", str(test), "--out", str(out), *flags, *task]) == 0
    table = capsys.readouterr().out
    assert "micro_f1" in table and "subset_accuracy" in table and "threshold" in table
    assert main(["evaluate", str(out), "--data", str(test), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["task"] == "multilabel" and set(metrics["per_label"]) == {"a", "b"}
    assert json.loads((out / "transferkit.json").read_text())["metrics"]["test"]["micro_f1"] == metrics["micro_f1"]
    assert main(["predict", str(out), "good good film", "bad it bad", "good bad good bad"]) == 0
    shown = [line.split("\t")[0] for line in capsys.readouterr().out.strip().splitlines()]
    assert shown == ["a", "b", "a,b"]
    report = (out / "report.html").read_text()
    assert "Per label" in report and "Most wrong label sets" in report
    assert main(["evaluate", "--protocol", "kshot", "--data", str(train), "--test", str(test), *task]) == 2
    assert "classification only" in capsys.readouterr().err


def test_feature_vectors_with_a_multi_hot_matrix():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 12)).astype(np.float32)
    y = np.stack([x[:, 0] > 0.3, x[:, 1] + x[:, 2] > 0, x[:, 3] < -0.5], axis=1).astype(int)
    params = dict(backbone="mlp:12-64", strategy="full", epochs=20, lr=1e-2, head_lr=1e-2, batch_size=32)
    model = tk.FineTuner(task="multilabel", val_fraction=0.2, **params).fit(x[:300], y[:300], verbose=False)
    assert model.classes_ == [0, 1, 2]
    metrics = model.evaluate(x[300:], y[300:])
    assert metrics["micro_f1"] >= 0.85, metrics["micro_f1"]
    assert all(isinstance(row, tuple) for row in model.predict(x[300:305]))
