"""Regression: target parsing, metrics against scikit-learn, a learnable toy target beating the mean baseline,
standardised targets saved and restored, plain-transformers export in the target's unit, the CLI and report, and
an image regression on the tiny timm model."""

from __future__ import annotations

import json
import random

import numpy as np
import pandas as pd
import pytest

import transferkit as tk
from conftest import NEGATIVE, POSITIVE, TINY
from transferkit.cli import main
from transferkit.data import load_examples
from transferkit.data.checks import check_data
from transferkit.errors import ConfigError, DataError, UnsupportedTaskError
from transferkit.evaluation.regression_metrics import mean_baseline, regression_metrics

FAST = {**TINY, "task": "regression", "val_fraction": 0.2, "probe_lr": 5e-2}
PROBE_TEXTS = ["good great love", "bad awful", "the film", "hate poor good"]


def toy_scores(n: int, seed: int = 0) -> tuple[list[str], list[float]]:
    """Texts whose target is 10 + 5 x (positive words - negative words): learnable by a tiny model."""
    rng = random.Random(seed)
    texts, targets = [], []
    for _ in range(n):
        pos, neg = rng.randint(0, 3), rng.randint(0, 3)
        words = rng.choices(POSITIVE[:4], k=pos) + rng.choices(NEGATIVE[:4], k=neg) + ["the", "film"]
        rng.shuffle(words)
        texts.append(" ".join(words))
        targets.append(10.0 + 5.0 * (pos - neg))
    return texts, targets


def test_targets_are_parsed_as_floats_and_bad_rows_are_named():
    examples = load_examples(["a", "b", "c"], ["1.5", 2, " -3e2 "], task="regression")
    assert examples.labels == [1.5, 2.0, -300.0] and examples.class_counts() == {}
    frame = pd.DataFrame({"text": ["a", "b", "c", "d"], "target": [1.0, None, 2.0, 3.0]})
    with pytest.raises(DataError, match=r"not finite numbers \(rows 2; row 2 is nan\)"):
        load_examples(frame, task="regression")
    with pytest.raises(DataError, match=r"rows 2, 3; row 2 is 'high'"):
        load_examples(["a", "b", "c"], [1, "high", "inf"], task="regression")
    with pytest.raises(DataError, match="--task regression"):  # non-integer numbers read as classes
        load_examples(["a", "b"], [0.5, 1.25])
    with pytest.raises(DataError, match="constant regression target"):
        tk.FineTuner(**FAST).fit(["a b", "c d", "e f"], [2.0, 2.0, 2.0], verbose=False)
    with pytest.raises(ConfigError, match="regression_loss"):
        tk.FineTuner(**FAST, regression_loss="l1").fit(["a b"], [1.0])


def test_checks_skip_classes_and_suggest_regression_for_numeric_classes():
    texts = [f"text number {i}" for i in range(40)]
    report = check_data(load_examples(texts, [i / 3 for i in range(40)], task="regression"))
    assert any("regression targets" in note for note in report.summary["notes"])
    assert report.summary["target"]["max"] == pytest.approx(13.0) and not report.problems
    numeric = check_data(load_examples(texts, [f"{i / 3:.2f}" for i in range(40)]))  # strings: 40 classes
    assert "numeric_labels" in {p.check for p in numeric.problems}


def test_metrics_match_scikit_learn_and_intervals_hold_the_estimate():
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    rng = np.random.default_rng(0)
    true = rng.normal(50, 10, 300)
    pred = true + rng.normal(2, 5, 300)
    metrics = regression_metrics(true, pred, intervals=True)
    assert metrics["mae"] == pytest.approx(mean_absolute_error(true, pred))
    assert metrics["rmse"] == pytest.approx(np.sqrt(mean_squared_error(true, pred)))
    assert metrics["r2"] == pytest.approx(r2_score(true, pred))
    for key in ("mae", "rmse", "r2"):
        low, high = metrics["ci95"][key]
        assert low <= metrics[key] <= high
    baseline = mean_baseline(49.0, true)
    assert baseline["r2"] == pytest.approx(r2_score(true, np.full(300, 49.0)))
    assert regression_metrics([3.0, 3.0], [3.0, 3.0])["r2"] == r2_score([3.0, 3.0], [3.0, 3.0]) == 1.0


@pytest.mark.parametrize(
    "strategy, options",
    [
        ("probe", {}),
        ("lora", {"lora_r": 4, "lr": 2e-2, "head_lr": 5e-2, "epochs": 6, "regression_loss": "huber"}),
        ("full", {}),
    ],
)
def test_toy_target_beats_the_mean_and_reloads_identically(tmp_path, strategy, options):
    model = tk.FineTuner(**{**FAST, "strategy": strategy, **options}).fit(*toy_scores(120), verbose=False)
    metrics = model.evaluate(*toy_scores(40, seed=1))
    baseline = metrics["mean_baseline"]
    assert metrics["mae"] < 0.8 * baseline["mae"] and metrics["r2"] > 0.2, (strategy, metrics["r2"])
    assert metrics["ci95"]["rmse"][0] <= metrics["rmse"] <= metrics["ci95"]["rmse"][1]
    predictions = model.predict(PROBE_TEXTS)
    assert all(isinstance(v, float) for v in predictions)
    model.save(tmp_path / "run")
    reloaded = tk.load(tmp_path / "run")
    assert reloaded.predict(PROBE_TEXTS) == predictions
    with pytest.raises(UnsupportedTaskError, match="call predict"):
        reloaded.predict_proba(PROBE_TEXTS)
    assert not hasattr(reloaded, "classes_")


def test_target_scale_saved_and_plain_transformers_export_in_the_targets_unit(tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    texts, targets = toy_scores(120)
    model = tk.FineTuner(**{**FAST, "strategy": "full"}).fit(texts, targets, verbose=False)
    model.save(tmp_path / "run")
    manifest = json.loads((tmp_path / "run" / "transferkit.json").read_text())
    training_rows = [targets[i] for i in manifest["data"]["split_indices"]["train"]]
    assert manifest["task"] == "regression" and manifest["labels"] == []
    assert manifest["target"]["mean"] == pytest.approx(np.mean(training_rows))
    assert manifest["target"]["std"] == pytest.approx(np.std(training_rows))
    assert manifest["native_export"]["written"] and manifest["native_export"]["problem_type"] == "regression"
    plain = AutoModelForSequenceClassification.from_pretrained(tmp_path / "run").eval()
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "run")
    with torch.no_grad():
        values = plain(**tokenizer(PROBE_TEXTS, padding=True, return_tensors="pt")).logits[:, 0].numpy()
    assert plain.config.problem_type == "regression"
    assert np.allclose(values, model.predict(PROBE_TEXTS), atol=1e-3)


def test_cli_fit_evaluate_predict_and_report(tmp_path, capsys):
    (train_x, train_y), (test_x, test_y) = toy_scores(120), toy_scores(40, seed=1)
    train, test, out = tmp_path / "train.csv", tmp_path / "test.csv", tmp_path / "run"
    pd.DataFrame({"review": train_x, "score": train_y}).to_csv(train, index=False)
    pd.DataFrame({"review": test_x, "score": test_y}).to_csv(test, index=False)
    flags = ["--backbone", "tiny-bert", "--epochs", "4", "--lr", "5e-3", "--head-lr", "2e-2", "--strategy", "full"]
    task = ["--task", "regression", "--label-column", "score", "--regression-loss", "huber"]
    assert main(["fit", "--data", str(train), "--test", str(test), "--out", str(out), *flags, *task]) == 0
    table = capsys.readouterr().out
    assert "rmse" in table and "r2" in table and "mean" in table and "largest errors" in table
    assert main(["evaluate", str(out), "--data", str(test), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["task"] == "regression" and metrics["mae"] < metrics["mean_baseline"]["mae"]
    assert json.loads((out / "transferkit.json").read_text())["metrics"]["test"]["rmse"] == metrics["rmse"]
    assert main(["predict", str(out), "good great love", "bad awful hate"]) == 0
    values = [float(line.split("\t")[0]) for line in capsys.readouterr().out.strip().splitlines()]
    assert values[0] > values[1]
    preds = tmp_path / "preds.csv"
    assert main(["predict", str(out), "--data", str(test), "--output", str(preds)]) == 0
    assert list(pd.read_csv(preds).columns) == ["text", "prediction"]
    report = (out / "report.html").read_text()
    assert "Largest errors" in report and "training mean" in report


def test_image_regression_on_the_tiny_timm_model_and_plain_timm_export(tmp_path):
    import timm
    import torch
    from PIL import Image
    from safetensors.torch import load_file

    rng = np.random.default_rng(0)
    images, brightness = [], []
    for _ in range(48):
        level = float(rng.uniform(20, 235))
        pixels = np.clip(level + rng.normal(0, 10, (32, 32, 3)), 0, 255).astype(np.uint8)
        images.append(Image.fromarray(pixels))
        brightness.append(level)
    params = dict(backbone="tiny-efficientnet", strategy="probe", head_epochs=40, probe_lr=5e-2, batch_size=8)
    model = tk.FineTuner(task="regression", val_fraction=0.0, **params).fit(images[:36], brightness[:36], verbose=False)
    metrics = model.evaluate(images[36:], brightness[36:])
    assert metrics["mae"] < 0.8 * metrics["mean_baseline"]["mae"], metrics
    model.save(tmp_path / "run")
    assert tk.load(tmp_path / "run").predict(images[36:40]) == model.predict(images[36:40])
    spec = json.loads((tmp_path / "run" / "timm_model.json").read_text())
    assert spec["problem_type"] == "regression" and spec["num_classes"] == 1
    plain = timm.create_model(spec["architecture"], num_classes=1, **spec["kwargs"]).eval()
    plain.load_state_dict(load_file(str(tmp_path / "run" / "timm_model.safetensors")))
    with torch.no_grad():
        values = plain(model.model_.backbone.collate(images[36:40])["pixels"])[:, 0].numpy()
    assert np.allclose(values, model.predict(images[36:40]), atol=1e-3)
