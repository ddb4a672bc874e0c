"""Classification metrics: accuracy, balanced accuracy, macro/weighted F1, per-class precision/recall/F1,
confusion matrix; with probabilities also log loss and calibration (ECE); with `intervals`, 95% bootstrap
intervals of the headline metrics (see intervals.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def classification_metrics(
    y_true: Sequence[int],
    y_pred: Sequence[int],
    num_classes: int,
    label_names: Sequence[Any] | None = None,
    probabilities: np.ndarray | None = None,
    intervals: bool = False,
) -> dict[str, Any]:
    """Metrics over class ids 0..num_classes-1; per-class entries are keyed by label name when given.

    `probabilities` [N, num_classes] adds log loss, expected calibration error and reliability bins;
    `intervals` adds `ci95`: bootstrap intervals of accuracy, balanced accuracy and macro-F1.
    """
    true = np.asarray(y_true, dtype=np.int64)
    pred = np.asarray(y_pred, dtype=np.int64)
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (true, pred), 1)
    tp = np.diag(confusion).astype(float)
    support = confusion.sum(axis=1).astype(float)
    predicted = confusion.sum(axis=0).astype(float)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    present = support > 0  # macro-F1 over classes present in y_true (sklearn would warn on the rest)
    names = [str(n) for n in (label_names if label_names is not None else range(num_classes))]
    metrics = {
        "n": int(len(true)),
        "accuracy": float((true == pred).mean()) if len(true) else 0.0,
        "balanced_accuracy": float(recall[present].mean()) if present.any() else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "weighted_f1": float((f1 * support).sum() / support.sum()) if support.sum() else 0.0,
        "per_class": {
            names[i]: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i in range(num_classes)
        },
        "confusion_matrix": confusion.tolist(),
        "labels": names,
    }
    if probabilities is not None:
        from transferkit.evaluation.intervals import calibration_bins, expected_calibration_error, log_loss

        metrics["log_loss"] = log_loss(true, probabilities)
        metrics["ece"] = expected_calibration_error(true, probabilities)
        metrics["calibration"] = calibration_bins(true, probabilities)
    if intervals:
        from transferkit.evaluation.intervals import bootstrap_intervals

        metrics["ci95"] = bootstrap_intervals(true, pred, num_classes)
    return metrics


def describe_input(item: Any, modality: str) -> str:
    """How an example is shown in a report: the text, the file path, or a short description of an in-memory
    image, clip or feature row."""
    if isinstance(item, str) or hasattr(item, "__fspath__"):
        return str(item)
    if modality == "image" and hasattr(item, "width"):  # a PIL image (arrays are described below)
        return f"<image {item.width}x{item.height}>"
    if modality == "audio":
        from transferkit.data.audio import is_audio_object, unpack_audio

        if isinstance(item, dict) and "array" not in item:  # a `datasets` Audio dict not decoded yet
            return str(item.get("path") or "<audio clip>")
        if is_audio_object(item):  # an (array, rate) pair, a decoded dict or a decoder object
            samples, rate = unpack_audio(item)
            return f"<audio clip {np.shape(samples)[-1] / rate:.2f} s>"
        return f"<audio clip, {np.shape(item)[-1]} samples>"
    array = np.asarray(item)
    if modality == "vector":
        shown = ", ".join(f"{v:.3g}" for v in array.ravel()[:8])
        return f"[{shown}{', ...' if array.size > 8 else ''}]"
    return f"<{modality} array {tuple(array.shape)}>"


def worst_examples(
    inputs: Sequence[Any],
    y_true: Sequence[int],
    probabilities: np.ndarray,
    label_names: Sequence[Any],
    modality: str,
    k: int = 12,
) -> list[dict[str, Any]]:
    """The `k` misclassified examples the model was surest were something else (lowest probability of the true
    class first): where to look first for label noise or a systematic confusion."""
    true = np.asarray(y_true, dtype=np.int64)
    predicted = probabilities.argmax(axis=1)
    p_true = probabilities[np.arange(len(true)), true]
    wrong = np.flatnonzero(predicted != true)
    order = wrong[np.argsort(p_true[wrong], kind="stable")][:k]
    return [
        {
            "index": int(i),
            "input": describe_input(inputs[i], modality),
            "modality": modality,
            "label": str(label_names[true[i]]),
            "predicted": str(label_names[predicted[i]]),
            "confidence": round(float(probabilities[i, predicted[i]]), 6),
            "p_true": round(float(p_true[i]), 6),
        }
        for i in order
    ]


def evaluate_classification(
    examples, probabilities: np.ndarray, labels: Sequence[Any], modality: str, train_counts: Sequence[int] | None
) -> dict[str, Any]:
    """FineTuner.evaluate for a classifier: metrics with intervals, the worst mistakes and, given the training class
    counts, the majority-class baseline."""
    index = {name: i for i, name in enumerate(labels)}
    true = [index[y] for y in examples.labels]
    predicted = probabilities.argmax(axis=1).tolist()
    metrics = classification_metrics(true, predicted, len(labels), labels, probabilities, intervals=True)
    metrics["worst_examples"] = worst_examples(examples.inputs, true, probabilities, labels, modality)
    if train_counts:
        train_labels = [label for label, n in zip(labels, train_counts) for _ in range(n)]
        metrics["majority_baseline"] = majority_baseline(train_labels, examples.labels)
    return metrics


def majority_baseline(train_labels: Sequence[Any], test_labels: Sequence[Any]) -> dict[str, Any]:
    """Scores of always predicting the most frequent training class: the bar a model must clear."""
    majority = Counter(train_labels).most_common(1)[0][0]
    classes = sorted(set(train_labels) | set(test_labels), key=str)
    index = {label: i for i, label in enumerate(classes)}
    metrics = classification_metrics(
        [index[y] for y in test_labels], [index[majority]] * len(test_labels), len(classes), classes
    )
    keys = ("accuracy", "balanced_accuracy", "macro_f1", "weighted_f1")
    return {"label": majority, **{k: metrics[k] for k in keys}}


def headline_rows(
    metrics: dict[str, Any],
    keys: Sequence[str],
    baseline: dict[str, Any] | None = None,
    baseline_name: str = "baseline",
    number: str = ".4f",
    width: int = 10,
) -> list[str]:
    """`examples: N`, then one row per headline metric: the model's value, the baseline's, the 95% interval."""
    intervals = metrics.get("ci95", {})
    lines = [
        f"examples: {metrics['n']}",
        f"{'':18}{'model':>{width}}" + (f"{baseline_name:>{width}}" if baseline else ""),
    ]
    for key in keys:
        if key not in metrics:
            continue
        row = f"{key:18}{metrics[key]:>{width}{number}}"
        if baseline:
            row += f"{baseline[key]:>{width}{number}}" if key in baseline else " " * width
        if key in intervals:
            low, high = intervals[key]
            row += f"   95% CI [{low:{number}}, {high:{number}}]"
        lines.append(row)
    return lines


def format_metrics_table(metrics: dict[str, Any], baseline: dict[str, Any] | None = None) -> str:
    """A plain-text table of headline and per-class metrics."""
    keys = ("accuracy", "balanced_accuracy", "macro_f1", "weighted_f1", "log_loss", "ece")
    lines = headline_rows(metrics, keys, baseline, "majority")
    lines.append("")
    lines.append(f"{'class':20}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}")
    for name, row in metrics["per_class"].items():
        lines.append(
            f"{name[:20]:20}{row['precision']:>10.4f}{row['recall']:>10.4f}{row['f1']:>10.4f}{row['support']:>9}"
        )
    lines.append("")
    width = max(len(n) for n in metrics["labels"] + ["true\\pred"])
    width = min(max(width, 6), 16)
    lines.append("confusion (rows = true, columns = predicted)")
    lines.append(" " * width + "".join(f"{n[:width]:>{width + 1}}" for n in metrics["labels"]))
    for name, row in zip(metrics["labels"], metrics["confusion_matrix"]):
        lines.append(f"{name[:width]:{width}}" + "".join(f"{v:>{width + 1}}" for v in row))
    lines += worst_example_lines(
        metrics,
        "most confident mistakes (true -> predicted, p(predicted))",
        lambda row: f"{row['label']} -> {row['predicted']} ({row['confidence']:.2f})",
    )
    return "\n".join(lines)


def worst_example_lines(
    metrics: dict[str, Any], title: str, outcome: Callable[[dict], str], shown: int = 5
) -> list[str]:
    """The table's closing block: the first `shown` worst examples, each as `outcome(row)` and its input on one line."""
    worst = metrics.get("worst_examples") or []
    if not worst:
        return []
    lines = ["", title]
    for row in worst[:shown]:
        text = " ".join(row["input"].split())
        lines.append(f"  {outcome(row)}  {text[:80]}")
    return lines
