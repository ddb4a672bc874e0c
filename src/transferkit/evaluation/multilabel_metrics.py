"""Multi-label metrics: micro/macro F1, subset accuracy, Hamming loss and per-label precision/recall/F1 at each
label's threshold, with 95% bootstrap intervals over test examples; per-label threshold tuning on validation
data; the examples whose predicted label sets are most wrong; a plain-text table for the CLI."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.05), 2)  # candidate thresholds tried per label
DEFAULT_THRESHOLD = 0.5  # without validation data, or for a label validation never shows


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """F1 = 2tp / (2tp + fp + fn) elementwise; 0 where the denominator is 0."""
    tp, denom = np.asarray(tp, dtype=float), 2 * np.asarray(tp, dtype=float) + fp + fn
    return np.divide(2 * tp, denom, out=np.zeros_like(denom, dtype=float), where=denom > 0)


def _counts(true: np.ndarray, pred: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tp, fp, fn) per label, summed over the example axis."""
    return (true & pred).sum(axis=axis), (~true & pred).sum(axis=axis), (true & ~pred).sum(axis=axis)


def tune_thresholds(y_true: np.ndarray, probabilities: np.ndarray, grid: np.ndarray = THRESHOLD_GRID) -> list[float]:
    """One threshold per label maximising that label's F1 on (validation) data; ties go to the threshold closest to
    0.5, and labels without a positive example keep 0.5."""
    true = np.asarray(y_true, dtype=bool)
    probs = np.asarray(probabilities, dtype=float)
    pred = probs[None, :, :] >= grid[:, None, None]  # [T, N, L]
    tp, fp, fn = _counts(true[None], pred, axis=1)
    f1 = _f1(tp, fp, fn)  # [T, L]
    best = f1.max(axis=0)
    distance = np.where(np.isclose(f1, best[None]), np.abs(grid - DEFAULT_THRESHOLD)[:, None], np.inf)
    chosen = grid[distance.argmin(axis=0)]
    chosen = np.where(true.any(axis=0), chosen, DEFAULT_THRESHOLD)
    return [float(t) for t in chosen]


def multilabel_scores(true: np.ndarray, pred: np.ndarray, present: np.ndarray) -> dict[str, np.ndarray]:
    """Micro/macro F1, subset accuracy and Hamming loss of [..., N, L] arrays (leading axes: resamples)."""
    tp, fp, fn = _counts(true, pred, axis=-2)
    micro = _f1(tp.sum(-1), fp.sum(-1), fn.sum(-1))
    per_label = _f1(tp, fp, fn)
    macro = per_label[..., present].mean(axis=-1) if present.any() else np.zeros(micro.shape)
    return {
        "micro_f1": micro,
        "macro_f1": macro,
        "subset_accuracy": (true == pred).all(axis=-1).mean(axis=-1),
        "hamming_loss": (true != pred).mean(axis=(-2, -1)),
    }


def multilabel_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    label_names: Sequence[Any],
    thresholds: Sequence[float] | None = None,
    intervals: bool = False,
) -> dict[str, Any]:
    """Metrics of multi-hot [N, L] truth and predictions. Macro-F1 averages the labels present in `y_true` (as the
    classification macro-F1 does); `intervals` adds `ci95` for micro-F1, macro-F1 and subset accuracy."""
    from transferkit.evaluation.intervals import bootstrap_statistics

    true, pred = np.asarray(y_true, dtype=bool), np.asarray(y_pred, dtype=bool)
    present = true.any(axis=0)
    names = [str(n) for n in label_names]
    tp, fp, fn = _counts(true, pred, axis=0)
    precision = np.divide(tp, tp + fp, out=np.zeros(len(names)), where=(tp + fp) > 0)
    recall = np.divide(tp, tp + fn, out=np.zeros(len(names)), where=(tp + fn) > 0)
    f1 = _f1(tp, fp, fn)
    limits = list(thresholds) if thresholds is not None else [DEFAULT_THRESHOLD] * len(names)
    metrics: dict[str, Any] = {"task": "multilabel", "n": int(len(true))}
    metrics.update({k: float(v) for k, v in multilabel_scores(true, pred, present).items()})
    micro_tp, micro_fp, micro_fn = tp.sum(), fp.sum(), fn.sum()
    metrics["micro_precision"] = float(micro_tp / (micro_tp + micro_fp)) if micro_tp + micro_fp else 0.0
    metrics["micro_recall"] = float(micro_tp / (micro_tp + micro_fn)) if micro_tp + micro_fn else 0.0
    metrics["per_label"] = {
        name: {
            "precision": float(precision[j]),
            "recall": float(recall[j]),
            "f1": float(f1[j]),
            "support": int(true[:, j].sum()),
            "predicted": int(pred[:, j].sum()),
            "threshold": float(limits[j]),
        }
        for j, name in enumerate(names)
    }
    metrics["labels"] = names
    metrics["labels_per_example"] = {"true": float(true.sum(1).mean()), "predicted": float(pred.sum(1).mean())}
    if intervals and len(true):
        keys = ("micro_f1", "macro_f1", "subset_accuracy")
        metrics["ci95"] = bootstrap_statistics(
            len(true),
            lambda idx: {k: v for k, v in multilabel_scores(true[idx], pred[idx], present).items() if k in keys},
        )
    return metrics


def worst_multilabel_examples(
    inputs: Sequence[Any],
    y_true: np.ndarray,
    probabilities: np.ndarray,
    y_pred: np.ndarray,
    label_names: Sequence[Any],
    modality: str,
    separator: str = "|",
    k: int = 12,
) -> list[dict[str, Any]]:
    """The `k` examples with the most wrong labels (missed + extra), then the surest of them first."""
    from transferkit.evaluation.metrics import describe_input

    true, pred = np.asarray(y_true, dtype=bool), np.asarray(y_pred, dtype=bool)
    wrong = (true != pred).sum(axis=1)
    surety = np.abs(np.asarray(probabilities, dtype=float) - true).sum(axis=1)
    order = [i for i in np.lexsort((-surety, -wrong)) if wrong[i] > 0][:k]
    names = [str(n) for n in label_names]

    def joined(row: np.ndarray) -> str:
        return separator.join(names[j] for j in np.flatnonzero(row))

    return [
        {
            "index": int(i),
            "input": describe_input(inputs[i], modality),
            "modality": modality,
            "label": joined(true[i]),
            "predicted": joined(pred[i]),
            "wrong_labels": int(wrong[i]),
        }
        for i in order
    ]


def format_multilabel_table(metrics: dict[str, Any]) -> str:
    """Headline metrics with intervals, then one row per label."""
    from transferkit.evaluation.metrics import headline_rows, worst_example_lines

    keys = ("micro_f1", "macro_f1", "subset_accuracy", "hamming_loss", "micro_precision", "micro_recall")
    lines = headline_rows(metrics, keys)
    lines += ["", f"{'label':20}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}{'threshold':>11}"]
    for name, row in metrics["per_label"].items():
        lines.append(
            f"{name[:20]:20}{row['precision']:>10.4f}{row['recall']:>10.4f}{row['f1']:>10.4f}{row['support']:>9}"
            f"{row['threshold']:>11.2f}"
        )
    lines += worst_example_lines(
        metrics,
        "most wrong label sets (true -> predicted)",
        lambda row: f"{row['label'] or '(none)'} -> {row['predicted'] or '(none)'}",
    )
    return "\n".join(lines)


def evaluate_multilabel(examples, probabilities: np.ndarray, task, modality: str, separator: str) -> dict[str, Any]:
    """FineTuner.evaluate for a multi-label model: metrics at the task's thresholds, intervals, worst examples."""
    true = np.asarray(task.targets(examples), dtype=float).reshape(len(examples), len(task.labels)) > 0.5
    pred = task.decide(probabilities)
    metrics = multilabel_metrics(true, pred, task.labels, task.thresholds, intervals=True)
    metrics["threshold_source"] = task.threshold_source
    metrics["worst_examples"] = worst_multilabel_examples(
        examples.inputs, true, probabilities, pred, task.labels, modality, separator
    )
    return metrics
