"""What a test score is worth: bootstrap confidence intervals, calibration and probability-based metrics.

With little test data one number lies; every headline metric gets a 95% percentile-bootstrap interval over
test examples (1,000 resamples, fixed seed, so the same predictions give the same interval). Macro-F1 and
balanced accuracy are recomputed from each resample's confusion matrix, over the classes present in the
test set (as the point estimate is). `bootstrap_statistics` does the same for any vectorised statistic (the
multi-label and regression metrics use it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from transferkit.errors import DataError

RESAMPLES = 1000
CHUNK = 100  # resamples per vectorised batch (bounds memory at CHUNK x n indices)
ECE_BINS = 15


def _rates(confusion: np.ndarray, present: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy, balanced accuracy and macro-F1 of a stack of confusion matrices [..., K, K]."""
    tp = np.diagonal(confusion, axis1=-2, axis2=-1).astype(float)
    support = confusion.sum(axis=-1).astype(float)
    predicted = confusion.sum(axis=-2).astype(float)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    total = confusion.sum(axis=(-2, -1)).astype(float)
    return {
        "accuracy": tp.sum(axis=-1) / np.maximum(total, 1),
        "balanced_accuracy": recall[..., present].mean(axis=-1),
        "macro_f1": f1[..., present].mean(axis=-1),
    }


def _percentile_interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_interval(
    per_example: Sequence[float], n_resamples: int = RESAMPLES, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean of `per_example` scores (e.g. exact match per answer)."""
    if not len(per_example):
        raise DataError("bootstrap_interval needs at least one per-example score; got an empty list.")
    if not 0.0 < level < 1.0:
        raise DataError(f"bootstrap_interval level must be in (0, 1); got {level}.")
    scores = np.asarray(per_example, dtype=float)
    rng = np.random.default_rng(seed)
    # One matrix of resample indices: vectorised, and the same seed always gives the same interval.
    indices = rng.integers(0, len(scores), size=(n_resamples, len(scores)))
    return _percentile_interval(scores[indices].mean(axis=1), level)


def bootstrap_statistics(
    n: int,
    statistic: Callable[[np.ndarray], dict[str, np.ndarray]],
    level: float = 0.95,
    seed: int = 0,
    n_resamples: int = RESAMPLES,
) -> dict[str, list[float]]:
    """95% percentile-bootstrap intervals of any statistics of `n` test examples.

    `statistic(indices)` takes a [resamples, n] matrix of example indices (each row one resample) and returns
    {name: [resamples] values}, so callers compute a whole chunk of resamples with array operations. NaN values
    (a resample where a statistic is undefined) are left out of the percentiles.
    """
    if n == 0:
        return {}
    rng = np.random.default_rng(seed)
    samples: dict[str, list[np.ndarray]] = {}
    for start in range(0, n_resamples, CHUNK):
        rows = min(CHUNK, n_resamples - start)
        for name, values in statistic(rng.integers(0, n, size=(rows, n))).items():
            samples.setdefault(name, []).append(np.asarray(values, dtype=float))
    tail = (1.0 - level) / 2 * 100
    intervals = {}
    for name, values in samples.items():
        joined = np.concatenate(values)
        if np.isfinite(joined).any():
            low, high = np.nanpercentile(joined, [tail, 100 - tail])
            intervals[name] = [float(f"{low:.6g}"), float(f"{high:.6g}")]  # 6 digits: targets have any scale
    return intervals


def bootstrap_intervals(
    y_true: Sequence[int], y_pred: Sequence[int], num_classes: int, level: float = 0.95, seed: int = 0
) -> dict[str, list[float]]:
    """95% intervals of accuracy, balanced accuracy and macro-F1: {"accuracy": [low, high], ...}."""
    true = np.asarray(y_true, dtype=np.int64)
    pred = np.asarray(y_pred, dtype=np.int64)
    n = len(true)
    if n == 0:
        return {}
    present = np.bincount(true, minlength=num_classes) > 0
    rng = np.random.default_rng(seed)
    cells = true * num_classes + pred
    samples: dict[str, list[np.ndarray]] = {}
    for start in range(0, RESAMPLES, CHUNK):
        rows = min(CHUNK, RESAMPLES - start)
        picked = cells[rng.integers(0, n, size=(rows, n))] + np.arange(rows)[:, None] * num_classes**2
        confusion = np.bincount(picked.ravel(), minlength=rows * num_classes**2).reshape(rows, num_classes, -1)
        for name, values in _rates(confusion, present).items():
            samples.setdefault(name, []).append(values)
    return {
        name: [round(v, 4) for v in _percentile_interval(np.concatenate(values), level)]
        for name, values in samples.items()
    }


def log_loss(y_true: Sequence[int], probabilities: np.ndarray) -> float:
    """Mean negative log-probability of the true class (probabilities clipped at 1e-15)."""
    p = np.asarray(probabilities, dtype=np.float64)
    true = np.asarray(y_true, dtype=np.int64)
    return float(-np.log(np.clip(p[np.arange(len(true)), true], 1e-15, 1.0)).mean()) if len(true) else 0.0


def calibration_bins(y_true: Sequence[int], probabilities: np.ndarray, bins: int = ECE_BINS) -> list[dict]:
    """Reliability-diagram bins over the top-class confidence: count, mean confidence, accuracy per bin."""
    p = np.asarray(probabilities, dtype=np.float64)
    confidence = p.max(axis=1)
    correct = p.argmax(axis=1) == np.asarray(y_true)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    rows = []
    for b in range(bins):
        inside = which == b
        if inside.any():
            rows.append(
                {
                    "low": b / bins,
                    "high": (b + 1) / bins,
                    "count": int(inside.sum()),
                    "confidence": float(confidence[inside].mean()),
                    "accuracy": float(correct[inside].mean()),
                }
            )
    return rows


def expected_calibration_error(y_true: Sequence[int], probabilities: np.ndarray, bins: int = ECE_BINS) -> float:
    """Share-weighted gap between confidence and accuracy over equal-width confidence bins."""
    rows = calibration_bins(y_true, probabilities, bins)
    n = sum(r["count"] for r in rows)
    return float(sum(r["count"] * abs(r["accuracy"] - r["confidence"]) for r in rows) / n) if n else 0.0
