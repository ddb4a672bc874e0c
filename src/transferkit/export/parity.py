"""Does an exported model predict what the trained model predicts? Decoded outputs compared, and the task's score.

Classification and multi-label: the largest |Δ probability| over all examples and classes (≤ 1e-4 passes) and
identical predictions (argmax class; the label set at the tuned thresholds). Regression has no probabilities:
the decoded values (in the target's unit) are compared with a relative tolerance, |Δ| ≤ 1e-4 · max(1, |value|),
so a target measured in thousands is held to the same relative precision as one measured in units.
"""

from __future__ import annotations

from typing import Any

import numpy as np

TOLERANCE = 1e-4  # max |Δprob| (classification, multilabel); relative for regression (see above)
SCORES = {"classification": "accuracy", "multilabel": "subset_accuracy", "regression": "r2"}  # as FineTuner.score


def compare_outputs(task, expected: np.ndarray, actual: np.ndarray, tolerance: float = TOLERANCE) -> dict[str, Any]:
    """Parity of two decoded outputs of `task` (expected: PyTorch, actual: the export) on the same examples."""
    expected, actual = np.asarray(expected, dtype=np.float64), np.asarray(actual, dtype=np.float64)
    examples = int(expected.shape[0])
    if examples == 0:
        return {"examples": 0, "passed": False, "reason": "no examples to compare"}
    if task.name == "regression":
        diff = np.abs(expected - actual)
        relative = diff / np.maximum(1.0, np.abs(expected))
        return {
            "examples": examples,
            "max_abs_value_diff": float(diff.max()),
            "max_rel_value_diff": float(relative.max()),
            "tolerance": f"|Δvalue| <= {tolerance:g} * max(1, |value|)",
            "labels_identical": None,  # regression has no labels
            "passed": bool(relative.max() <= tolerance),
        }
    diff = float(np.abs(expected - actual).max())
    same = [tuple(a) == tuple(b) for a, b in zip(_predictions(task, expected), _predictions(task, actual))]
    return {
        "examples": examples,
        "max_abs_prob_diff": diff,
        "tolerance": f"|Δprob| <= {tolerance:g}",
        "labels_identical": bool(all(same)),
        "differing_labels": int(len(same) - sum(same)),
        "passed": bool(diff <= tolerance and all(same)),
    }


def _predictions(task, decoded: np.ndarray) -> list[tuple]:
    if task.name == "multilabel":
        return [tuple(row) for row in task.decide(decoded)]
    return [(int(i),) for i in decoded.argmax(axis=1)]


def score(task, decoded: np.ndarray, labels: list[Any]) -> float:
    """The task's headline score (FineTuner.score's): accuracy, subset accuracy (multilabel) or R² (regression)."""
    if task.name == "regression":
        truth = np.asarray(labels, dtype=np.float64)
        residual = float(((truth - np.asarray(decoded, dtype=np.float64)) ** 2).sum())
        total = float(((truth - truth.mean()) ** 2).sum())
        return 1.0 - residual / total if total > 0 else float("nan")
    predicted = task.predict(decoded)
    if task.name == "multilabel":
        return float(np.mean([set(p) == set(t) for p, t in zip(predicted, labels)]))
    return float(np.mean([p == t for p, t in zip(predicted, labels)]))


def agreement(task, a: np.ndarray, b: np.ndarray) -> float | None:
    """Share of examples with the same prediction under two decoded outputs (None for regression)."""
    if task.name == "regression":
        return None
    same = [tuple(x) == tuple(y) for x, y in zip(_predictions(task, a), _predictions(task, b))]
    return float(np.mean(same)) if same else None
