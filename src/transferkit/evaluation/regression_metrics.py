"""Regression metrics: MAE, RMSE and R² with 95% bootstrap intervals over test examples, the baseline of
predicting the training mean, the largest errors, and a plain-text table for the CLI."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

HEADLINE = ("mae", "rmse", "r2")


def regression_scores(true: np.ndarray, pred: np.ndarray) -> dict[str, np.ndarray]:
    """MAE, RMSE and R² over the last axis (leading axes: resamples). R² of a constant truth is 1 for a perfect
    prediction and 0 otherwise, as scikit-learn's r2_score reports it."""
    error = pred - true
    sse = (error**2).sum(axis=-1)
    sst = ((true - true.mean(axis=-1, keepdims=True)) ** 2).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(sst > 0, 1.0 - sse / np.where(sst > 0, sst, 1.0), np.where(sse == 0, 1.0, 0.0))
    return {"mae": np.abs(error).mean(axis=-1), "rmse": np.sqrt((error**2).mean(axis=-1)), "r2": r2}


def regression_metrics(y_true: Sequence[float], y_pred: Sequence[float], intervals: bool = False) -> dict[str, Any]:
    """MAE, RMSE, R² (and `ci95` of each with `intervals`), the mean error (bias) and the target's spread."""
    from transferkit.evaluation.intervals import bootstrap_statistics

    true, pred = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    metrics: dict[str, Any] = {"task": "regression", "n": int(len(true))}
    if not len(true):
        return metrics
    metrics.update({k: float(v) for k, v in regression_scores(true, pred).items()})
    metrics["mean_error"] = float((pred - true).mean())  # > 0: the model overestimates on average
    metrics["target"] = {"mean": float(true.mean()), "std": float(true.std()), "min": float(true.min())}
    metrics["target"]["max"] = float(true.max())
    if intervals:
        metrics["ci95"] = bootstrap_statistics(len(true), lambda idx: regression_scores(true[idx], pred[idx]))
    return metrics


def mean_baseline(train_mean: float, y_true: Sequence[float]) -> dict[str, Any]:
    """Scores of always predicting the training mean: the bar a regression model must clear."""
    true = np.asarray(y_true, dtype=float)
    scores = regression_scores(true, np.full_like(true, float(train_mean))) if len(true) else {}
    return {"prediction": float(train_mean), **{k: float(v) for k, v in scores.items()}}


def worst_regression_examples(
    inputs: Sequence[Any], y_true: Sequence[float], y_pred: Sequence[float], modality: str, k: int = 12
) -> list[dict[str, Any]]:
    """The `k` examples with the largest absolute error, largest first."""
    from transferkit.evaluation.metrics import describe_input

    true, pred = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    error = np.abs(pred - true)
    order = np.argsort(-error, kind="stable")[:k]
    return [
        {
            "index": int(i),
            "input": describe_input(inputs[i], modality),
            "modality": modality,
            "label": float(true[i]),
            "predicted": round(float(pred[i]), 6),
            "abs_error": round(float(error[i]), 6),
        }
        for i in order
    ]


def format_regression_table(metrics: dict[str, Any], baseline: dict[str, Any] | None = None) -> str:
    """Headline metrics with intervals beside the training-mean baseline, then the largest errors."""
    from transferkit.evaluation.metrics import headline_rows, worst_example_lines

    lines = headline_rows(metrics, (*HEADLINE, "mean_error"), baseline, "mean", number=".4g", width=12)
    lines += worst_example_lines(
        metrics, "largest errors (true -> predicted)", lambda row: f"{row['label']:.4g} -> {row['predicted']:.4g}"
    )
    return "\n".join(lines)


def evaluate_regression(examples, predictions: np.ndarray, train_mean: float, modality: str) -> dict[str, Any]:
    """FineTuner.evaluate for a regression model: metrics with intervals, the training-mean baseline, worst errors."""
    true = np.asarray(examples.labels, dtype=float)
    metrics = regression_metrics(true, predictions, intervals=True)
    metrics["mean_baseline"] = mean_baseline(train_mean, true)
    metrics["worst_examples"] = worst_regression_examples(examples.inputs, true, predictions, modality)
    return metrics
